//! A workload's data name (`WorkloadSpec::data_name`): workloads of one
//! namespace giving one data name share the built-in memory backends'
//! buckets and containers; a workload without one keeps its own; a
//! workload of another namespace never sees them, whatever name it gives.
//! (Over NATS the same holds across hosts: `fleet_lattice`.)

use keel_tests::keel::{Error, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, request, start_host};

fn workload(namespace: &str, name: &str, file: &str, data: Option<&str>) -> WorkloadSpec {
    let mut spec = WorkloadSpec::single(WorkloadId::new(namespace, name), guest(file));
    spec.http.host = Some(format!("{name}.{namespace}"));
    spec.data_name = data.map(str::to_string);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_giving_one_data_name_share_keyvalue_within_their_namespace() -> anyhow::Result<()>
{
    let host = start_host(None).await?;
    let counter = "http_keyvalue_counter";
    for spec in [
        workload("shop", "counter-a", counter, Some("counter")),
        workload("shop", "counter-b", counter, Some("counter")),
        workload("shop", "counter", counter, None),
        workload("shop", "alone", counter, None),
        workload("team-b", "counter-a", counter, Some("counter")),
    ] {
        host.start_workload(spec).await?;
    }
    let addr = host.http_addr().expect("ingress");
    let visits = |n: u32| format!("/apples has been visited {n} times\n");
    assert_eq!(
        get(addr, "counter-a.shop", "/apples").await?.body,
        visits(1)
    );
    assert_eq!(
        get(addr, "counter-b.shop", "/apples").await?.body,
        visits(2)
    );
    // A workload whose name is the data name shares it too: it is its
    // data name by default.
    assert_eq!(get(addr, "counter.shop", "/apples").await?.body, visits(3));
    assert_eq!(get(addr, "alone.shop", "/apples").await?.body, visits(1));
    assert_eq!(
        get(addr, "counter-a.team-b", "/apples").await?.body,
        visits(1)
    );
    assert_eq!(
        get(addr, "counter-a.shop", "/apples").await?.body,
        visits(4)
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_giving_one_data_name_share_blobstore_containers() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let blobs = "http_blobstore";
    for spec in [
        workload("shop", "writer", blobs, Some("files")),
        workload("shop", "reader", blobs, Some("files")),
        workload("shop", "stranger", blobs, None),
        workload("team-b", "reader", blobs, Some("files")),
    ] {
        host.start_workload(spec).await?;
    }
    let addr = host.http_addr().expect("ingress");
    let put = request(
        addr,
        "PUT",
        "writer.shop",
        "/greeting.txt",
        &b"hello, blobs"[..],
    )
    .await?;
    assert!(put.status < 300, "{put:?}");
    let read = get(addr, "reader.shop", "/greeting.txt").await?;
    assert_eq!((read.status, read.body.as_str()), (200, "hello, blobs"));
    for other in ["stranger.shop", "reader.team-b"] {
        assert_eq!(
            get(addr, other, "/greeting.txt").await?.status,
            404,
            "{other}"
        );
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_name_is_a_keel_name() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    for bad in ["Other.Ns", "", "a/b"] {
        let spec = workload("shop", "counter", "http_keyvalue_counter", Some(bad));
        match host.start_workload(spec).await {
            Err(Error::InvalidSpec(invalid)) => assert_eq!(invalid.field, "data_name", "{bad}"),
            other => panic!("expected an invalid spec for `{bad}`, got {other:?}"),
        }
    }
    host.shutdown().await;
    Ok(())
}
