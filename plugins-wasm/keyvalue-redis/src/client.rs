//! The Redis client of one plugin instance: one connection, opened on
//! first use and again after it broke, commands pipelined in groups.
//!
//! A call into a shared plugin runs one at a time, so one connection
//! serves every call in order and a reply always belongs to the command
//! just sent. Any failure mid-group drops the connection: a later reply
//! must never be read as the answer to another command.

use crate::conn::{Conn, Deadline, Failure};
use crate::resp::{self, Reply};
use crate::settings::Settings;

/// One command: its words.
pub type Command = Vec<Vec<u8>>;

/// Whether a group may be sent again on a fresh connection when the
/// connection it was sent on turns out to be dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Running it twice does what running it once does.
    Idempotent,
    /// It must run at most once (a `MULTI`…`EXEC` after a `WATCH`).
    Never,
}

/// The client.
pub struct Client {
    settings: Result<Settings, String>,
    conn: Option<Conn>,
}

impl Client {
    /// A client for `settings` (an error if the config was unreadable: then
    /// every call fails with it).
    pub fn new(settings: Result<Settings, String>) -> Client {
        Client {
            settings,
            conn: None,
        }
    }

    /// The settings, or the config error.
    pub fn settings(&self) -> Result<&Settings, Failure> {
        self.settings.as_ref().map_err(|e| Failure::Io(e.clone()))
    }

    /// A deadline `timeout_ms` from now.
    pub fn deadline(&self) -> Result<Deadline, Failure> {
        Ok(Deadline::after_ms(self.settings()?.timeout_ms))
    }

    /// Connects unless connected: how `open` reports an unreachable or
    /// ungranted Redis at once.
    pub fn connect(&mut self, deadline: &Deadline) -> Result<(), Failure> {
        if self.conn.is_none() {
            self.conn = Some(self.handshake(deadline)?);
        }
        Ok(())
    }

    /// Sends `group` in one write and reads one reply per command. Error
    /// replies are returned as replies: what one means depends on the
    /// command. A connection found dead before any reply came is replaced
    /// and the group sent again if `retry` allows.
    pub fn run(
        &mut self,
        group: &[Command],
        retry: Retry,
        deadline: &Deadline,
    ) -> Result<Vec<Reply>, Failure> {
        let reused = self.conn.is_some();
        match self.try_run(group, deadline) {
            Err(Attempt::DeadBeforeReply(_)) if reused && retry == Retry::Idempotent => {
                self.try_run(group, deadline).map_err(Attempt::failure)
            }
            other => other.map_err(Attempt::failure),
        }
    }

    /// [`run`](Self::run) for one command whose error reply is a failure.
    pub fn one(
        &mut self,
        command: Command,
        retry: Retry,
        deadline: &Deadline,
    ) -> Result<Reply, Failure> {
        let reply = self
            .run(std::slice::from_ref(&command), retry, deadline)?
            .pop()
            .ok_or_else(|| Failure::Reply("no reply".into()))?;
        refused(reply)
    }

    fn try_run(&mut self, group: &[Command], deadline: &Deadline) -> Result<Vec<Reply>, Attempt> {
        let max = self.settings().map_err(Attempt::Other)?.max_reply_bytes;
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.handshake(deadline).map_err(Attempt::Other)?,
        };
        let mut bytes = Vec::new();
        for command in group {
            let words: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            resp::encode(&mut bytes, &words);
        }
        conn.send(&bytes, deadline)
            .map_err(Attempt::DeadBeforeReply)?;
        let mut replies = Vec::with_capacity(group.len());
        for _ in group {
            match conn.receive(max, deadline) {
                Ok(reply) => replies.push(reply),
                Err(e @ Failure::Io(_)) if replies.is_empty() => {
                    return Err(Attempt::DeadBeforeReply(e));
                }
                Err(e) => return Err(Attempt::Other(e)),
            }
        }
        // Only a connection that answered everything is kept.
        self.conn = Some(conn);
        Ok(replies)
    }

    /// A new connection, authenticated and on its database.
    fn handshake(&self, deadline: &Deadline) -> Result<Conn, Failure> {
        let settings = self.settings()?;
        let mut conn = Conn::open(&settings.address, deadline)?;
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        if let Some(password) = &settings.password {
            match &settings.username {
                Some(user) => {
                    resp::encode(&mut bytes, &[b"AUTH", user.as_bytes(), password.as_bytes()])
                }
                None => resp::encode(&mut bytes, &[b"AUTH", password.as_bytes()]),
            }
            expected.push("authenticating (config `password`)");
        }
        if let Some(db) = settings.db {
            resp::encode(&mut bytes, &[b"SELECT", db.to_string().as_bytes()]);
            expected.push("selecting the database (config `db`)");
        }
        if expected.is_empty() {
            return Ok(conn);
        }
        conn.send(&bytes, deadline)?;
        for step in expected {
            if let Reply::Error(why) = conn.receive(settings.max_reply_bytes, deadline)? {
                return Err(Failure::Server(format!("{step}: {why}")));
            }
        }
        Ok(conn)
    }
}

/// How one attempt at a group failed.
enum Attempt {
    /// The connection failed before any reply came back: if it was an
    /// old connection, the server most likely closed it while idle (a
    /// restart) before reading the group.
    DeadBeforeReply(Failure),
    /// Any other failure.
    Other(Failure),
}

impl Attempt {
    fn failure(self) -> Failure {
        match self {
            Attempt::DeadBeforeReply(f) | Attempt::Other(f) => f,
        }
    }
}

/// `reply`, or its error as a failure.
pub fn refused(reply: Reply) -> Result<Reply, Failure> {
    match reply {
        Reply::Error(why) => Err(Failure::Server(why)),
        other => Ok(other),
    }
}

/// Words of a command, from anything byte-like.
#[macro_export]
macro_rules! cmd {
    ($($word:expr),* $(,)?) => {
        vec![$(AsRef::<[u8]>::as_ref(&$word).to_vec()),*]
    };
}
