//! Server processes under test: started pinned to one core, polled until
//! they answer 200, measured (resident memory), and stopped.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `argv` under `taskset -c <cpu>` (which execs it, so the child's
    /// pid is the server's), its output appended to `log`.
    pub fn start(argv: &[String], cpu: &str, addr: SocketAddr, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file")?;
        let child = Command::new("taskset")
            .args(["-c", cpu])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", argv.join(" ")))?;
        Ok(Self { child, addr })
    }

    /// Polls with `GET /` (Host `host`) until the answer is 200; returns
    /// the time from `since` to that answer. Fails when the process exits or
    /// `timeout` passes first.
    pub fn wait_ok(&mut self, host: &str, since: Instant, timeout: Duration) -> Result<Duration> {
        loop {
            if get_status(self.addr, host) == Some(200) {
                return Ok(since.elapsed());
            }
            if let Some(status) = self.child.try_wait().context("checking the server")? {
                bail!(
                    "the server at {} exited before answering: {status}",
                    self.addr
                );
            }
            if since.elapsed() > timeout {
                bail!("no 200 from {} within {timeout:?}", self.addr);
            }
            // Short enough not to blur a start of tens of milliseconds.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The server's resident memory (`VmRSS` in `/proc/PID/status`), KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("reading /proc/PID/status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .context("no VmRSS line")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET /` over a fresh connection: the status code, or `None` when
/// nothing (or nothing HTTP) answered.
pub fn get_status(addr: SocketAddr, host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}

/// Fails when something already answers at `addr` (a server left over from
/// an earlier run would be measured instead of the one started).
pub fn ensure_free(addr: SocketAddr) -> Result<()> {
    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        bail!("{addr} is already in use; stop what listens there or pick --port-base");
    }
    Ok(())
}
