//! The ingress's bounds on connections, over real loopback sockets: the
//! connection limit, the header, idle and write timeouts, the shutdown
//! deadline, and requests with two Host headers.

use keel_tests::keel::IngressOptions;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::raw::{RawConnection, wait_until};
use keel_tests::{get, guest, raw_request, start_host_with};
use std::time::{Duration, Instant};

/// Longer than any bound under test: a timeout that should not fire.
const NEVER: Duration = Duration::from_secs(3600);
/// How long a test waits for something that must happen.
const BOUNDED: Duration = Duration::from_secs(20);

fn options() -> IngressOptions {
    IngressOptions::default()
        .with_max_connections(64)
        .with_header_read_timeout(NEVER)
        .with_idle_timeout(NEVER)
        .with_write_timeout(NEVER)
        .with_shutdown_timeout(NEVER)
}

async fn host_with(options: IngressOptions) -> anyhow::Result<(Host, std::net::SocketAddr)> {
    let host = start_host_with(options).await?;
    let mut spec = WorkloadSpec::single(WorkloadId::new("conn", "app"), guest("http_behaviours"));
    // The guest's own deadline must not be what ends a connection here.
    spec.limits.timeout = Duration::from_secs(600);
    host.start_workload(spec).await?;
    let addr = host.http_addr().expect("ingress");
    Ok((host, addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_over_the_limit_are_refused_until_a_slot_frees() -> anyhow::Result<()> {
    let (host, addr) = host_with(options().with_max_connections(4)).await?;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut connection = RawConnection::connect(addr).await?;
        assert_eq!(connection.get("/").await?.0, 200);
        held.push(connection);
    }
    assert_eq!(host.http_connections(), Some(4));

    let refused = raw_request(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("connection: close"), "{refused}");
    assert!(refused.contains("limit of 4 connections"), "{refused}");
    // The connections holding the slots are served as before.
    for connection in &mut held {
        assert_eq!(connection.get("/").await?.0, 200);
    }

    drop(held.pop());
    wait_until("a slot freed", BOUNDED, || {
        host.http_connections() == Some(3)
    })
    .await?;
    let answer = get(addr, "x", "/").await?;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "hello from fixture")
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() -> anyhow::Result<()> {
    // The idle timeout is longer than the header one: idle time is not
    // counted as reading a head.
    let idle = Duration::from_millis(1500);
    let (host, addr) = host_with(
        options()
            .with_header_read_timeout(Duration::from_millis(200))
            .with_idle_timeout(idle),
    )
    .await?;
    let mut connection = RawConnection::connect(addr).await?;
    // The server's idle time starts after this (when its response ends).
    let sent = Instant::now();
    assert_eq!(connection.get("/").await?.0, 200);
    assert_eq!(connection.wait_closed(BOUNDED).await?, 0);
    assert!(
        sent.elapsed() >= idle,
        "closed {:?} after the request",
        sent.elapsed()
    );
    wait_until("the connection gone", BOUNDED, || {
        host.http_connections() == Some(0)
    })
    .await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickling_request_head_is_cut_at_the_header_timeout() -> anyhow::Result<()> {
    let header = Duration::from_millis(500);
    let (host, addr) = host_with(options().with_header_read_timeout(header)).await?;
    // Before connecting: the server times the head from its accept.
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut reader, mut writer) = stream.into_split();
    // The client: a request line, then one byte of a header every 20 ms,
    // until the server closes.
    let trickle = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
            .await?;
        loop {
            writer.write_all(b"a").await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let closed = tokio::time::timeout(BOUNDED, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "a trickling client kept its connection");
    assert!(
        started.elapsed() >= header,
        "cut after {:?}",
        started.elapsed()
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_cut_at_the_write_timeout() -> anyhow::Result<()> {
    let (host, addr) = host_with(options().with_write_timeout(Duration::from_millis(300))).await?;
    // A small receive window, so that the response stops moving soon.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut connection = RawConnection::from_stream(socket.connect(addr).await?);
    let kib = 16 << 10; // 16 MiB, far more than the sockets buffer
    connection
        .send(format!("GET /big?kib={kib} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    wait_until("the connection opened", BOUNDED, || {
        host.http_connections() == Some(1)
    })
    .await?;
    // Not reading: the server gives up on the write and closes.
    wait_until("the stalled connection closed", BOUNDED, || {
        host.http_connections() == Some(0)
    })
    .await?;
    let received = connection.wait_closed(BOUNDED).await?;
    assert!(received < kib << 10, "the whole response arrived");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_with_two_host_headers_gets_400() -> anyhow::Result<()> {
    let (host, addr) = host_with(options()).await?;
    let answer = raw_request(
        addr,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // One Host header is routed as usual.
    assert_eq!(get(addr, "a.test", "/").await?.status, 200);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_closes_connections_still_open_at_its_deadline() -> anyhow::Result<()> {
    let deadline = Duration::from_millis(300);
    let (host, addr) = host_with(options().with_shutdown_timeout(deadline)).await?;
    // A request that would take ten minutes: draining cannot wait for it.
    let mut connection = RawConnection::connect(addr).await?;
    connection
        .send(b"GET /hold?ms=600000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let id = WorkloadId::new("conn", "app");
    wait_until("the request in flight", BOUNDED, || {
        host.status(&id).map(|s| s.in_flight) == Some(1)
    })
    .await?;
    let started = Instant::now();
    tokio::time::timeout(BOUNDED, host.shutdown())
        .await
        .map_err(|_| anyhow::anyhow!("shutdown waited past its deadline"))?;
    assert!(
        started.elapsed() >= deadline,
        "shutdown did not wait for the request in flight ({:?})",
        started.elapsed()
    );
    // Closed without an answer.
    assert_eq!(connection.wait_closed(BOUNDED).await?, 0);
    Ok(())
}
