//! How keel reaches one registry: plain HTTP or not, and where its
//! credentials are (the manifest's `[[registry]]`). Reading the
//! credentials is `crate::oci`'s.

use std::path::PathBuf;

/// How keel reaches one registry: the manifest's `[[registry]]`.
///
/// ```
/// use keel::spec::RegistrySpec;
/// let local = RegistrySpec::new("127.0.0.1:5000").with_insecure(true);
/// let private = RegistrySpec::new("ghcr.io").with_env_credentials("GHCR_USER", "GHCR_TOKEN");
/// assert!(local.validate().is_ok() && private.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrySpec {
    /// `host[:port]`, as references write it.
    pub host: String,
    /// Speak plain HTTP to it (a registry on loopback or a trusted
    /// network). Never assumed: only registries named so get HTTP.
    pub insecure: bool,
    /// A file in the Docker configuration format (`{"auths": {…}}`) with an
    /// entry for this registry.
    pub credentials: Option<PathBuf>,
    /// The environment variable holding the user name.
    pub username_env: Option<String>,
    /// The environment variable holding the password or token.
    pub password_env: Option<String>,
}

impl RegistrySpec {
    /// A registry with no settings but its host.
    pub fn new(host: impl Into<String>) -> RegistrySpec {
        RegistrySpec {
            host: host.into(),
            ..RegistrySpec::default()
        }
    }

    /// Speak plain HTTP to it (never assumed).
    pub fn with_insecure(mut self, insecure: bool) -> RegistrySpec {
        self.insecure = insecure;
        self
    }

    /// Reads the credentials from a file in the Docker configuration
    /// format.
    pub fn with_credentials(mut self, file: impl Into<PathBuf>) -> RegistrySpec {
        self.credentials = Some(file.into());
        self
    }

    /// Reads the user name and the password (or token) from these
    /// environment variables.
    pub fn with_env_credentials(
        mut self,
        username_env: impl Into<String>,
        password_env: impl Into<String>,
    ) -> RegistrySpec {
        self.username_env = Some(username_env.into());
        self.password_env = Some(password_env.into());
        self
    }

    /// Checks what can be checked before anything is read: the host, and
    /// environment variables named in pairs.
    pub fn validate(&self) -> Result<(), String> {
        super::ImageRef::parse(&format!("oci://{}/x:x", self.host))
            .map_err(|_| format!("registry host `{}` must be host or host:port", self.host))?;
        if self.username_env.is_some() != self.password_env.is_some() {
            return Err("`username_env` and `password_env` go together".to_string());
        }
        if self.credentials.is_some() && self.username_env.is_some() {
            return Err(
                "give credentials either in a file (`credentials`) or in environment \
                 variables (`username_env`, `password_env`), not both"
                    .to_string(),
            );
        }
        Ok(())
    }
}
