//! One TCP connection to Redis over `wasi:sockets`, every wait bounded by
//! a [`Deadline`]: a server that stops answering costs a call its deadline
//! and an error, never a hang.
//!
//! Sockets are non-blocking in WASI; each wait polls the socket's or
//! stream's pollable together with a `wasi:clocks` timer for the deadline,
//! whichever comes first.

use crate::resp::{self, Reply};
use crate::settings::Address;
use keel_guest::wasip2::clocks::monotonic_clock;
use keel_guest::wasip2::io::poll::{Pollable, poll};
use keel_guest::wasip2::io::streams::{InputStream, OutputStream, StreamError};
use keel_guest::wasip2::sockets::instance_network::instance_network;
use keel_guest::wasip2::sockets::ip_name_lookup::resolve_addresses;
use keel_guest::wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use keel_guest::wasip2::sockets::tcp::TcpSocket;
use keel_guest::wasip2::sockets::tcp_create_socket::create_tcp_socket;

/// Bytes asked of the socket per read.
const READ_PIECE: u64 = 64 * 1024;

/// Why talking to Redis failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The host refused the address: the manifest did not grant it. As
    /// configured, and as resolved (the address a grant must list).
    NotGranted {
        /// The `address` of the config.
        configured: String,
        /// The IP address and port it was connected to.
        resolved: String,
    },
    /// The connection failed, closed or broke.
    Io(String),
    /// Nothing (or not all) came back before the deadline.
    Timeout(String),
    /// Redis answered with an error reply.
    Server(String),
    /// The reply broke the protocol or its size cap.
    Reply(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotGranted {
                configured,
                resolved,
            } if configured == resolved => write!(
                f,
                "the Redis address `{configured}` is not granted to this plugin: list it in \
                 the plugin's `[plugin.grants] sockets`"
            ),
            Failure::NotGranted {
                configured,
                resolved,
            } => write!(
                f,
                "the Redis address `{configured}` ({resolved}) is not granted to this plugin: \
                 list `{resolved}` in the plugin's `[plugin.grants] sockets`"
            ),
            Failure::Io(why) | Failure::Timeout(why) | Failure::Reply(why) => f.write_str(why),
            Failure::Server(why) => write!(f, "Redis refused the command: {why}"),
        }
    }
}

/// The moment a call's waits must end by, on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: u64,
    budget_ms: u64,
}

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Deadline {
        Deadline {
            at: monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000)),
            budget_ms: ms,
        }
    }

    /// Waits until `pollable` is ready; an error naming `what` was waited
    /// for if the deadline comes first.
    fn wait(&self, pollable: &Pollable, what: &str) -> Result<(), Failure> {
        let timer = monotonic_clock::subscribe_instant(self.at);
        if poll(&[pollable, &timer]).contains(&0) {
            return Ok(());
        }
        Err(Failure::Timeout(format!(
            "{what} took longer than the call's {} ms (`timeout_ms`)",
            self.budget_ms
        )))
    }
}

/// An open connection.
pub struct Conn {
    // Streams are the socket's children: declared (so dropped) first.
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    /// Bytes read but not yet parsed.
    buf: Vec<u8>,
    /// How far the reply at the front of `buf` has been seen.
    scanner: resp::Scanner,
}

