//! Interface names (`ns:pkg/iface@version`) and the semver rule keel uses to
//! decide whether an export may serve an import of another version.

use semver::Version;
use std::fmt;

/// A parsed interface name such as `wasi:keyvalue/store@0.2.0-draft`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName {
    /// `wasi`
    pub namespace: String,
    /// `keyvalue`
    pub package: String,
    /// `store`
    pub interface: String,
    /// `0.2.0-draft`, when the name carries a version.
    pub version: Option<Version>,
}

impl InterfaceName {
    /// Parses `ns:pkg/iface[@version]`; `None` for names of other shapes
    /// (plain function or instance names).
    ///
    /// ```
    /// use keel_compose::InterfaceName;
    /// let name = InterfaceName::parse("wasi:keyvalue/store@0.2.0-draft").unwrap();
    /// assert_eq!(name.unversioned(), "wasi:keyvalue/store");
    /// assert_eq!(name.version.unwrap().to_string(), "0.2.0-draft");
    /// assert!(InterfaceName::parse("run").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<InterfaceName> {
        let (path, version) = match text.split_once('@') {
            Some((path, version)) => (path, Some(Version::parse(version).ok()?)),
            None => (text, None),
        };
        let (namespace, rest) = path.split_once(':')?;
        let (package, interface) = rest.split_once('/')?;
        if [namespace, package, interface]
            .iter()
            .any(|p| p.is_empty() || p.contains(['/', ':', '@']))
        {
            return None;
        }
        Some(InterfaceName {
            namespace: namespace.to_string(),
            package: package.to_string(),
            interface: interface.to_string(),
            version,
        })
    }

    /// `ns:pkg/iface`, without the version.
    pub fn unversioned(&self) -> String {
        format!("{}:{}/{}", self.namespace, self.package, self.interface)
    }

    /// `ns:pkg`, the package.
    pub fn package_name(&self) -> String {
        format!("{}:{}", self.namespace, self.package)
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.namespace, self.package, self.interface)?;
        if let Some(version) = &self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

/// Whether an export at version `exported` may serve an import at version
/// `imported`: Cargo's caret rule. The major version must match (for 0.x,
/// the minor too; for 0.0.x, the patch too), the export must be at least as
/// new, and a pre-release matches only itself. `Err` says why not.
///
/// ```
/// use keel_compose::names::semver_compatible;
/// use semver::Version;
/// let v = |s| Version::parse(s).unwrap();
/// assert!(semver_compatible(&v("0.2.0"), &v("0.2.3")).is_ok());
/// assert!(semver_compatible(&v("0.2.0"), &v("0.3.0")).is_err());
/// assert!(semver_compatible(&v("0.2.3"), &v("0.2.0")).is_err());
/// assert!(semver_compatible(&v("0.2.0-draft"), &v("0.2.0-draft")).is_ok());
/// ```
pub fn semver_compatible(imported: &Version, exported: &Version) -> Result<(), String> {
    if imported == exported {
        return Ok(());
    }
    if !imported.pre.is_empty() || !exported.pre.is_empty() {
        return Err(format!(
            "pre-release versions match only exactly (`{exported}` is not `{imported}`)"
        ));
    }
    let same_track = match (imported.major, imported.minor) {
        (0, 0) => exported.major == 0 && exported.minor == 0 && exported.patch == imported.patch,
        (0, minor) => exported.major == 0 && exported.minor == minor,
        (major, _) => exported.major == major,
    };
    if !same_track {
        let rule = match (imported.major, imported.minor) {
            (0, 0) => "for 0.0.x versions the patch version must match",
            (0, _) => "for 0.x versions the minor version must match",
            _ => "the major version must match",
        };
        return Err(format!(
            "`{exported}` is not compatible with `{imported}`: {rule}"
        ));
    }
    if exported < imported {
        return Err(format!(
            "`{exported}` is older than the `{imported}` the import was built against"
        ));
    }
    Ok(())
}
