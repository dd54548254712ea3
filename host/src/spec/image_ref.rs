//! OCI references as manifests write them: `oci://REGISTRY/REPOSITORY:TAG`,
//! `oci://REGISTRY/REPOSITORY@sha256:HEX`, or both (`:TAG@sha256:HEX`).
//!
//! This module depends on nothing else in keel, so the spec types
//! ([`ComponentSource`](crate::spec::ComponentSource)) can name a
//! reference without reaching into the registry client.
//!
//! Unlike `docker pull`, keel guesses nothing: the registry is always
//! written (no implicit Docker Hub), and a tag or a digest is always
//! written (no implicit `latest`), so a manifest says exactly what it runs.

use std::fmt;
use std::str::FromStr;

/// The scheme that marks a reference where a file path could stand.
pub const SCHEME: &str = "oci://";

/// The longest reference accepted, scheme included.
const MAX_LEN: usize = 1024;

/// A parsed OCI reference: a registry, a repository, and a tag, a digest,
/// or both. When both are given the digest decides what runs; the tag only
/// documents it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a reference is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{reference}` is not an OCI reference: {reason} (expected oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST)"
)]
pub struct InvalidReference {
    /// The text given (cut to a readable length).
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageRef {
    /// Parses `oci://REGISTRY/REPOSITORY[:TAG][@sha256:HEX]`.
    pub fn parse(text: &str) -> Result<ImageRef, InvalidReference> {
        let fail = |reason: &str| InvalidReference {
            reference: text.chars().take(120).collect(),
            reason: reason.to_string(),
        };
        if text.len() > MAX_LEN {
            return Err(fail(&format!("longer than {MAX_LEN} bytes")));
        }
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail("it must start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("no repository after the registry"))?;
        check_registry(registry).map_err(|r| fail(&r))?;
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest).map_err(|r| fail(&r))?;
                (name, Some(digest.to_string()))
            }
            None => (path, None),
        };
        // A colon after the last slash starts the tag.
        let last_segment = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_segment..].find(':') {
            Some(i) => (
                &name[..last_segment + i],
                Some(name[last_segment + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        check_repository(repository).map_err(|r| fail(&r))?;
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|r| fail(&r))?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(fail(
                "it names no tag (`:1.2.0`) and no digest (`@sha256:…`); keel assumes no `latest`",
            ));
        }
        Ok(ImageRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// Whether `text` is meant as a reference (starts with `oci://`), as
    /// opposed to a file path.
    pub fn is_reference(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// `host[:port]` of the registry.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry (`acme/api`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one is written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest (`sha256:…`), if one is written.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same reference pinned to manifest `digest` (its tag kept for
    /// readers): what a manifest can write to never run other bytes.
    pub fn pinned(&self, digest: &str) -> ImageRef {
        ImageRef {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// `registry/repository:tag` without the digest: the name a tag is
    /// remembered under in the store.
    pub fn tag_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|tag| format!("{}/{}:{tag}", self.registry, self.repository))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = InvalidReference;

    fn from_str(text: &str) -> Result<ImageRef, InvalidReference> {
        ImageRef::parse(text)
    }
}

/// `host[:port]`: a DNS name or IPv4 address, lowercase, and an optional
/// port.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    if host.is_empty() {
        return Err("no registry host".into());
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !host.split('.').all(valid_label) {
        return Err(format!(
            "registry host `{host}` must be a lowercase host name or an IPv4 address"
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!(
            "registry port `{port}` must be a number from 1 to 65535"
        ));
    }
    Ok(())
}

/// Slash-separated components of lowercase letters and digits, joined
/// inside a component by `.`, `_`, `__` or dashes (the distribution spec's
/// grammar).
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() || repository.len() > 255 {
        return Err("the repository must be 1 to 255 characters".into());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes
                .iter()
                .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository component `{component}` must be lowercase letters and digits, \
                 joined by `.`, `_` or `-`"
            ));
        }
    }
    Ok(())
}

/// Up to 128 of letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ))
    }
}

/// `sha256:` and 64 lowercase hexadecimal digits.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!("digest `{digest}` must be sha256:<64 hex digits>"));
    };
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "digest `{digest}` must be sha256: and 64 lowercase hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags_digests_and_both() {
        let tagged = ImageRef::parse("oci://ghcr.io/acme/api:1.2.0").unwrap();
        assert_eq!(tagged.registry(), "ghcr.io");
        assert_eq!(tagged.repository(), "acme/api");
        assert_eq!(tagged.tag(), Some("1.2.0"));
        assert_eq!(tagged.digest(), None);
        assert_eq!(tagged.to_string(), "oci://ghcr.io/acme/api:1.2.0");

        let local = ImageRef::parse(&format!("oci://127.0.0.1:5000/hello@{DIGEST}")).unwrap();
        assert_eq!(local.registry(), "127.0.0.1:5000");
        assert_eq!(local.tag(), None);
        assert_eq!(local.digest(), Some(DIGEST));

        let both = format!("oci://localhost:5000/team/a/b:v1@{DIGEST}");
        let parsed = ImageRef::parse(&both).unwrap();
        assert_eq!(parsed.repository(), "team/a/b");
        assert_eq!(parsed.to_string(), both);
        assert_eq!(
            tagged.pinned(DIGEST).to_string(),
            format!("oci://ghcr.io/acme/api:1.2.0@{DIGEST}")
        );
        assert_eq!(tagged.tag_name().as_deref(), Some("ghcr.io/acme/api:1.2.0"));
    }

    #[test]
    fn nothing_is_guessed() {
        for (text, why) in [
            ("ghcr.io/acme/api:1", "oci://"),
            ("oci://ghcr.io/acme/api", "no tag"),
            ("oci://api:1", "no repository"),
            ("oci://GHCR.io/acme/api:1", "lowercase host"),
            ("oci://ghcr.io/Acme/api:1", "repository component"),
            ("oci://ghcr.io:0/acme:1", "port"),
            ("oci://ghcr.io/acme:-x", "tag"),
            ("oci://ghcr.io/acme@sha256:abc", "64 lowercase hex"),
            ("oci://ghcr.io/acme@sha512:abc", "sha256"),
            ("oci://ghcr.io/a//b:1", "repository component"),
        ] {
            let err = ImageRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
        assert!(ImageRef::parse(&format!("oci://r.io/a:{}", "x".repeat(2000))).is_err());
    }
}
