//! Soak: 100,000 workload instantiations against one shared plugin, mixing
//! handles dropped by the guest, moved into the plugin, left behind when the
//! instance ends, and held through a workload trap. Afterwards the plugin
//! must hold no handle. Exits non-zero on a leak. Run by `make bench`.

use keel_tests::guest;
use keel_tests::keel::spec::{LinkMode, PluginSpec};
use keel_tests::keel::{Host, WorkloadId, WorkloadSpec};
use std::time::Instant;

const INSTANTIATIONS: usize = 100_000;
const CLIENTS: usize = 8;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let host = Host::builder().http_listen("127.0.0.1:0".parse()?).start().await?;
        host.add_plugin(PluginSpec::new("tally", Some(guest("tally_plugin")), LinkMode::Shared))
            .await?;
        host.start_workload(WorkloadSpec::single(WorkloadId::new("soak", "user"), guest("tally_user"))).await?;
        let addr = host.http_addr().expect("ingress");
        let started = Instant::now();
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            clients.push(tokio::spawn(async move {
                for i in (client..INSTANTIATIONS).step_by(CLIENTS) {
                    let path = match i % 4 {
                        0 => format!("/add?name=c{}&delta=1", i % 50),
                        1 => format!("/merge?target=t{}&source=s{i}", i % 50),
                        2 => format!("/open-and-trap?name=h{i}"),
                        _ => "/snapshot?name=x".to_string(),
                    };
                    let answer = keel_tests::get(addr, "x", &path).await?;
                    let expected = if i % 4 == 2 { 500 } else { 200 };
                    anyhow::ensure!(answer.status == expected, "{path}: {} {}", answer.status, answer.body);
                }
                anyhow::Ok(())
            }));
        }
        for client in clients {
            client.await??;
        }
        let elapsed = started.elapsed();
        // Handles left by ended instances are released asynchronously.
        let mut live = String::new();
        for _ in 0..100 {
            live = keel_tests::get(addr, "x", "/live").await?.body;
            if live == "0" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        println!(
            "{INSTANTIATIONS} instantiations against a shared plugin in {:.1} s: the plugin holds {live} handles afterwards",
            elapsed.as_secs_f64()
        );
        host.shutdown().await;
        anyhow::ensure!(live == "0", "handle leak: the plugin still holds {live} handles");
        anyhow::Ok(())
    })
}
