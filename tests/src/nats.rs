//! A real `nats-server` for tests: each test starts its own, with JetStream,
//! on a loopback port it picks itself, with its own store folder, and it stops when
//! dropped. `make test` installs Debian's `nats-server`.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A keel host (HTTP on a free loopback port) whose broker is `server`, so
/// the NATS-backed built-in plugins are its defaults.
pub async fn host_on(server: &NatsServer) -> Result<keel::Host> {
    keel::Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(crate::test_engine())
        .nats(keel::spec::NatsSpec::url(server.url()))
        .start()
        .await
}

/// A running `nats-server`.
pub struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

/// How long a server may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl NatsServer {
    /// Starts a server with JetStream on a loopback port the server picks
    /// itself (`-p -1`), so tests running at once never race for a port.
    pub fn start() -> Result<NatsServer> {
        let store = tempfile::tempdir()?;
        let (child, port) = spawn(None, store.path(), &[])?;
        Ok(NatsServer {
            child,
            port,
            _store: store,
        })
    }

    /// A server speaking only TLS and verifying its clients (mutual TLS),
    /// with certificates made by `openssl` in `dir`: see [`TlsFiles`].
    pub fn start_mutual_tls(dir: &Path) -> Result<(NatsServer, TlsFiles)> {
        let files = TlsFiles::generate(dir)?;
        let store = tempfile::tempdir()?;
        let args = [
            "--tlsverify".to_string(),
            "--tlscert".to_string(),
            files.server_cert.display().to_string(),
            "--tlskey".to_string(),
            files.server_key.display().to_string(),
            "--tlscacert".to_string(),
            files.ca.display().to_string(),
        ];
        let (child, port) = spawn(None, store.path(), &args)?;
        let server = NatsServer {
            child,
            port,
            _store: store,
        };
        Ok((server, files))
    }

    /// Stops the server (a crash, as far as clients can tell).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let (child, _) = spawn(Some(self.port), self._store.path(), &[])?;
        self.child = child;
        Ok(())
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is
    /// answered, so a client waiting on the server waits until
    /// [`resume`](Self::resume). A way to hold a host mid-operation on a
    /// signal rather than a timer.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Lets a [`pause`](Self::pause)d server go on (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        crate::send_signal(self.child.id(), signal)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nats-server` on `port` (any free one when `None`) and returns it
/// once it reports it is ready, with the port it listens on. Its log is
/// read to the end by a thread, so the server never blocks on a full pipe.
fn spawn(port: Option<u16>, store: &Path, extra: &[String]) -> Result<(Child, u16)> {
    let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
        .arg(store)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nats-server (is it installed? `make test` installs it)")?;
    let stderr = child.stderr.take().context("nats-server's log")?;
    let (line_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // After start-up nobody listens; the pipe is drained all the same.
            let _ = line_tx.send(line);
        }
    });
    match wait_ready(&lines) {
        Ok(port) => Ok((child, port)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Reads the server's log until "Server is ready"; returns the port of its
/// "Listening for client connections on ADDR:PORT" line.
fn wait_ready(lines: &mpsc::Receiver<String>) -> Result<u16> {
    const LISTENING: &str = "Listening for client connections on ";
    let until = Instant::now() + READY_TIMEOUT;
    let mut log = Vec::new();
    let mut port = None;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "nats-server was not ready within {READY_TIMEOUT:?}; log:\n{}",
                    log.join("\n")
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!(
                    "nats-server exited while starting; log:\n{}",
                    log.join("\n")
                )
            }
        };
        if let Some((_, listening)) = line.split_once(LISTENING) {
            let found = listening
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok());
            port = Some(found.with_context(|| format!("no port in {line:?}"))?);
        }
        let ready = line.contains("Server is ready");
        log.push(line);
        if ready {
            return port
                .with_context(|| format!("nats-server named no port; log:\n{}", log.join("\n")));
        }
    }
}

/// PEM files for a mutual-TLS server on 127.0.0.1: a CA, the server's
/// certificate and key, and a client's, all signed by the CA.
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: std::path::PathBuf,
    /// The server's certificate (for IP 127.0.0.1).
    pub server_cert: std::path::PathBuf,
    /// The server's key.
    pub server_key: std::path::PathBuf,
    /// A client certificate the server accepts.
    pub client_cert: std::path::PathBuf,
    /// Its key.
    pub client_key: std::path::PathBuf,
}

impl TlsFiles {
    /// Makes the files in `dir` with `openssl`.
    fn generate(dir: &Path) -> Result<TlsFiles> {
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| -> Result<()> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .context("running openssl")?;
            anyhow::ensure!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Ok(())
        };
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )?;
        std::fs::write(path("client.ext"), "extendedKeyUsage=clientAuth\n")?;
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=keel test CA",
        ])?;
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=keel-host")] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ])?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ])?;
        }
        Ok(TlsFiles {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
        })
    }
}
