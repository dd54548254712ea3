//! The plugin registry and static composition on real components: exact and
//! semver-compatible matching, refusals that say why, ambiguity, and a
//! composed component whose plugin import is gone.

use keel_tests::guest;
use keel_tests::keel_compose::{Binding, ComponentInfo, PluginBytes, Registry, compose};
use std::collections::BTreeMap;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(guest(name)).expect("fixture")
}

const IMPORT: &str = "acme:tally/counters@0.2.0";

#[test]
fn inspect_lists_interfaces_functions_and_resources() {
    let plugin = ComponentInfo::read(&read("tally_plugin")).unwrap();
    let export = plugin
        .export("acme:tally/counters@0.2.3")
        .expect("the plugin exports counters@0.2.3");
    assert!(export.functions.contains(&"open".to_string()), "{export:?}");
    assert!(
        export
            .functions
            .contains(&"[method]counter.add".to_string()),
        "{export:?}"
    );
    assert_eq!(export.resources, vec!["counter".to_string()]);
    assert!(
        plugin
            .imports
            .iter()
            .any(|i| i.name == "keel:core/identity@0.1.0"),
        "{:?}",
        plugin.imports
    );
}

#[test]
fn an_import_at_0_2_0_binds_an_export_at_0_2_3() {
    let mut registry = Registry::new();
    registry.add("tally", &read("tally_plugin")).unwrap();
    let resolution = registry
        .resolve(&read("tally_user"), &BTreeMap::new())
        .unwrap();
    assert_eq!(
        resolution.bindings,
        vec![Binding {
            import: IMPORT.into(),
            plugin: "tally".into(),
            export: "acme:tally/counters@0.2.3".into()
        }]
    );
    // WASI imports are not the registry's business here: they stay unbound.
    assert!(
        resolution
            .unbound
            .iter()
            .all(|u| u.import.starts_with("wasi:")),
        "{:?}",
        resolution.unbound
    );
}

#[test]
fn an_export_at_0_3_0_does_not_bind_and_the_refusal_says_why() {
    let mut registry = Registry::new();
    registry
        .add("tally-next", &read("tally_plugin_v0_3"))
        .unwrap();
    let resolution = registry
        .resolve(&read("tally_user"), &BTreeMap::new())
        .unwrap();
    assert!(resolution.bindings.is_empty());
    let unbound = resolution
        .unbound
        .iter()
        .find(|u| u.import == IMPORT)
        .expect("counters unbound");
    assert_eq!(
        unbound.near_misses,
        vec!["plugin `tally-next` exports `acme:tally/counters@0.3.0`: `0.3.0` is not compatible with `0.2.0`: for 0.x versions the minor version must match".to_string()]
    );
    // Picking it explicitly is an error carrying the same reason.
    let picks = BTreeMap::from([("acme:tally/counters".to_string(), "tally-next".to_string())]);
    let err = registry.resolve(&read("tally_user"), &picks).unwrap_err();
    assert!(
        format!("{err:#}").contains("for 0.x versions the minor version must match"),
        "{err:#}"
    );
}

#[test]
fn two_fitting_plugins_are_ambiguous_unless_one_is_picked() {
    let mut registry = Registry::new();
    registry.add("first", &read("tally_plugin")).unwrap();
    registry.add("second", &read("tally_plugin")).unwrap();
    let err = registry
        .resolve(&read("tally_user"), &BTreeMap::new())
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("`first` and `second`"), "{text}");
    assert!(
        text.contains("pick one for `acme:tally/counters`"),
        "{text}"
    );
    let picks = BTreeMap::from([("acme:tally/counters".to_string(), "second".to_string())]);
    let resolution = registry.resolve(&read("tally_user"), &picks).unwrap();
    assert_eq!(resolution.bindings[0].plugin, "second");
    let unknown = BTreeMap::from([("acme:tally/counters".to_string(), "third".to_string())]);
    assert!(
        format!(
            "{:#}",
            registry.resolve(&read("tally_user"), &unknown).unwrap_err()
        )
        .contains("`third`")
    );
}

#[test]
fn composition_replaces_the_import_with_the_plugin_and_keeps_its_own_imports() {
    let plugin = read("tally_plugin");
    let user = read("tally_user");
    let mut registry = Registry::new();
    registry.add("tally", &plugin).unwrap();
    let resolution = registry.resolve(&user, &BTreeMap::new()).unwrap();
    let composed = compose(
        &user,
        &[PluginBytes {
            name: "tally",
            bytes: &plugin,
        }],
        &resolution.bindings,
    )
    .unwrap();
    let info = ComponentInfo::read(&composed).unwrap();
    let imports: Vec<&str> = info.imports.iter().map(|i| i.name.as_str()).collect();
    assert!(
        !imports.iter().any(|i| i.starts_with("acme:tally/")),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"keel:core/identity@0.1.0"),
        "the plugin's own import remains: {imports:?}"
    );
    assert!(
        info.exports
            .iter()
            .any(|e| e.name.starts_with("wasi:http/incoming-handler@")),
        "{:?}",
        info.exports
    );
}
