//! The keyvalue suite against the built-in in-memory plugin (shared mode).

use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::keyvalue_suite::Target;
use keel_tests::{guest, start_host};

async fn memory() -> anyhow::Result<Target> {
    let host = start_host(None).await?;
    for name in ["a", "b"] {
        let mut spec = WorkloadSpec::single(WorkloadId::new("kv", name), guest("keyvalue_user"));
        spec.http.host = Some(format!("{name}.test"));
        host.start_workload(spec).await?;
    }
    let addr = host.http_addr().expect("ingress");
    Ok(Target { host, addr })
}

keel_tests::keyvalue_suite!(memory);
