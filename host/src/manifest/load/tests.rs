//! The loader against manifests as users write them: every error with its
//! file, line and column.

use super::*;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("app.toml"), text)
}

#[test]
fn unknown_key_is_an_error_with_its_line_and_column() {
    let err = parse("[[workload]]\nname = \"a\"\ncolour = \"red\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("app.toml:3:1: "), "{text}");
    assert!(text.contains("unknown field `colour`"), "{text}");
}

#[test]
fn malformed_toml_points_at_the_problem() {
    let err = parse("[[workload]]\nname = \"a\n").unwrap_err();
    let location = err.location().expect("location");
    assert_eq!(location.line, 2, "{err}");
}

#[test]
fn bad_sizes_and_names_are_explained() {
    let err =
        parse("[[workload]]\nname = \"a\"\n[workload.limits]\nmemory = \"lots\"\n").unwrap_err();
    assert!(err.to_string().starts_with("app.toml:4:10: "), "{err}");
    assert!(err.to_string().contains("size"), "{err}");
    let err = parse("[[workload]]\nname = \"Bad Name\"\n").unwrap_err();
    assert!(err.to_string().starts_with("app.toml:2:8: "), "{err}");
}

#[test]
fn a_missing_component_file_is_reported_at_its_path() {
    let err =
        parse("[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"nowhere.wasm\"\n")
            .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("app.toml:4:8: component file nowhere.wasm"),
        "{err}"
    );
}

#[test]
fn a_subscription_that_can_never_work_is_refused_where_written() {
    let manifest = |subject: &str| {
        format!(
            "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n\
             [[workload.subscription]]\nsubject = \"{subject}\"\n"
        )
    };
    assert!(parse(&manifest("orders.*")).is_ok());
    let err = parse(&manifest(&"x".repeat(10_000)))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("app.toml:6:11: "), "{err}");
    assert!(err.contains("10008 bytes long, more than 1024"), "{err}");
    assert!(err.len() < 300, "the subject is shortened: {err}");
    // Within the limit alone, over it with the namespace in front.
    let err = parse(&manifest(&"x".repeat(1020))).unwrap_err().to_string();
    assert!(err.contains("1028 bytes long"), "{err}");
    for bad in ["a..b", "a.>.b", "a b"] {
        let err = parse(&manifest(bad)).unwrap_err().to_string();
        assert!(err.contains("is not a valid subject"), "{bad}: {err}");
    }
}

#[test]
fn plugin_grants_are_checked_where_written() {
    let err = parse("[[plugin]]\nname = \"config\"\n[plugin.grants]\nsockets = [\"nowhere\"]\n")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("app.toml:4:12: `nowhere` is not a socket pattern"),
        "{err}"
    );
    let err = parse("[[plugin]]\nname = \"config\"\n[plugin.grants]\ndisk = true\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `disk`"), "{err}");
    let err = parse("[[plugin]]\nname = \"mystery\"\n").unwrap_err();
    assert!(
        err.to_string().contains("plugin `mystery` needs a `path`"),
        "{err}"
    );
}

