//! Blobs on the NATS JetStream Object Store, on a real `nats-server`
//! started for the run: writing and reading a whole object through keel's
//! `blobstore-nats` plugin (an HTTP PUT or GET of the `blobstore-user`
//! fixture, so the body also crosses loopback HTTP) against the raw
//! `async-nats` Object Store client doing the same on the same server.

use keel_tests::keel::{WorkloadId, WorkloadSpec};
use keel_tests::nats::{NatsServer, host_on};
use keel_tests::{get, guest, request};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const TIMES: u32 = 10;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = NatsServer::start()?;
        let host = host_on(&server).await?;
        let mut spec =
            WorkloadSpec::single(WorkloadId::new("bench", "blob"), guest("blobstore_user"));
        spec.http.host = Some("blob.test".into());
        host.start_workload(spec).await?;
        let addr = host.http_addr().expect("ingress");
        let created = request(addr, "PUT", "blob.test", "/container?c=b", "").await?;
        anyhow::ensure!(created.status == 200, "{created:?}");
        let client = async_nats::connect(server.url()).await?;
        let store = async_nats::jetstream::new(client)
            .get_object_store("bench-blob-b")
            .await?;

        for size in [1usize << 20, 8 << 20] {
            let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let best = |best: &mut Duration, took: Duration| *best = (*best).min(took);
            let (mut keel_put, mut keel_get, mut raw_put, mut raw_get) =
                (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
            // Alternate, best of three, so drift on a shared machine hits both.
            for _ in 0..3 {
                let start = Instant::now();
                for _ in 0..TIMES {
                    let put = request(addr, "PUT", "blob.test", "/object?c=b&o=keel", body.clone())
                        .await?;
                    anyhow::ensure!(put.status == 200, "{put:?}");
                }
                best(&mut keel_put, start.elapsed() / TIMES);
                let start = Instant::now();
                for _ in 0..TIMES {
                    let got = get(addr, "blob.test", "/object?c=b&o=keel").await?;
                    anyhow::ensure!(got.bytes.len() == size, "{} bytes", got.bytes.len());
                }
                best(&mut keel_get, start.elapsed() / TIMES);
                let start = Instant::now();
                for _ in 0..TIMES {
                    store.put("raw", &mut body.as_slice()).await?;
                }
                best(&mut raw_put, start.elapsed() / TIMES);
                let start = Instant::now();
                for _ in 0..TIMES {
                    let mut read = Vec::with_capacity(size);
                    store.get("raw").await?.read_to_end(&mut read).await?;
                    anyhow::ensure!(read.len() == size);
                }
                best(&mut raw_get, start.elapsed() / TIMES);
            }
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{} MiB object: put keel {:.1} ms / raw async-nats {:.1} ms = {:.2}; \
                 get keel {:.1} ms / raw {:.1} ms = {:.2}",
                size >> 20,
                ms(keel_put),
                ms(raw_put),
                ms(keel_put) / ms(raw_put),
                ms(keel_get),
                ms(raw_get),
                ms(keel_get) / ms(raw_get),
            );
        }
        host.shutdown().await;
        anyhow::Ok(())
    })
}
