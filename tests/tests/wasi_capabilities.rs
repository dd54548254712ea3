//! What a workload may touch, and only when its manifest says so: env,
//! volumes (read-only or not), outgoing HTTP, sockets; and where its output
//! goes (the host log, labelled with the workload).

use keel_tests::keel::spec::VolumeSpec;
use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::{KeelProcess, get, guest, start_host, write_file};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn fixture(name: &str) -> WorkloadSpec {
    WorkloadSpec::single(WorkloadId::new("caps", name), guest("http_behaviours"))
}

/// A loopback TCP server that sends `reply` on every connection and closes,
/// reading nothing (for raw sockets; HTTP tests use `http_upstream`).
async fn canned_server(reply: &'static str) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_comes_from_the_manifest_only() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let mut spec = fixture("env");
    spec.env.insert("GREETING".into(), "hej".into());
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "x", "/env?name=GREETING").await?.body, "hej");
    // The host's own environment does not leak in.
    assert_eq!(get(addr, "x", "/env?name=PATH").await?.status, 404);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_only_through_volumes_with_their_permissions() -> anyhow::Result<()> {
    let ro = tempfile::tempdir()?;
    let rw = tempfile::tempdir()?;
    write_file(ro.path(), "motd.txt", "read me");
    let host = start_host(None).await?;
    let mut spec = fixture("files");
    spec.volumes
        .push(VolumeSpec::new(ro.path(), "/ro").with_read_only(true));
    spec.volumes.push(VolumeSpec::new(rw.path(), "/rw"));
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");

    assert_eq!(
        get(addr, "x", "/read?path=/ro/motd.txt").await?.body,
        "read me"
    );
    let denied = keel_tests::request(addr, "POST", "x", "/write?path=/ro/new.txt", "nope").await?;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(!ro.path().join("new.txt").exists());
    let written = keel_tests::request(addr, "POST", "x", "/write?path=/rw/new.txt", "yes").await?;
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(std::fs::read_to_string(rw.path().join("new.txt"))?, "yes");
    // Nothing outside the volumes.
    assert_eq!(
        get(addr, "x", "/read?path=/etc/hostname").await?.status,
        403
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outgoing_http_is_denied_unless_allowed() -> anyhow::Result<()> {
    let upstream = keel_tests::http_upstream("upstream").await?;
    let url = format!("/fetch?url=http://{upstream}/");
    let host = start_host(None).await?;
    host.start_workload({
        let mut spec = fixture("closed");
        spec.http.host = Some("closed.test".into());
        spec
    })
    .await?;
    host.start_workload({
        let mut spec = fixture("open");
        spec.http.host = Some("open.test".into());
        spec.http.outgoing = vec![upstream.to_string()];
        spec
    })
    .await?;
    let addr = host.http_addr().expect("ingress");
    let denied = get(addr, "closed.test", &url).await?;
    assert_eq!(denied.status, 502);
    assert!(denied.body.contains("HttpRequestDenied"), "{}", denied.body);
    let allowed = get(addr, "open.test", &url).await?;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, "200 upstream")
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sockets_are_denied_unless_allowed() -> anyhow::Result<()> {
    let server = canned_server("tcp hello").await?;
    let path = format!("/connect?addr={server}");
    let host = start_host(None).await?;
    host.start_workload({
        let mut spec = fixture("nosock");
        spec.http.host = Some("nosock.test".into());
        spec
    })
    .await?;
    host.start_workload({
        let mut spec = fixture("sock");
        spec.http.host = Some("sock.test".into());
        spec.sockets.allow = vec![server.to_string()];
        spec
    })
    .await?;
    let addr = host.http_addr().expect("ingress");
    let denied = get(addr, "nosock.test", &path).await?;
    assert_eq!(denied.status, 502, "{}", denied.body);
    let allowed = get(addr, "sock.test", &path).await?;
    assert_eq!((allowed.status, allowed.body.as_str()), (200, "tcp hello"));
    // Allowed is one address, not the whole machine.
    let other = canned_server("other").await?;
    let elsewhere = get(addr, "sock.test", &format!("/connect?addr={other}")).await?;
    assert_eq!(elsewhere.status, 502, "{}", elsewhere.body);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listening_needs_its_own_grant() -> anyhow::Result<()> {
    // A port nothing listens on now (the guest binds it itself).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let host = start_host(None).await?;
    host.start_workload({
        // May reach this port on any address: a client grant.
        let mut spec = fixture("client");
        spec.http.host = Some("client.test".into());
        spec.sockets.allow = vec![format!("*:{port}")];
        spec
    })
    .await?;
    host.start_workload({
        let mut spec = fixture("server");
        spec.http.host = Some("server.test".into());
        spec.sockets.listen = vec!["127.0.0.1:*".to_string()];
        spec
    })
    .await?;
    let addr = host.http_addr().expect("ingress");
    for wildcard in [format!("0.0.0.0:{port}"), "0.0.0.0:0".to_string()] {
        let denied = get(addr, "client.test", &format!("/listen?addr={wildcard}")).await?;
        assert_eq!(denied.status, 502, "{wildcard}: {}", denied.body);
    }
    let allowed = get(
        addr,
        "server.test",
        &format!("/listen?addr=127.0.0.1:{port}"),
    )
    .await?;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, format!("listening on 127.0.0.1:{port}").as_str())
    );
    let elsewhere = get(addr, "server.test", "/listen?addr=0.0.0.0:0").await?;
    assert_eq!(elsewhere.status, 502, "{}", elsewhere.body);
    host.shutdown().await;
    Ok(())
}

#[test]
fn guest_output_lands_in_the_host_log_with_the_workload_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nnamespace = \"shop\"\nname = \"talker\"\n[[workload.component]]\npath = {:?}\n",
            guest("http_behaviours")
        ),
    );
    let mut keel = KeelProcess::spawn(
        &manifest,
        &dir.path().join("cache"),
        &["--log-format", "json"],
    )?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    assert_eq!(runtime.block_on(get(addr, "x", "/log"))?.body, "logged");
    let stdout = keel.wait_for_log("fixture line on stdout", Duration::from_secs(10))?;
    let record: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(record["workload"], "shop/talker", "{stdout}");
    assert_eq!(record["component"], "http-behaviours", "{stdout}");
    assert_eq!(record["stream"], "stdout", "{stdout}");
    let stderr = keel.wait_for_log("fixture line on stderr", Duration::from_secs(10))?;
    let record: serde_json::Value = serde_json::from_str(&stderr)?;
    assert_eq!(record["stream"], "stderr", "{stderr}");
    Ok(())
}
