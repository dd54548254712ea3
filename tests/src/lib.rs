//! Support for keel's end-to-end tests: locating the guest components and the
//! `keel` binary the Makefile built, starting hosts (in-process or as a
//! `keel run` child), and speaking real HTTP to them over loopback.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use keel;
pub use keel_compose;

pub mod blobstore_suite;
pub mod fleet;
pub mod gate;
pub mod keyvalue_suite;
pub mod load;
pub mod nats;
pub mod raw;
pub mod recorder;
pub mod redis;
pub mod registry;
pub mod stock;
pub mod suite;
pub mod tutorial;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A guest component built by `make guests` (`target/guests/<name>.wasm`).
pub fn guest(name: &str) -> PathBuf {
    let path = repo_root()
        .join("target/guests")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `make guests` (or `make test`) first",
        path.display()
    );
    path
}

/// The `keel` binary of the same build as this test (`make test` builds it).
pub fn keel_bin() -> PathBuf {
    // The test executable lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in <target>/<profile>/deps");
    let bin = profile_dir.join("keel");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p keel` (or `make test`) first",
        bin.display()
    );
    bin
}

/// Engine options for tests: a small pool, so that many hosts can run at
/// once in one test process, yet one whose invocation slots (120 less the
/// shared plugins' reserve of 12) admit the default `max_instances` of 100.
pub fn test_engine() -> keel::EngineOptions {
    keel::EngineOptions::default().with_pool_instances(120)
}

/// A host in this process serving HTTP on a free loopback port.
pub async fn start_host(cache: Option<&Path>) -> Result<keel::Host> {
    let mut builder = keel::Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine());
    if let Some(dir) = cache {
        builder = builder.cache_dir(dir);
    }
    builder.start().await
}

/// A host in this process serving HTTP on a free loopback port, within
/// the ingress bounds `options`.
pub async fn start_host_with(options: keel::IngressOptions) -> Result<keel::Host> {
    keel::Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .ingress_options(options)
        .engine_options(test_engine())
        .start()
        .await
}

/// An HTTP answer, body read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body as text (lossy).
    pub body: String,
    /// Body as sent.
    pub bytes: Bytes,
    /// Response headers.
    pub headers: http::HeaderMap,
}

/// Sends one HTTP/1.1 request over a fresh connection to `addr`, with `host`
/// as the Host header.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> Result<Answer> {
    request_with_headers(addr, method, host, path, &[], body).await
}

/// [`request`] with extra request headers.
pub async fn request_with_headers(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Answer> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into()))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
        headers,
    })
}

/// `GET path` with Host `host`.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Result<Answer> {
    request(addr, "GET", host, path, Bytes::new()).await
}

/// Runs `examples/<name>/app.toml` with `keel run` (plus `extra`
/// arguments) until it reports its workload running: the process, its HTTP
/// address, and the cache directory it uses (removed when dropped).
pub fn run_example(
    name: &str,
    extra: &[&str],
) -> Result<(KeelProcess, SocketAddr, tempfile::TempDir)> {
    let cache = tempfile::tempdir()?;
    let manifest = repo_root().join("examples").join(name).join("app.toml");
    let mut keel = KeelProcess::spawn(&manifest, cache.path(), extra)?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    Ok((keel, addr, cache))
}

/// The manifest entry configuring built-in plugin `name` (composed) with
/// `config` pairs and extra subject `grants`.
pub fn builtin_plugin(
    name: &str,
    config: &[(&str, &str)],
    grants: &[&str],
) -> keel::spec::PluginSpec {
    let mut spec = keel::spec::PluginSpec::new(name, None, keel::spec::LinkMode::Composed);
    spec.config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.grants.subjects = grants.iter().map(|s| s.to_string()).collect();
    spec
}

/// Writes `text` to `dir/name` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path
}

/// A `keel run` child process whose stderr (the log) is collected.
pub struct KeelProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl KeelProcess {
    /// Starts `keel run <manifest> --listen 127.0.0.1:0` with its own cache
    /// folder, plus `extra` arguments.
    pub fn spawn(manifest: &Path, cache_dir: &Path, extra: &[&str]) -> Result<KeelProcess> {
        KeelProcess::spawn_with_env(manifest, cache_dir, extra, &[])
    }

    /// [`KeelProcess::spawn`] with extra environment variables `env`.
    pub fn spawn_with_env(
        manifest: &Path,
        cache_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<KeelProcess> {
        let mut args: Vec<std::ffi::OsString> = vec!["run".into(), manifest.into()];
        args.extend([
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--cache-dir".into(),
        ]);
        args.push(cache_dir.into());
        args.extend(extra.iter().map(Into::into));
        KeelProcess::spawn_args(&args, env)
    }

    /// `keel <args>` (any subcommand) with extra environment variables
    /// `env`, its log collected.
    pub fn spawn_args(args: &[std::ffi::OsString], env: &[(&str, &str)]) -> Result<KeelProcess> {
        let mut child = Command::new(keel_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting keel")?;
        let stderr = child.stderr.take().context("keel's stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        Ok(KeelProcess { child, log })
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.wait_for_log_line(&format!("{needle:?}"), |l| l.contains(needle), timeout)
    }

    /// Waits until a log line satisfies `matches` (`what` names it in the
    /// error) and returns it; fails early if keel exits first.
    pub fn wait_for_log_line(
        &mut self,
        what: &str,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| matches(l)) {
                return Ok(line);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "keel exited with {status} before logging {what}; log:\n{}",
                    self.log().join("\n")
                );
            }
            if Instant::now() > until {
                bail!(
                    "keel did not log {what} within {timeout:?}; log:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for "listening on http://ADDR" and returns ADDR.
    pub fn http_addr(&mut self) -> Result<SocketAddr> {
        let line = self.wait_for_log("listening on http://", Duration::from_secs(60))?;
        let after = line
            .rsplit("http://")
            .next()
            .context("address in the log line")?;
        let addr: String = after
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
            .collect();
        addr.parse()
            .with_context(|| format!("parsing the address in {line:?}"))
    }

    /// The process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `"TERM"`) to the process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        send_signal(self.pid(), signal)
    }

    /// Waits for the process to exit (at most `timeout`) and returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > until {
                bail!("keel did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for KeelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` (`"TERM"`, `"STOP"`, …) to process `pid` with `kill`.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// Builds the guest crate in `dir` (`cargo build --offline --release
/// --target wasm32-wasip2`, into `plugin-scaffold/` of the target folder, so
/// every such build after the first reuses its dependencies) and returns
/// the path of its component `file` (e.g. `whoami.wasm`).
pub fn build_guest_crate(dir: &Path, file: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("plugin-scaffold");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "the crate in {} does not build",
        dir.display()
    );
    target.join("wasm32-wasip2/release").join(file)
}

