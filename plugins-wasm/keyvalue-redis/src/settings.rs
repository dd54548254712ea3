//! The plugin's configuration, read from the pairs keel bakes in (the
//! manifest's `[plugin.config]`).

/// `timeout_ms` when the config names none: well inside a shared plugin's
/// default `call_timeout` (5 s), so a silent Redis costs the caller an
/// error, not the plugin instance.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// `max_reply_bytes` when the config names none.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 32 << 20;

/// `prefix` when the config names none.
pub const DEFAULT_PREFIX: &str = "keel:";
/// The largest `max_reply_bytes` taken (larger values are lowered to it).
const MAX_REPLY_CAP: u64 = 1 << 30;

/// Where Redis listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// As written (for messages).
    pub host: String,
    /// The IP address, if `host` is one.
    pub ip: Option<std::net::IpAddr>,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(std::net::IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl Address {
    /// Reads `host:port` (`[v6]:port` for an IPv6 address).
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
            return Ok(Address {
                host: socket.ip().to_string(),
                ip: Some(socket.ip()),
                port: socket.port(),
            });
        }
        let bad = || format!("config `address` = `{text}` is not `host:port`");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains(':') || host.contains('[') {
            return Err(bad());
        }
        Ok(Address {
            host: host.to_string(),
            ip: None,
            port,
        })
    }
}

/// Everything the config sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `address`: where Redis listens (required).
    pub address: Address,
    /// `username`: the ACL user to `AUTH` as (with `password`).
    pub username: Option<String>,
    /// `password`: sent with `AUTH` on every new connection.
    pub password: Option<String>,
    /// `db`: the database `SELECT`ed on every new connection.
    pub db: Option<u32>,
    /// `prefix`: put before every key this plugin writes.
    pub prefix: String,
    /// `timeout_ms`: how long one call may wait on Redis in all.
    pub timeout_ms: u64,
    /// `max_reply_bytes`: the largest reply read.
    pub max_reply_bytes: usize,
}

impl Settings {
    /// The settings `pairs` make (a later pair wins over an earlier one);
    /// an error naming the key that is missing or unreadable.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Settings, String> {
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim().to_string())
        };
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("config `{key}` = `{v}` is not a whole number")),
            }
        };
        let address = get("address").ok_or(
            "config `address` is missing: set it to Redis's `host:port` (and grant that address \
             in `[plugin.grants] sockets`)",
        )?;
        let db = match get("db") {
            None => None,
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("config `db` = `{v}` is not a database number"))?,
            ),
        };
        let timeout_ms = number("timeout_ms", DEFAULT_TIMEOUT_MS)?;
        if timeout_ms == 0 {
            return Err("config `timeout_ms` must be at least 1".into());
        }
        let max_reply = number("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES as u64)?;
        Ok(Settings {
            address: Address::parse(&address)?,
            username: get("username").filter(|u| !u.is_empty()),
            password: get("password").filter(|p| !p.is_empty()),
            db,
            prefix: get("prefix").unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
            timeout_ms,
            // At most 1 GiB: a plugin's memory could hold no more, and the
            // parser's sums stay far from wrapping on wasm32.
            max_reply_bytes: usize::try_from(max_reply.min(MAX_REPLY_CAP)).unwrap_or(usize::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_the_config_leaves_out() {
        let s = Settings::from_pairs(&pairs(&[("address", "127.0.0.1:6379")])).unwrap();
        assert_eq!(s.address.to_string(), "127.0.0.1:6379");
        assert_eq!((s.db, s.password, s.username), (None, None, None));
        assert_eq!(s.prefix, DEFAULT_PREFIX);
        assert_eq!(s.timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn addresses_are_ips_or_host_names_with_a_port() {
        let v6 = Address::parse("[::1]:7000").unwrap();
        assert_eq!((v6.to_string(), v6.port), ("[::1]:7000".to_string(), 7000));
        let named = Address::parse("redis.internal:6379").unwrap();
        assert_eq!((named.ip, named.host.as_str()), (None, "redis.internal"));
        for bad in ["6379", "host:", ":6379", "host:port", "a:b:1"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let missing = Settings::from_pairs(&[]).unwrap_err();
        assert!(missing.contains("`address` is missing"), "{missing}");
        let db = Settings::from_pairs(&pairs(&[("address", "127.0.0.1:1"), ("db", "x")]));
        assert!(db.unwrap_err().contains("`db`"));
        let t = Settings::from_pairs(&pairs(&[("address", "127.0.0.1:1"), ("timeout_ms", "0")]));
        assert!(t.unwrap_err().contains("`timeout_ms`"));
    }
}
