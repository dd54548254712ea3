//! What a plugin may import, and the link modes its imports allow.
//!
//! A plugin may import `keel:core` (the interfaces and the version this
//! host serves, see `wit/keel-core`), WASI P2 and `wasi:http` as the host
//! serves them, and interfaces another plugin exports. Anything else is
//! refused when a workload would link the plugin, with the reason; `keel
//! plugin check` reports the same verdicts.

use super::{host_serves, is_keel_core};
use crate::core_api::{KEEL_CORE_INTERFACES, KEEL_CORE_VERSION};
use keel_compose::names::semver_compatible;
use keel_compose::{ComponentInfo, InterfaceName, Item};

/// How one import of a plugin is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportVerdict {
    /// By the core's `keel:core` implementation.
    Core,
    /// By the host (WASI P2, `wasi:http`).
    Host,
    /// Holds only types: nothing to serve.
    TypesOnly,
    /// By another plugin's export (a layer over it).
    Plugin(String),
    /// By nothing: the plugin is refused, for this reason.
    Refused(String),
}

impl ImportVerdict {
    /// For reports: `keel:core`, `host`, `plugin `x``, `refused: why`.
    pub fn describe(&self) -> String {
        match self {
            ImportVerdict::Core => "keel:core (the host)".to_string(),
            ImportVerdict::Host => "host".to_string(),
            ImportVerdict::TypesOnly => "types only, nothing to serve".to_string(),
            ImportVerdict::Plugin(name) => format!("plugin `{name}`"),
            ImportVerdict::Refused(why) => format!("cannot be served: {why}"),
        }
    }
}

/// How `import` of a plugin is served, given the plugins that could serve
/// it (`others`: name and exports, the plugin itself left out).
pub fn verdict<'a>(
    import: &Item,
    others: impl IntoIterator<Item = (&'a str, &'a ComponentInfo)>,
) -> ImportVerdict {
    let Some(name) = &import.interface else {
        return ImportVerdict::Refused(format!(
            "`{}` is a plain {}, not an interface; a plugin imports interfaces only",
            import.name, import.kind
        ));
    };
    if is_keel_core(&import.name) {
        return core_verdict(name);
    }
    if host_serves(&import.name) {
        return ImportVerdict::Host;
    }
    for (plugin, info) in others {
        let serves = info.exports.iter().any(|export| {
            export.interface.as_ref().is_some_and(|e| {
                e.unversioned() == name.unversioned()
                    && match (&name.version, &e.version) {
                        (Some(wanted), Some(offered)) => semver_compatible(wanted, offered).is_ok(),
                        (None, None) => true,
                        _ => false,
                    }
            })
        });
        if serves {
            return ImportVerdict::Plugin(plugin.to_string());
        }
    }
    if import.kind == "instance" && import.functions.is_empty() && import.resources.is_empty() {
        return ImportVerdict::TypesOnly;
    }
    ImportVerdict::Refused(format!(
        "no plugin exports `{}` and the host does not serve it (a plugin may import keel:core@{}, \
         WASI P2, wasi:http types and outgoing-handler, and interfaces other plugins export)",
        import.name, KEEL_CORE_VERSION
    ))
}

/// Whether the host serves `keel:core` interface `name`: one it has, at a
/// version compatible with its own.
fn core_verdict(name: &InterfaceName) -> ImportVerdict {
    if !KEEL_CORE_INTERFACES.contains(&name.interface.as_str()) {
        return ImportVerdict::Refused(format!(
            "keel:core has no interface `{}` (this host serves {} at {})",
            name.interface,
            KEEL_CORE_INTERFACES.join(", "),
            KEEL_CORE_VERSION
        ));
    }
    let served = semver::Version::parse(KEEL_CORE_VERSION).ok();
    match (&name.version, served) {
        (Some(wanted), Some(served)) => match semver_compatible(wanted, &served) {
            Ok(()) => ImportVerdict::Core,
            Err(why) => ImportVerdict::Refused(format!(
                "it was built against keel:core@{wanted}, this host serves keel:core@{served}: {why}"
            )),
        },
        _ => ImportVerdict::Refused(format!(
            "`{name}` names no version; keel:core is imported at a version (this host serves {KEEL_CORE_VERSION})"
        )),
    }
}

/// The first import of plugin `plugin` nothing serves, as an error message.
pub fn refusal<'a>(
    plugin: &str,
    info: &ComponentInfo,
    others: impl IntoIterator<Item = (&'a str, &'a ComponentInfo)> + Clone,
) -> Option<String> {
    info.imports
        .iter()
        .find_map(|import| match verdict(import, others.clone()) {
            ImportVerdict::Refused(why) => Some(format!(
                "plugin `{plugin}` imports `{}`, which keel cannot serve: {why}",
                import.name
            )),
            _ => None,
        })
}

/// Whether a plugin with these imports can be composed into a workload:
/// `Err` says why not (it reaches the network or files, which a composed
/// plugin would do with the workload's grants).
pub fn composable(info: &ComponentInfo) -> Result<(), String> {
    match info.imports.iter().find(|i| reaches_outside(&i.name)) {
        Some(reach) => Err(format!(
            "it imports `{}`: {}",
            reach.name,
            super::advice::composed_reach(&reach.name)
        )),
        None => Ok(()),
    }
}

/// Whether `import` lets a guest reach beyond itself in ways that are
/// granted (network, files): what a composed plugin may not import.
pub fn reaches_outside(import: &str) -> bool {
    keel_compose::InterfaceName::parse(import).is_some_and(|n| {
        n.namespace == "wasi"
            && (matches!(n.package.as_str(), "sockets" | "filesystem")
                || (n.package == "http" && n.interface == "outgoing-handler"))
    })
}