/// What a `keel` command left: its exit code, stdout and stderr.
pub type KeelOutput = (Option<i32>, String, String);

/// Runs `keel <args>` to completion with `env` added to its environment:
/// (exit code, stdout, stderr).
pub fn keel_output_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<KeelOutput> {
    let output = Command::new(keel_bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .context("running keel")?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Runs `keel <args>` to completion: (exit code, stdout, stderr).
pub fn keel_output(args: &[&str]) -> Result<KeelOutput> {
    keel_output_with_env(args, &[])
}

/// Runs `keel <args>` to completion and returns (exit code, stderr).
pub fn run_keel(args: &[&str]) -> Result<(Option<i32>, String)> {
    let output = Command::new(keel_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running keel")?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Writes `raw` bytes to a fresh connection and returns everything the
/// server sends back until it closes (for requests a client library would
/// not make, such as chunked bodies without a length).
pub async fn raw_request(addr: SocketAddr, raw: &[u8]) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(raw).await?;
    let mut answer = Vec::new();
    // A server may close while we still write; what it answered is what counts.
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// A loopback HTTP server answering every request with 200 and `body`.
/// It reads each request's head before answering: closing a socket with
/// unread data resets the connection, which could beat the response.
pub async fn http_upstream(body: &'static str) -> Result<SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(addr)
}
