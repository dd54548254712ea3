//! A real `redis-server` for tests: each test starts its own, on a free
//! loopback port, in its own temporary folder, without persistence; it
//! stops when dropped. `make test` installs Debian's `redis-server`.
//!
//! A small RESP client ([`RedisServer::command`]) lets tests look at what
//! the server holds, independently of the plugin under test.

use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a start is tried on another port when the one picked was
/// taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
}

/// One RESP2 reply, as the test client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+…`.
    Status(String),
    /// `-…`.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$…` (`None`: nil).
    Bulk(Option<Vec<u8>>),
    /// `*…` (`None`: nil).
    Array(Option<Vec<Reply>>),
}

impl RedisServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> Result<RedisServer> {
        RedisServer::start_with_password(None)
    }

    /// Starts a server that wants `password` (`requirepass`) when given.
    pub fn start_with_password(password: Option<&str>) -> Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn(port, dir.path(), password) {
                Ok(child) => {
                    return Ok(RedisServer {
                        child,
                        port,
                        password: password.map(str::to_string),
                        dir,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (a crash, as far as clients can tell).
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // A paused server is let go first, so that it can die.
            let _ = self.signal("CONT");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = spawn(self.port, self.dir.path(), self.password.as_deref())?;
        Ok(())
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the
    /// kernel, nothing is answered, until [`resume`](Self::resume).
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

    /// Runs one command on a fresh connection (authenticated if the server
    /// wants a password) and returns its reply.
    pub fn command(&self, args: &[&str]) -> Result<Reply> {
        command_on(self.port, self.password.as_deref(), args)
    }

    /// Every key the server holds (`KEYS *`), sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        let Reply::Array(Some(items)) = self.command(&["KEYS", "*"])? else {
            bail!("KEYS did not answer an array");
        };
        let mut keys: Vec<String> = items
            .into_iter()
            .filter_map(|item| match item {
                Reply::Bulk(Some(key)) => Some(String::from_utf8_lossy(&key).into_owned()),
                _ => None,
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// How many connections the server has accepted since it started
    /// (`INFO stats`' `total_connections_received`), this call's own included.
    pub fn connections_received(&self) -> Result<u64> {
        let Reply::Bulk(Some(info)) = self.command(&["INFO", "stats"])? else {
            bail!("INFO did not answer a bulk string");
        };
        String::from_utf8_lossy(&info)
            .lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|n| n.trim().parse().ok())
            .context("no total_connections_received in INFO stats")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `redis-server` on `port` and returns it once it logged that it
/// accepts connections and answered `PING`; its log is read to the end by
/// a thread, so the server never blocks on a full pipe.
fn spawn(port: u16, dir: &std::path::Path, password: Option<&str>) -> Result<Child> {
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--logfile", "", "--loglevel", "notice"])
        .arg("--dir")
        .arg(dir);
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server (is it installed? `make test` installs it)")?;
    let stdout = child.stdout.take().context("redis-server's log")?;
    let (line_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let ready = wait_ready(&lines).and_then(|()| match command_on(port, password, &["PING"])? {
        Reply::Status(pong) if pong == "PONG" => Ok(()),
        other => bail!("redis-server answered PING with {other:?}"),
    });
    match ready {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Reads the server's log until "Ready to accept connections".
fn wait_ready(lines: &mpsc::Receiver<String>) -> Result<()> {
    let until = Instant::now() + READY_TIMEOUT;
    let mut log = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("Ready to accept connections") => return Ok(()),
            Ok(line) => log.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "redis-server was not ready within {READY_TIMEOUT:?}; log:\n{}",
                    log.join("\n")
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!(
                    "redis-server exited while starting; log:\n{}",
                    log.join("\n")
                )
            }
        }
    }
}

/// One command on a fresh connection to `port`.
fn command_on(port: u16, password: Option<&str>, args: &[&str]) -> Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(READY_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    if let Some(password) = password {
        stream.write_all(&encode(&["AUTH", password]))?;
        let reply = read_reply(&mut reader)?;
        ensure!(reply == Reply::Status("OK".into()), "AUTH: {reply:?}");
    }
    stream.write_all(&encode(args))?;
    read_reply(&mut reader)
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn read_reply(reader: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1).context("an empty reply line")?;
    let number = || -> Result<i64> { rest.parse().with_context(|| format!("`{rest}`")) };
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Ok(len) => {
                let mut bytes = vec![0; len + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(len);
                Reply::Bulk(Some(bytes))
            }
            Err(_) => Reply::Bulk(None),
        },
        "*" => match usize::try_from(number()?) {
            Ok(count) => Reply::Array(Some(
                (0..count)
                    .map(|_| read_reply(reader))
                    .collect::<Result<_>>()?,
            )),
            Err(_) => Reply::Array(None),
        },
        other => bail!("unknown reply type `{other}`"),
    })
}
