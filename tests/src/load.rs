//! Load loops for benchmarks: real HTTP over loopback, bounded in count.

use crate::get;
use anyhow::{Result, ensure};
use std::net::SocketAddr;
use std::time::Instant;

/// Mean microseconds per request over `count` sequential `GET path`s.
pub async fn sequential_latency_us(
    addr: SocketAddr,
    host: &str,
    path: &str,
    count: usize,
) -> Result<f64> {
    let started = Instant::now();
    for _ in 0..count {
        let answer = get(addr, host, path).await?;
        ensure!(
            answer.status == 200,
            "status {}: {}",
            answer.status,
            answer.body
        );
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / count as f64)
}

/// Requests per second with `clients` concurrent clients making `each`
/// sequential `GET path`s.
pub async fn parallel_rps(
    addr: SocketAddr,
    host: &str,
    path: &str,
    clients: usize,
    each: usize,
) -> Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let host = host.to_string();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                let answer = get(addr, &host, &path).await?;
                ensure!(
                    answer.status == 200,
                    "status {}: {}",
                    answer.status,
                    answer.body
                );
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((clients * each) as f64 / started.elapsed().as_secs_f64())
}
