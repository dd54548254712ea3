//! keyvalue on NATS JetStream KV, on a real `nats-server` started for the run:
//!
//! - latency of one `get` through keel's `keyvalue-nats` plugin (timed inside
//!   the guest, so HTTP is not counted) against a raw `async-nats` `kv.get`
//!   of the same key on the same server. Goal: keel ≤ 1.2× raw.
//! - requests per second of `http-keyvalue-counter` on NATS KV against the
//!   `hello` example on the same host.

use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::load::{parallel_rps, sequential_latency_us};
use keel_tests::nats::{NatsServer, host_on};
use keel_tests::{get, guest, request};
use std::time::Instant;

const GETS: u32 = 2_000;
const CLIENTS: usize = 16;
const EACH: usize = 250;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = NatsServer::start()?;
        let host = host_on(&server).await?;
        for (name, file) in [
            ("kv", "keyvalue_user"),
            ("hello", "hello"),
            ("counter", "http_keyvalue_counter"),
        ] {
            let mut spec = WorkloadSpec::single(WorkloadId::new("bench", name), guest(file));
            spec.http.host = Some(format!("{name}.test"));
            host.start_workload(spec).await?;
        }
        let addr = host.http_addr().expect("ingress");
        let value = vec![b'v'; 128];
        let put = request(addr, "PUT", "kv.test", "/set?bucket=lat&key=k", value.clone()).await?;
        anyhow::ensure!(put.status == 200, "{put:?}");

        let client = async_nats::connect(server.url()).await?;
        let kv = async_nats::jetstream::new(client)
            .get_key_value("bench-kv-lat")
            .await?;
        let timed = format!("/time-gets?bucket=lat&key=k&n={GETS}");
        let (mut keel_ns, mut raw_ns) = (f64::MAX, f64::MAX);
        // Alternate, best of three, so drift on a shared machine hits both.
        for _ in 0..3 {
            let answer = get(addr, "kv.test", &timed).await?;
            let total: f64 = answer.body.trim().parse()?;
            keel_ns = keel_ns.min(total / f64::from(GETS));
            let start = Instant::now();
            for _ in 0..GETS {
                let got = kv.get("k").await?;
                anyhow::ensure!(got.as_deref() == Some(value.as_slice()));
            }
            raw_ns = raw_ns.min(start.elapsed().as_nanos() as f64 / f64::from(GETS));
        }
        println!(
            "keyvalue get on NATS KV: keel plugin {:.1} µs, raw async-nats kv.get {:.1} µs, \
             keel/raw = {:.2} (goal <= 1.20)",
            keel_ns / 1e3,
            raw_ns / 1e3,
            keel_ns / raw_ns
        );

        for name in ["hello", "counter"] {
            sequential_latency_us(addr, &format!("{name}.test"), "/warm", 100).await?;
        }
        let (mut hello, mut counter) = (0.0f64, 0.0f64);
        for _ in 0..3 {
            hello = hello.max(parallel_rps(addr, "hello.test", "/", CLIENTS, EACH).await?);
            counter =
                counter.max(parallel_rps(addr, "counter.test", "/page", CLIENTS, EACH).await?);
        }
        println!(
            "{CLIENTS} clients in parallel: hello {hello:.0} req/s, http-keyvalue-counter on NATS KV \
             {counter:.0} req/s, counter/hello = {:.2}",
            counter / hello
        );
        host.shutdown().await;
        anyhow::Ok(())
    })
}
