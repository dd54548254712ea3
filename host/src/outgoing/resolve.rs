//! Host-name resolution for outgoing HTTP. keel resolves a request's host
//! itself, so that the addresses it checks are the addresses it connects to
//! (see [`crate::outgoing::connect`]). The system resolver is the default; a
//! library user may supply another (a split-horizon DNS, fixed answers).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

/// The answer of a resolver: every address of the name, in preference order.
pub type Lookup = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

type Custom = dyn Fn(&str) -> Lookup + Send + Sync;

/// Turns host names into IP addresses. Cheap to clone.
#[derive(Clone, Default)]
pub struct Resolver {
    custom: Option<Arc<Custom>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.custom {
            Some(_) => "Resolver(custom)",
            None => "Resolver(system)",
        })
    }
}

impl Resolver {
    /// The operating system's resolver (`getaddrinfo`: `/etc/hosts`, DNS).
    pub fn system() -> Resolver {
        Resolver::default()
    }

    /// A resolver that asks `lookup` for every host name (IP literals never
    /// reach it).
    pub fn from_fn(lookup: impl Fn(&str) -> Lookup + Send + Sync + 'static) -> Resolver {
        Resolver {
            custom: Some(Arc::new(lookup)),
        }
    }

    /// The addresses of `host`: an IP literal stands for itself; a name is
    /// resolved, and an empty answer is an error.
    pub async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let addresses = match &self.custom {
            Some(lookup) => lookup(host).await?,
            None => tokio::net::lookup_host((host, 0))
                .await?
                .map(|addr| addr.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{host}` has no addresses"),
            ));
        }
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_stand_for_themselves_and_names_go_to_the_resolver() {
        let resolver = Resolver::from_fn(|host| {
            let answer = match host {
                "api.example.test" => vec![IpAddr::from([127, 0, 0, 1])],
                _ => Vec::new(),
            };
            Box::pin(async move { Ok(answer) })
        });
        assert_eq!(
            resolver.lookup("::1").await.unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolver.lookup("api.example.test").await.unwrap(),
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        let empty = resolver.lookup("other.example.test").await.unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::NotFound);
    }
}
