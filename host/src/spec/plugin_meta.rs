//! Plugin metadata: what a plugin says about itself, carried inside its
//! `.wasm` as a custom section named `keel-plugin` holding TOML.
//!
//! Any toolchain that can emit a custom section can write it; in Rust a
//! `#[used] #[unsafe(link_section = "keel-plugin")]` static holding the
//! bytes of a `keel-plugin.toml` is enough (the linker keeps the section in
//! the core module and wit-component keeps it inside the component). keel
//! reads the component's sections and those of the modules nested in it.
//!
//! ```toml
//! name = "keyvalue-redis"
//! version = "0.1.0"
//! description = "wasi:keyvalue over Redis"
//! interfaces = ["wasi:keyvalue/store@0.2.0-draft"]
//! mode = "shared"          # the link mode it is meant for
//! keeps_state = false
//! [asks]                   # grants it needs; the manifest decides
//! sockets = ["127.0.0.1:6379"]
//! subjects = []
//! outgoing_http = []
//! [[config]]
//! key = "url"
//! description = "where Redis listens"
//! default = "redis://127.0.0.1:6379"
//! ```
//!
//! Metadata only describes: a grant asked for is not given until the
//! manifest gives it.

use super::LinkMode;
use crate::policy::authority::AuthorityPattern;
use crate::policy::grants::SubjectGrants;
use crate::policy::names::validate_name;
use crate::policy::sockets::SocketPattern;
use keel_compose::InterfaceName;
use serde::Deserialize;

/// The name of the custom section holding a plugin's metadata.
pub const SECTION: &str = "keel-plugin";

/// The largest metadata section keel reads (bytes).
pub const MAX_METADATA_BYTES: usize = 64 << 10;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginMetadata {
    /// The name manifests use for it (a plain name: lower-case letters,
    /// digits, `-`).
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// One line saying what it does.
    #[serde(default)]
    pub description: String,
    /// The interfaces it serves (`ns:pkg/iface@version`); each must be one
    /// of its exports.
    pub interfaces: Vec<String>,
    /// The mode it is meant to be linked in.
    pub mode: LinkMode,
    /// Whether it keeps state across calls (and so belongs in shared mode).
    #[serde(default)]
    pub keeps_state: bool,
    /// The grants it needs.
    #[serde(default)]
    pub asks: Asks,
    /// The configuration keys it reads.
    #[serde(default)]
    pub config: Vec<ConfigKey>,
}

/// The grants a plugin asks for; the manifest's `[plugin.grants]` decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asks {
    /// NATS subject patterns, as `grants.subjects`.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Socket addresses, as `grants.sockets`.
    #[serde(default)]
    pub sockets: Vec<String>,
    /// Outgoing HTTP hosts, as `grants.outgoing_http`.
    #[serde(default)]
    pub outgoing_http: Vec<String>,
}

impl Asks {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.sockets.is_empty() && self.outgoing_http.is_empty()
    }
}

/// A configuration key a plugin reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    /// The key, as the manifest's `config` names it.
    pub key: String,
    /// What it sets.
    pub description: String,
    /// Its value when the manifest sets none; none when it must be set.
    #[serde(default)]
    pub default: Option<String>,
}

