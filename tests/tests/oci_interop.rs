//! Artifacts exchanged with the ecosystem, against a real registry
//! (Debian's `docker-registry` on a loopback port): what keel pushes is
//! what `oci-wasm` reads, byte for byte, and what `oci-wasm` pushes runs on
//! keel; wasmCloud's older layer type runs and a container image is refused.

use anyhow::{Context, Result};
use keel_tests::keel::manifest::Manifest;
use keel_tests::keel::oci::{PullFailure, PullPolicy, config};
use keel_tests::keel::spec::LinkMode;
use keel_tests::registry::{Registry, from_reference, oci_host, pull_failure, store_options};
use keel_tests::{get, guest};

const HELLO: &str = "Hello from keel! You asked for /\n";

/// Pushes `layer` with media type `layer_type` and a config of
/// `config_type` with the ecosystem's client.
async fn push_raw(
    registry: &Registry,
    repo_tag: &str,
    layer: Vec<u8>,
    layer_type: &str,
    config_type: &str,
) -> Result<()> {
    use oci_client::client::{Config, ImageLayer};
    let client = keel_tests::registry::plain_http_client();
    let target: oci_client::Reference = format!("{}/{repo_tag}", registry.host()).parse()?;
    let layers = [ImageLayer::new(layer, layer_type.to_string(), None)];
    let config = Config::new(b"{}".to_vec(), config_type.to_string(), None);
    let mut manifest = oci_client::manifest::OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some(config::MANIFEST_MEDIA_TYPE.to_string());
    client
        .push(
            &target,
            &layers,
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_container_image_is_refused_and_a_legacy_wasmcloud_artifact_runs() -> Result<()> {
    let registry = Registry::start()?;
    push_raw(
        &registry,
        "library/busybox:1",
        b"\x1f\x8b not really a tarball".to_vec(),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
    )
    .await?;
    push_raw(
        &registry,
        "legacy/hello:0.1",
        std::fs::read(guest("hello"))?,
        config::LEGACY_LAYER_MEDIA_TYPE,
        "application/vnd.wasmcloud.actor.archive.config",
    )
    .await?;
    let store = tempfile::tempdir()?;
    let host = oci_host(store_options(
        store.path(),
        PullPolicy::IfNotPresent,
        vec![registry.insecure()],
    ))
    .await?;
    let error = pull_failure(
        host.start_workload(from_reference(
            "image",
            &registry.reference("library/busybox:1"),
        )?)
        .await,
    );
    assert!(matches!(error.failure, PullFailure::NotWasm(_)), "{error}");
    assert!(
        error.to_string().contains("not a Wasm component")
            && error.to_string().contains("tar+gzip"),
        "{error}"
    );
    host.start_workload(from_reference(
        "legacy",
        &registry.reference("legacy/hello:0.1"),
    )?)
    .await?;
    let addr = host.http_addr().context("ingress")?;
    assert_eq!(get(addr, "x", "/").await?.body, HELLO);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keel_artifacts_are_what_oci_wasm_reads() -> Result<()> {
    let registry = Registry::start()?;
    let pushed = registry.push_guest("keyvalue_user", "apps/kv:1").await?;
    let bytes = std::fs::read(guest("keyvalue_user"))?;
    let client = oci_wasm::WasmClient::new(keel_tests::registry::plain_http_client());
    let target: oci_client::Reference = format!("{}/apps/kv:1", registry.host()).parse()?;
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let (manifest, config, digest) = client.pull_manifest_and_config(&target, &auth).await?;
    assert_eq!(digest, pushed.manifest_digest);
    assert_eq!(config.architecture, "wasm");
    assert_eq!(config.os, "wasip2");
    assert_eq!(config.layer_digests, vec![pushed.layer_digest.clone()]);
    assert_eq!(
        manifest.layers[0].media_type,
        oci_wasm::WASM_LAYER_MEDIA_TYPE
    );
    // The component's world as oci-wasm reads it from the bytes.
    let theirs = oci_wasm::Component::from_raw_component(&bytes)?;
    let ours = config.component.context("component section")?;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(ours.imports), sorted(theirs.imports));
    assert_eq!(sorted(ours.exports), sorted(theirs.exports));
    // Byte for byte: the config keel wrote is what oci-wasm writes for it.
    let mut raw_config = Vec::new();
    client
        .pull_blob(&target, &manifest.config, &mut raw_config)
        .await?;
    let reparsed = oci_wasm::WasmConfig::try_from(raw_config.clone())?;
    assert_eq!(serde_json::to_vec(&reparsed)?, raw_config);
    let image = client.pull(&target, &auth).await?;
    assert_eq!(image.layers[0].data.as_ref(), bytes.as_slice());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artifacts_pushed_with_oci_wasm_run_on_keel() -> Result<()> {
    let registry = Registry::start()?;
    let client = oci_wasm::WasmClient::new(keel_tests::registry::plain_http_client());
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let (config, layer) = oci_wasm::WasmConfig::from_component(guest("tally_plugin"), None).await?;
    let plugin_ref: oci_client::Reference =
        format!("{}/plugins/tally:1", registry.host()).parse()?;
    client.push(&plugin_ref, &auth, layer, config, None).await?;
    let (config, layer) = oci_wasm::WasmConfig::from_component(guest("tally_user"), None).await?;
    let user_ref: oci_client::Reference =
        format!("{}/apps/tally-user:1", registry.host()).parse()?;
    client.push(&user_ref, &auth, layer, config, None).await?;

    let dir = tempfile::tempdir()?;
    let manifest = Manifest::parse(
        &dir.path().join("app.toml"),
        &format!(
            "[[registry]]\nhost = \"{host}\"\ninsecure = true\n\n\
             [[plugin]]\nname = \"tally\"\npath = \"{plugin}\"\nmode = \"shared\"\n\n\
             [[workload]]\nname = \"user\"\n\
             [[workload.component]]\npath = \"{user}\"\n",
            host = registry.host(),
            plugin = registry.reference("plugins/tally:1"),
            user = registry.reference("apps/tally-user:1"),
        ),
    )?;
    let store = tempfile::tempdir()?;
    let host = oci_host(store_options(
        store.path(),
        PullPolicy::IfNotPresent,
        manifest.registries.clone(),
    ))
    .await?;
    for plugin in manifest.plugins {
        assert_eq!(plugin.mode, LinkMode::Shared);
        host.add_plugin(plugin).await?;
    }
    for workload in manifest.workloads {
        host.start_workload(workload).await?;
    }
    let addr = host.http_addr().context("ingress")?;
    assert_eq!(get(addr, "x", "/add?name=a&delta=2").await?.body, "2");
    assert_eq!(
        get(addr, "x", "/add?name=a&delta=3").await?.body,
        "5",
        "a shared plugin pulled from a registry keeps its state"
    );
    host.shutdown().await;
    Ok(())
}
