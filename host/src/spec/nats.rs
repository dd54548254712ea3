//! The NATS connection a host's messaging, key-value and blobstore
//! plugins use, and how workload subjects map onto the server's.

use std::path::PathBuf;

/// How the subjects a workload names map onto the broker's subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectScope {
    /// `<namespace>.<subject>`: the tenants of one NATS account never hear
    /// each other (what `keel run` does).
    #[default]
    Namespace,
    /// As written, as wasmCloud hosts do, so keel and wasmCloud workloads on
    /// one NATS meet on the same subjects; tenants are separated by NATS
    /// accounts (each host's credentials), and the host protocol's subjects,
    /// `$` subjects and wildcard-first subscriptions are refused.
    AsWritten,
}

/// A NATS connection: production hosts share a NATS cluster.
///
/// ```
/// use keel::spec::{NatsSpec, SubjectScope};
/// let nats = NatsSpec::url("tls://nats.example:4222")
///     .with_credentials("/etc/keel/host.creds")
///     .with_name("keel-1")
///     .with_subjects(SubjectScope::AsWritten);
/// assert_eq!(nats.servers().unwrap(), ["tls://nats.example:4222"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSpec {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for TLS.
    pub tls_ca: Option<PathBuf>,
    /// A PEM client certificate and its PEM private key, for servers that
    /// verify their clients (mutual TLS).
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// The name this connection shows the server.
    pub name: Option<String>,
    /// How many JetStream streams (buckets) the plugins acting for one
    /// namespace may create through `keel:core/nats` (default
    /// [`DEFAULT_MAX_STREAMS_PER_NAMESPACE`](crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE)).
    pub max_streams_per_namespace: u32,
    /// How workload subjects map onto the server's.
    pub subjects: SubjectScope,
}

impl NatsSpec {
    /// The servers `url` names: one URL, or several separated by commas
    /// (white space around each is ignored), each `nats://host:port` or
    /// `tls://host:port`.
    ///
    /// ```
    /// use keel::spec::NatsSpec;
    /// let spec = NatsSpec::url("nats://a:4222, nats://b:4222");
    /// assert_eq!(spec.servers().unwrap(), ["nats://a:4222", "nats://b:4222"]);
    /// assert!(NatsSpec::url("http://a").servers().is_err());
    /// ```
    pub fn servers(&self) -> Result<Vec<String>, String> {
        let servers: Vec<String> = self.url.split(',').map(|u| u.trim().to_string()).collect();
        let valid = |u: &str| {
            ["nats://", "tls://"].iter().any(|scheme| {
                u.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
            })
        };
        if servers.iter().all(|u| valid(u)) {
            Ok(servers)
        } else {
            Err(format!(
                "`{}` is not a NATS server list: give nats://host:port or tls://host:port, several separated by commas",
                crate::policy::names::printable(&self.url)
            ))
        }
    }

    /// A connection to `url` with nothing else set.
    pub fn url(url: impl Into<String>) -> NatsSpec {
        NatsSpec {
            url: url.into(),
            credentials: None,
            tls_ca: None,
            tls_client: None,
            name: None,
            max_streams_per_namespace: crate::spec::DEFAULT_MAX_STREAMS_PER_NAMESPACE,
            subjects: SubjectScope::default(),
        }
    }
}

impl NatsSpec {
    /// Authenticates with a `.creds` file (JWT and NKey seed).
    pub fn with_credentials(mut self, file: impl Into<PathBuf>) -> NatsSpec {
        self.credentials = Some(file.into());
        self
    }

    /// Trusts the CA certificates of a PEM file for TLS.
    pub fn with_tls_ca(mut self, file: impl Into<PathBuf>) -> NatsSpec {
        self.tls_ca = Some(file.into());
        self
    }

    /// Shows the server a client certificate and its private key (PEM
    /// files), for servers that verify their clients.
    pub fn with_tls_client(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NatsSpec {
        self.tls_client = Some((certificate.into(), key.into()));
        self
    }

    /// The name this connection shows the server.
    pub fn with_name(mut self, name: impl Into<String>) -> NatsSpec {
        self.name = Some(name.into());
        self
    }

    /// How many JetStream streams the plugins acting for one namespace may
    /// create.
    pub fn with_max_streams_per_namespace(mut self, max: u32) -> NatsSpec {
        self.max_streams_per_namespace = max;
        self
    }

    /// How workload subjects map onto the server's.
    pub fn with_subjects(mut self, subjects: SubjectScope) -> NatsSpec {
        self.subjects = subjects;
        self
    }
}
