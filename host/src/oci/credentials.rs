//! Who keel is to a registry: anonymous, or a user name and password found
//! in environment variables or a credentials file the manifest names, or
//! else in the Docker configuration (`$DOCKER_CONFIG/config.json`, or
//! `~/.docker/config.json`), as `docker login`, `wash` and `wkg` leave it.
//!
//! Secrets never reach a log line or an error message: [`Secret`] prints as
//! `***`, and errors name the variable or file, never its content.

use crate::spec::RegistrySpec;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest credentials file read.
const MAX_CREDENTIALS_FILE: u64 = 1 << 20;

/// A password or token: kept out of every `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password or token.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A user name and its password, and where they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: Secret,
    /// Where they come from (`environment variables A, B`, a file's path),
    /// for messages.
    pub origin: String,
}

/// The credentials for `registry`: from `spec` when it names some (then
/// they must be found), else from the Docker configuration when it has an
/// entry, else none (anonymous).
pub fn credentials_for(registry: &str, spec: Option<&RegistrySpec>) -> Result<Option<Credentials>> {
    if let Some(spec) = spec {
        if let (Some(user_var), Some(password_var)) = (&spec.username_env, &spec.password_env) {
            let read = |name: &str| {
                std::env::var(name).with_context(|| {
                    format!(
                        "registry {registry}: environment variable {name} is not set (or not UTF-8)"
                    )
                })
            };
            return Ok(Some(Credentials {
                username: read(user_var)?,
                password: Secret(read(password_var)?),
                origin: format!("environment variables {user_var}, {password_var}"),
            }));
        }
        if let Some(file) = &spec.credentials {
            return match from_docker_config(file, registry)? {
                Some(found) => Ok(Some(found)),
                None => bail!(
                    "registry {registry}: credentials file {} has no `auths` entry for it",
                    file.display()
                ),
            };
        }
    }
    match docker_config_path() {
        Some(path) if path.is_file() => from_docker_config(&path, registry),
        _ => Ok(None),
    }
}

/// `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The `auths` entry for `registry` in Docker configuration file `path`:
/// `auth` (base64 of `user:password`), or `username` and `password`.
fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("reading credentials file {}", path.display()))?;
    if !metadata.is_file() || metadata.len() > MAX_CREDENTIALS_FILE {
        bail!(
            "credentials file {} must be a regular file of at most {MAX_CREDENTIALS_FILE} bytes",
            path.display()
        );
    }
    let text = std::fs::read(path)
        .with_context(|| format!("reading credentials file {}", path.display()))?;
    // serde_json's errors quote no input, so a malformed file leaks nothing.
    let config: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("credentials file {} is not valid JSON", path.display()))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let Some(entry) = auths
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    let origin = path.display().to_string();
    let text_field = |name: &str| {
        entry
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(encoded) = text_field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .with_context(|| {
                format!("credentials file {origin}: the `auth` of {registry} is not base64 of user:password")
            })?;
        let Some((username, password)) = decoded.split_once(':') else {
            bail!(
                "credentials file {origin}: the `auth` of {registry} is not base64 of user:password"
            );
        };
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret(password.to_string()),
            origin,
        }));
    }
    match (text_field("username"), text_field("password")) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret(password.to_string()),
            origin,
        })),
        _ => Ok(None),
    }
}

/// Whether Docker configuration key `key` (`ghcr.io`,
/// `https://index.docker.io/v1/`, `http://localhost:5000`) names `registry`.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host == registry
        || (host == "index.docker.io" && registry == "docker.io")
        || (host == "docker.io" && registry == "index.docker.io")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_file(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn docker_config_auth_and_plain_fields() {
        let dir = tempfile::tempdir().unwrap();
        // base64("alice:s3cret")
        let path = config_file(
            dir.path(),
            r#"{"auths": {"https://127.0.0.1:5000/v1/": {"auth": "YWxpY2U6czNjcmV0"},
                          "ghcr.io": {"username": "bob", "password": "tok"}}}"#,
        );
        let alice = from_docker_config(&path, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.password.expose(), "s3cret");
        assert!(!format!("{alice:?}").contains("s3cret"), "never printed");
        let bob = from_docker_config(&path, "ghcr.io").unwrap().unwrap();
        assert_eq!(
            (bob.username.as_str(), bob.password.expose()),
            ("bob", "tok")
        );
        assert!(from_docker_config(&path, "quay.io").unwrap().is_none());
    }

    #[test]
    fn a_named_file_must_have_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = config_file(dir.path(), r#"{"auths": {}}"#);
        let spec = RegistrySpec {
            credentials: Some(path),
            ..RegistrySpec::new("r.example")
        };
        let err = credentials_for("r.example", Some(&spec)).unwrap_err();
        assert!(format!("{err:#}").contains("no `auths` entry"));
        let bad = config_file(dir.path(), r#"{"auths": {"r.example": {"auth": "!!"}}}"#);
        let spec = RegistrySpec {
            credentials: Some(bad),
            ..RegistrySpec::new("r.example")
        };
        assert!(credentials_for("r.example", Some(&spec)).is_err());
    }

    #[test]
    fn environment_variables_are_named_not_shown() {
        let spec = RegistrySpec {
            username_env: Some("KEEL_TEST_NO_SUCH_USER_VAR".into()),
            password_env: Some("KEEL_TEST_NO_SUCH_PASSWORD_VAR".into()),
            ..RegistrySpec::new("r.example")
        };
        let err = format!(
            "{:#}",
            credentials_for("r.example", Some(&spec)).unwrap_err()
        );
        assert!(err.contains("KEEL_TEST_NO_SUCH_USER_VAR"), "{err}");
    }

    #[test]
    fn specs_are_checked() {
        assert!(RegistrySpec::new("127.0.0.1:5000").validate().is_ok());
        assert!(RegistrySpec::new("Bad Host").validate().is_err());
        let half = RegistrySpec {
            username_env: Some("U".into()),
            ..RegistrySpec::new("r.example")
        };
        assert!(half.validate().is_err());
    }
}