/// Why a plugin's metadata cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The bytes are no readable Wasm binary.
    #[error("reading its custom sections: {0}")]
    Unreadable(String),
    /// More than one `keel-plugin` section, and they differ.
    #[error("it has {0} different `keel-plugin` sections; a plugin carries one")]
    Several(usize),
    /// The section is larger than [`MAX_METADATA_BYTES`].
    #[error("its `keel-plugin` section is {0} bytes; at most {MAX_METADATA_BYTES} are read")]
    TooLarge(usize),
    /// Not UTF-8 TOML of the expected shape (unknown fields included).
    #[error("its `keel-plugin` section is not valid metadata: {0}")]
    Malformed(String),
    /// A field holds a value keel refuses.
    #[error("its `keel-plugin` section: `{field}`: {message}")]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl PluginMetadata {
    /// The metadata carried by the component `bytes`, if it carries any.
    pub fn read(bytes: &[u8]) -> Result<Option<PluginMetadata>, MetadataError> {
        let mut sections = keel_compose::sections::custom_sections(bytes, SECTION)
            .map_err(|e| MetadataError::Unreadable(format!("{e:#}")))?;
        sections.dedup();
        match sections.as_slice() {
            [] => Ok(None),
            [one] => PluginMetadata::parse(one).map(Some),
            several => Err(MetadataError::Several(several.len())),
        }
    }

    /// Parses and validates the contents of a `keel-plugin` section.
    pub fn parse(section: &[u8]) -> Result<PluginMetadata, MetadataError> {
        if section.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge(section.len()));
        }
        let text = std::str::from_utf8(section)
            .map_err(|e| MetadataError::Malformed(format!("not UTF-8: {e}")))?;
        let metadata: PluginMetadata =
            toml::from_str(text).map_err(|e| MetadataError::Malformed(e.message().to_string()))?;
        metadata.validate()?;
        Ok(metadata)
    }

    /// Refuses values keel cannot use: a name that is no plain name, a
    /// version that is not semver, an interface that is not `ns:pkg/iface`,
    /// grants that do not parse as the manifest's grants would.
    pub fn validate(&self) -> Result<(), MetadataError> {
        let invalid = |field: String, message: String| MetadataError::Invalid { field, message };
        validate_name(&self.name).map_err(|m| invalid("name".into(), m))?;
        semver::Version::parse(&self.version)
            .map_err(|e| invalid("version".into(), format!("`{}`: {e}", self.version)))?;
        if self.interfaces.is_empty() {
            return Err(invalid(
                "interfaces".into(),
                "a plugin serves at least one interface".into(),
            ));
        }
        for (i, interface) in self.interfaces.iter().enumerate() {
            if InterfaceName::parse(interface).is_none() {
                return Err(invalid(
                    format!("interfaces[{i}]"),
                    format!("`{interface}` is not an interface name (`ns:pkg/iface@version`)"),
                ));
            }
        }
        for (i, pattern) in self.asks.outgoing_http.iter().enumerate() {
            AuthorityPattern::parse(pattern)
                .map_err(|m| invalid(format!("asks.outgoing_http[{i}]"), m))?;
        }
        for (i, pattern) in self.asks.sockets.iter().enumerate() {
            SocketPattern::parse(pattern).map_err(|m| invalid(format!("asks.sockets[{i}]"), m))?;
        }
        SubjectGrants::parse(&self.asks.subjects)
            .map_err(|m| invalid("asks.subjects".into(), m))?;
        for (i, key) in self.config.iter().enumerate() {
            if key.key.is_empty() {
                return Err(invalid(
                    format!("config[{i}].key"),
                    "a key is not empty".into(),
                ));
            }
        }
        Ok(())
    }

    /// What it asks for, in one line (`subjects $KV.>; sockets …`), or
    /// `nothing`.
    pub fn asks_line(&self) -> String {
        let parts: Vec<String> = [
            ("subjects", &self.asks.subjects),
            ("sockets", &self.asks.sockets),
            ("outgoing_http", &self.asks.outgoing_http),
        ]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(what, list)| format!("{what} {}", list.join(", ")))
        .collect();
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        name = "kv"
        version = "1.2.3"
        interfaces = ["wasi:keyvalue/store@0.2.0-draft"]
        mode = "shared"
        keeps_state = true
        [asks]
        sockets = ["127.0.0.1:6379"]
        [[config]]
        key = "url"
        description = "where"
        default = "x"
    "#;

    #[test]
    fn reads_good_metadata() {
        let meta = PluginMetadata::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(meta.name, "kv");
        assert_eq!(meta.mode, LinkMode::Shared);
        assert_eq!(meta.asks_line(), "sockets 127.0.0.1:6379");
        assert_eq!(meta.config[0].default.as_deref(), Some("x"));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        let unknown = format!("{GOOD}\ncolour = \"red\"\n");
        let e = PluginMetadata::parse(unknown.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let bad_version = GOOD.replace("1.2.3", "one");
        assert!(matches!(
            PluginMetadata::parse(bad_version.as_bytes()),
            Err(MetadataError::Invalid { field, .. }) if field == "version"
        ));
        let bad_socket = GOOD.replace("127.0.0.1:6379", "nowhere");
        assert!(matches!(
            PluginMetadata::parse(bad_socket.as_bytes()),
            Err(MetadataError::Invalid { field, .. }) if field == "asks.sockets[0]"
        ));
        let big = vec![b' '; MAX_METADATA_BYTES + 1];
        assert_eq!(
            PluginMetadata::parse(&big),
            Err(MetadataError::TooLarge(MAX_METADATA_BYTES + 1))
        );
    }
}
