//! Requests per second of the `http-keyvalue-counter` example against the
//! `hello` example on the same host in the same run: a shared in-memory
//! plugin call must be cheap next to a request. Goal: counter ≥ 0.8× hello.

use keel_tests::guest;
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use keel_tests::load::{parallel_rps, sequential_latency_us};

const CLIENTS: usize = 16;
const EACH: usize = 250;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let host = Host::builder().http_listen("127.0.0.1:0".parse()?).start().await?;
        for (name, file) in [("hello", "hello"), ("counter", "http_keyvalue_counter")] {
            let mut spec = WorkloadSpec::single(WorkloadId::new("bench", name), guest(file));
            spec.http.host = Some(format!("{name}.test"));
            host.start_workload(spec).await?;
        }
        let addr = host.http_addr().expect("ingress");
        for name in ["hello", "counter"] {
            sequential_latency_us(addr, &format!("{name}.test"), "/warm", 200).await?;
        }
        // Alternate, best of three, so drift on a shared machine hits both.
        let (mut hello, mut counter) = (0.0f64, 0.0f64);
        for _ in 0..3 {
            hello = hello.max(parallel_rps(addr, "hello.test", "/", CLIENTS, EACH).await?);
            counter = counter.max(parallel_rps(addr, "counter.test", "/page", CLIENTS, EACH).await?);
        }
        println!(
            "{CLIENTS} clients in parallel: hello {hello:.0} req/s, http-keyvalue-counter {counter:.0} req/s, \
             counter/hello = {:.2} (goal >= 0.80)",
            counter / hello
        );
        host.shutdown().await;
        anyhow::Ok(())
    })
}