impl Conn {
    /// Connects to `address`.
    pub fn open(address: &Address, deadline: &Deadline) -> Result<Conn, Failure> {
        let target = resolve(address, deadline)?;
        let family = match target {
            IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
            IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
        };
        let refused = |e: ErrorCode| match e {
            ErrorCode::AccessDenied => Failure::NotGranted {
                configured: address.to_string(),
                resolved: display(&target),
            },
            other => Failure::Io(format!(
                "connecting to Redis at `{address}`: {}",
                other.name()
            )),
        };
        let socket = create_tcp_socket(family).map_err(refused)?;
        socket
            .start_connect(&instance_network(), target)
            .map_err(refused)?;
        let (input, output) = loop {
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => deadline.wait(
                    &socket.subscribe(),
                    &format!("connecting to Redis at `{address}`"),
                )?,
                Err(e) => return Err(refused(e)),
            }
        };
        Ok(Conn {
            input,
            output,
            _socket: socket,
            buf: Vec::new(),
            scanner: resp::Scanner::default(),
        })
    }

    /// Sends `bytes` (whole commands) and waits until they are handed to
    /// the network.
    pub fn send(&mut self, bytes: &[u8], deadline: &Deadline) -> Result<(), Failure> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let budget = self.output.check_write().map_err(stream_failure)?;
            if budget == 0 {
                deadline.wait(&self.output.subscribe(), "sending to Redis")?;
                continue;
            }
            let n = usize::try_from(budget)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            self.output.write(&rest[..n]).map_err(stream_failure)?;
            rest = &rest[n..];
        }
        self.output.flush().map_err(stream_failure)?;
        deadline.wait(&self.output.subscribe(), "sending to Redis")?;
        self.output.check_write().map_err(stream_failure)?;
        Ok(())
    }

    /// Reads one reply of at most `max` bytes.
    pub fn receive(&mut self, max: usize, deadline: &Deadline) -> Result<Reply, Failure> {
        loop {
            let malformed = |e: resp::ParseError| Failure::Reply(e.to_string());
            if let Some(len) = self.scanner.scan(&self.buf, max).map_err(malformed)? {
                // Built once, when whole: the scanner found its end.
                let parsed = resp::parse(&self.buf[..len], max).map_err(malformed)?;
                let Some((reply, used)) = parsed else {
                    return Err(Failure::Reply(
                        "a Redis reply that ended where its framing said it would not".into(),
                    ));
                };
                self.buf.drain(..used);
                self.scanner = resp::Scanner::default();
                return Ok(reply);
            }
            // Headers and framing add a little to what `max` counts.
            if self.buf.len() > max.saturating_add(READ_PIECE as usize) {
                return Err(Failure::Reply(resp::ParseError::TooLarge(max).to_string()));
            }
            match self.input.read(READ_PIECE) {
                Ok(bytes) if bytes.is_empty() => {
                    deadline.wait(&self.input.subscribe(), "waiting for Redis to answer")?
                }
                Ok(bytes) => self.buf.extend_from_slice(&bytes),
                Err(e) => return Err(stream_failure(e)),
            }
        }
    }
}

fn stream_failure(e: StreamError) -> Failure {
    match e {
        StreamError::Closed => Failure::Io("Redis closed the connection".into()),
        StreamError::LastOperationFailed(e) => Failure::Io(format!(
            "the connection to Redis failed: {}",
            e.to_debug_string()
        )),
    }
}

/// The socket address of `address`: as written if it is an IP address,
/// otherwise the first address its host name resolves to (which needs the
/// plugin's `name_lookup` grant).
fn resolve(address: &Address, deadline: &Deadline) -> Result<IpSocketAddress, Failure> {
    if let Some(ip) = address.ip {
        return Ok(socket_address(ip, address.port));
    }
    let failed = |e: ErrorCode| match e {
        ErrorCode::AccessDenied => Failure::Io(format!(
            "looking up `{}` is not granted to this plugin (`[plugin.grants] name_lookup`); or \
             give the Redis address as an IP address",
            address.host
        )),
        other => Failure::Io(format!("looking up `{}`: {}", address.host, other.name())),
    };
    let names = resolve_addresses(&instance_network(), &address.host).map_err(failed)?;
    loop {
        match names.resolve_next_address() {
            Ok(Some(ip)) => {
                let ip = match ip {
                    IpAddress::Ipv4((a, b, c, d)) => std::net::IpAddr::from([a, b, c, d]),
                    IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
                        std::net::IpAddr::from([a, b, c, d, e, f, g, h])
                    }
                };
                return Ok(socket_address(ip, address.port));
            }
            Ok(None) => {
                return Err(Failure::Io(format!(
                    "`{}` resolves to no address",
                    address.host
                )));
            }
            Err(ErrorCode::WouldBlock) => deadline.wait(
                &names.subscribe(),
                &format!("looking up `{}`", address.host),
            )?,
            Err(e) => return Err(failed(e)),
        }
    }
}

/// `ip:port` (`[v6]:port`), as a grant writes it.
fn display(address: &IpSocketAddress) -> String {
    match *address {
        IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port,
            address: (a, b, c, d),
        }) => std::net::SocketAddr::from(([a, b, c, d], port)).to_string(),
        IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port,
            address: (a, b, c, d, e, f, g, h),
            ..
        }) => std::net::SocketAddr::from(([a, b, c, d, e, f, g, h], port)).to_string(),
    }
}

fn socket_address(ip: std::net::IpAddr, port: u16) -> IpSocketAddress {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (a, b, c, d),
            })
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port,
                flow_info: 0,
                address: (a, b, c, d, e, f, g, h),
                scope_id: 0,
            })
        }
    }
}
