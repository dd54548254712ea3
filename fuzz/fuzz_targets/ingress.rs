//! Arbitrary bytes sent to a real keel host serving the `hello` guest over
//! loopback. The host is started once per fuzzing process; each input is
//! one connection: the bytes, then a well-formed request (so that a
//! complete request in the input is answered, not cut off by the end of the
//! stream), then the end of the stream. The host must never panic (a panic
//! on any of its threads aborts the process, which libFuzzer reports), must
//! answer or close every connection, and must still greet a plain request
//! afterwards, which is checked on the first input and every
//! `CHECK_EVERY` inputs.

#![no_main]

use keel::{Host, WorkloadId, WorkloadSpec};
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the host is asked a well-formed request.
const CHECK_EVERY: u64 = 256;

/// Longer than any answer takes; reaching it means the host hung.
const ANSWER_BOUND: Duration = Duration::from_secs(30);

/// Appended to every input.
const TRAILER: &[u8] = b"GET /after HTTP/1.1\r\nHost: fuzz\r\n\r\n";

struct Served {
    /// Keeps the host's tasks running.
    _runtime: tokio::runtime::Runtime,
    /// Keeps the workload and the ingress alive.
    _host: Host,
    addr: SocketAddr,
}

static SERVED: OnceLock<Served> = OnceLock::new();
static INPUTS: AtomicU64 = AtomicU64::new(0);

fn served() -> &'static Served {
    SERVED.get_or_init(|| {
        let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/hello.wasm");
        let hello = std::fs::canonicalize(hello)
            .unwrap_or_else(|e| panic!("{hello}: {e}; run `make guests` first"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime");
        let host = runtime.block_on(async {
            let host = Host::builder()
                .http_listen("127.0.0.1:0".parse().expect("an address"))
                .start()
                .await
                .expect("the host starts");
            host.start_workload(WorkloadSpec::single(
                WorkloadId::new("fuzz", "hello"),
                hello,
            ))
            .await
            .expect("hello starts");
            host
        });
        let addr = host.http_addr().expect("the host serves HTTP");
        Served {
            _runtime: runtime,
            _host: host,
            addr,
        }
    })
}

/// Sends `bytes`, ends the stream, and reads until the host closes.
fn exchange(addr: SocketAddr, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("the host accepts connections");
    stream
        .set_read_timeout(Some(ANSWER_BOUND))
        .expect("a timeout");
    // The host may close as soon as it reads something it refuses: a
    // refused write is an answer too.
    if stream.write_all(bytes).is_ok() && end_stream {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the host neither answered nor closed the connection ({e}) after {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
    answer
}

fn check_greets(addr: SocketAddr) {
    let answer = exchange(
        addr,
        b"GET /check HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
        false,
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("You asked for /check"),
        "the host stopped answering well-formed requests: {answer:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let served = served();
    if INPUTS
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(CHECK_EVERY)
    {
        check_greets(served.addr);
    }
    let mut bytes = Vec::with_capacity(data.len() + TRAILER.len());
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(TRAILER);
    exchange(served.addr, &bytes, true);
});
