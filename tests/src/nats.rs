//! A real `nats-server` for tests: each test starts its own, with JetStream,
//! on a free loopback port with its own store folder, and it stops when
//! dropped. `make test` installs Debian's `nats-server`.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A keel host (HTTP on a free loopback port) whose broker is `server`, so
/// the NATS-backed built-in plugins are its defaults.
pub async fn host_on(server: &NatsServer) -> Result<keel::Host> {
    keel::Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(crate::test_engine())
        .nats(keel::manifest::NatsSpec::url(server.url()))
        .start()
        .await
}

/// A running `nats-server`.
pub struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server with JetStream on a free loopback port.
    pub fn start() -> Result<NatsServer> {
        let store = tempfile::tempdir()?;
        let port = free_port()?;
        let child = spawn(port, store.path())?;
        let server = NatsServer {
            child,
            port,
            _store: store,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Stops the server (a crash, as far as clients can tell).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = spawn(self.port, self._store.path())?;
        self.wait_ready()
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
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} nats-server failed");
        Ok(())
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > until {
                bail!(
                    "nats-server did not listen on port {} within 10 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16, store: &Path) -> Result<Child> {
    Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nats-server (is it installed? `make test` installs it)")
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