#[test]
fn blocking_internal_addresses_is_on_unless_turned_off() {
    let workload = "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n";
    let defaults = parse(&format!("[[plugin]]\nname = \"config\"\n{workload}")).unwrap();
    assert!(defaults.workloads[0].http.block_private);
    assert!(defaults.plugins[0].grants.outgoing_block_private);
    let off = parse(&format!(
        "[[plugin]]\nname = \"config\"\n[plugin.grants]\noutgoing_block_private = false\n\
         {workload}[workload.http]\nblock_private = false\n"
    ))
    .unwrap();
    assert!(!off.workloads[0].http.block_private);
    assert!(!off.plugins[0].grants.outgoing_block_private);
    let err = parse(&format!(
        "{workload}[workload.http]\nblock_private = \"yes\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().starts_with("app.toml:6:17: "), "{err}");
}

#[test]
fn a_plugin_forwarder_is_read_and_checked() {
    let manifest = parse(
        "[[plugin]]\nname = \"keyvalue-memory\"\nmode = \"shared\"\nforwarder = \"generic\"\n\
         [[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n",
    )
    .unwrap();
    assert_eq!(
        manifest.plugins[0].forwarder,
        crate::spec::Forwarder::Generic
    );
    let err = parse("[[plugin]]\nname = \"config\"\nforwarder = \"fast\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with("app.toml:3:13: ") && err.to_string().contains("`typed`"),
        "{err}"
    );
}

#[test]
fn a_shared_plugins_scope_memory_and_call_timeout_are_read() {
    use crate::spec::SharedScope;
    let workload = "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n";
    let defaults = parse(&format!(
        "[[plugin]]\nname = \"keyvalue-memory\"\n{workload}"
    ))
    .unwrap();
    let plugin = &defaults.plugins[0];
    assert_eq!(plugin.scope, SharedScope::Namespace);
    assert_eq!(plugin.memory, PluginSpec::DEFAULT_MEMORY);
    assert_eq!(plugin.call_timeout, PluginSpec::DEFAULT_CALL_TIMEOUT);
    let set = parse(&format!(
        "[[plugin]]\nname = \"keyvalue-memory\"\nscope = \"host\"\nmemory = \"64MiB\"\n\
         call_timeout = \"250ms\"\n{workload}"
    ))
    .unwrap();
    let plugin = &set.plugins[0];
    assert_eq!(plugin.scope, SharedScope::Host);
    assert_eq!(plugin.memory, crate::spec::ByteSize::mib(64));
    assert_eq!(plugin.call_timeout, std::time::Duration::from_millis(250));
    let err = parse("[[plugin]]\nname = \"config\"\nscope = \"tenant\"\n").unwrap_err();
    assert!(err.to_string().contains("`namespace`"), "{err}");
}

#[test]
fn a_nats_table_is_read_and_checked() {
    // Tests run in the crate's folder, where Cargo.toml stands in for a component.
    let manifest = parse(
        "[nats]\nurl = \"nats://10.0.0.1:4222\"\nname = \"edge-1\"\n[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n",
    )
    .unwrap();
    let nats = manifest.nats.expect("nats table");
    assert_eq!(nats.url, "nats://10.0.0.1:4222");
    assert_eq!(nats.name.as_deref(), Some("edge-1"));
    let err = parse("[nats]\nurl = \"http://x\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("app.toml:2:7: `url` must be nats://"),
        "{err}"
    );
    let err = parse("[nats]\nurl = \"nats://x:1\"\nuser = \"me\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `user`"), "{err}");
}

#[test]
fn an_empty_manifest_is_refused() {
    assert!(
        parse("")
            .unwrap_err()
            .to_string()
            .contains("no `[[workload]]`")
    );
}

#[test]
fn oci_references_stand_where_paths_go() {
    let manifest = parse(
        "[[registry]]\nhost = \"127.0.0.1:5000\"\ninsecure = true\n\
         [[plugin]]\nname = \"tally\"\npath = \"oci://127.0.0.1:5000/plugins/tally:1\"\n\
         [[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"oci://127.0.0.1:5000/acme/my_api:1.2.0\"\n",
    )
    .unwrap();
    assert!(manifest.registries[0].insecure);
    let component = &manifest.workloads[0].components[0];
    assert_eq!(component.name, "my-api", "named after the repository");
    assert_eq!(
        component
            .source
            .reference()
            .map(ToString::to_string)
            .as_deref(),
        Some("oci://127.0.0.1:5000/acme/my_api:1.2.0")
    );
    let plugin = manifest.plugins[0].source.as_ref().unwrap();
    assert_eq!(plugin.reference().unwrap().tag(), Some("1"));

    let err = parse(
        "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"oci://r.example/app\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("app.toml:4:8: "), "{err}");
    assert!(err.to_string().contains("no tag"), "{err}");
    let err = parse(
        "[[registry]]\nhost = \"r.example\"\nusername_env = \"U\"\n[[workload]]\nname = \"a\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("go together"), "{err}");
}

#[test]
fn nats_client_certificates_and_the_subject_scope_are_read() {
    let workload = "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n";
    let manifest = parse(&format!(
        "[nats]\nurl = \"tls://10.0.0.1:4222\"\ntls_cert = \"c.pem\"\ntls_key = \"c.key\"\n\
         subjects = \"as-written\"\n{workload}"
    ))
    .unwrap();
    let nats = manifest.nats.expect("nats table");
    assert_eq!(
        nats.tls_client,
        Some((PathBuf::from("c.pem"), PathBuf::from("c.key")))
    );
    assert_eq!(nats.subjects, crate::spec::SubjectScope::AsWritten);
    let err = parse(&format!(
        "[nats]\nurl = \"tls://x:1\"\ntls_cert = \"c.pem\"\n{workload}"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("`tls_key` go together"), "{err}");
    let manifest = parse(&format!("[nats]\nurl = \"nats://x:1\"\n{workload}")).unwrap();
    assert_eq!(
        manifest.nats.expect("nats table").subjects,
        crate::spec::SubjectScope::Namespace,
        "a manifest keeps the namespace prefix unless told otherwise"
    );
}

#[test]
fn a_host_configuration_has_plugins_and_no_workloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.toml");
    std::fs::write(
        &path,
        "[[plugin]]\nname = \"config\"\nconfig = { a = \"b\" }\n",
    )
    .unwrap();
    let config = Manifest::load_host_config(&path).unwrap();
    assert_eq!(config.plugins.len(), 1);
    std::fs::write(dir.path().join("a.wasm"), b"\0asm").unwrap();
    std::fs::write(
        &path,
        "[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"a.wasm\"\n",
    )
    .unwrap();
    let err = Manifest::load_host_config(&path).unwrap_err();
    assert!(
        err.to_string().contains("declares no `[[workload]]`"),
        "{err}"
    );
}

#[test]
fn a_layer_names_what_it_wraps_as_a_plugin_or_per_interface() {
    let manifest = parse(
        "[[plugin]]\nname = \"logging\"\n[plugin.wraps]\n\"wasi:keyvalue/store\" = \"keyvalue-memory\"\n[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n",
    )
    .expect("a table of interface = plugin");
    let wraps = &manifest.plugins[0].wraps;
    assert_eq!(wraps.plugin, None);
    assert_eq!(
        wraps
            .interfaces
            .get("wasi:keyvalue/store")
            .map(String::as_str),
        Some("keyvalue-memory")
    );
    let manifest = parse(
        "[[plugin]]\nname = \"logging\"\nwraps = \"keyvalue-memory\"\n[[workload]]\nname = \"a\"\n[[workload.component]]\npath = \"Cargo.toml\"\n",
    )
    .expect("a plugin name");
    assert_eq!(
        manifest.plugins[0].wraps.plugin.as_deref(),
        Some("keyvalue-memory")
    );
}

#[test]
fn a_malformed_wraps_is_explained() {
    let err = parse("[[plugin]]\nname = \"logging\"\nwraps = 3\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("a plugin name (`wraps = \"keyvalue-nats\"`) or a table"),
        "{err}"
    );
    let err =
        parse("[[plugin]]\nname = \"logging\"\n[plugin.wraps]\n\"store\" = \"keyvalue-memory\"\n")
            .unwrap_err();
    assert!(
        err.to_string().contains("`store` is not an interface name"),
        "{err}"
    );
}
