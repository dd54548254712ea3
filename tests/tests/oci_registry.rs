//! Components and plugins from a real OCI registry (Debian's
//! `docker-registry`, one per test on a loopback port): push and run by tag
//! and by digest, pull policies, the store, offline, basic auth, refusals
//! (digest mismatch, not Wasm, too large), and artifacts exchanged with the
//! ecosystem's `oci-wasm` in both directions.

use anyhow::{Context, Result};
use keel_tests::keel::manifest::Manifest;
use keel_tests::keel::oci::{
    OciOptions, PullFailure, PullPolicy, Pushed, Registry as KeelRegistry, config,
};
use keel_tests::keel::spec::LinkMode;
use keel_tests::keel::spec::{ImageRef, RegistrySpec};
use keel_tests::keel::{Error, Host, WorkloadId, WorkloadSpec};
use keel_tests::registry::Registry;
use keel_tests::{KeelProcess, get, guest, keel_bin, test_engine, write_file};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const HELLO: &str = "Hello from keel! You asked for /\n";

fn insecure(registry: &Registry) -> RegistrySpec {
    RegistrySpec {
        insecure: true,
        ..RegistrySpec::new(registry.host())
    }
}

fn options(store: &Path, policy: PullPolicy, registries: Vec<RegistrySpec>) -> OciOptions {
    OciOptions {
        store_dir: Some(store.to_path_buf()),
        policy,
        registries,
        ..OciOptions::default()
    }
}

/// Pushes guest `file` to `repo_tag` of `registry` with keel's library.
async fn push(registry: &Registry, file: &str, repo_tag: &str) -> Result<Pushed> {
    let client = KeelRegistry::new(OciOptions {
        registries: vec![insecure(registry)],
        ..OciOptions::default()
    })?;
    let bytes = std::fs::read(guest(file))?;
    client
        .push(&ImageRef::parse(&registry.reference(repo_tag))?, &bytes)
        .await
}

async fn host(oci: OciOptions) -> Result<Host> {
    Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine())
        .oci(oci)
        .start()
        .await
}

fn from_reference(name: &str, reference: &str) -> Result<WorkloadSpec> {
    let mut spec = WorkloadSpec::single(WorkloadId::new("oci", name), "unused.wasm");
    spec.components[0].source = ImageRef::parse(reference)?.into();
    Ok(spec)
}

/// `keel push` with `args`; (exit code, stdout, stderr).
fn keel_push(args: &[&str], env: &[(&str, &str)]) -> Result<(Option<i32>, String, String)> {
    let output = Command::new(keel_bin())
        .arg("push")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .context("running keel push")?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

fn pull_failure(result: Result<WorkloadId, Error>) -> keel_tests::keel::oci::PullError {
    match result {
        Err(Error::Pull(e)) => e,
        other => panic!("expected a pull error, got {other:?}"),
    }
}

#[test]
fn pushed_with_keel_a_component_and_a_plugin_run_by_tag_and_by_digest() -> Result<()> {
    let registry = Registry::start()?;
    let push = |file: &str, repo_tag: &str| -> Result<String> {
        let (code, stdout, stderr) = keel_push(
            &[
                guest(file).to_str().context("path")?,
                &registry.reference(repo_tag),
                "--insecure",
            ],
            &[],
        )?;
        assert_eq!(code, Some(0), "keel push failed: {stderr}");
        assert!(stderr.contains("pushed"), "{stderr}");
        Ok(stdout.trim().to_string())
    };
    let hello = push("hello", "examples/hello:1.0.0")?;
    let plugin = push("tally_plugin", "plugins/tally:1")?;
    push("tally_user", "apps/tally-user:1")?;
    // What keel push prints is the reference pinned to its digest.
    let pinned = ImageRef::parse(&hello)?;
    assert_eq!(pinned.tag(), Some("1.0.0"));
    let hello_digest = pinned.digest().context("pinned")?.to_string();
    let plugin_by_digest = format!(
        "{}@{}",
        registry.reference("plugins/tally"),
        ImageRef::parse(&plugin)?.digest().context("pinned")?
    );
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            r#"
[[registry]]
host = "{host}"
insecure = true

[[plugin]]
name = "tally"
path = "{plugin_by_digest}"

[[workload]]
name = "hello"
http.host = "hello.test"
[[workload.component]]
path = "{hello_by_digest}"

[[workload]]
name = "hello-again"
http.host = "again.test"
[[workload.component]]
path = "{hello_by_digest}"

[[workload]]
name = "tally"
http.host = "tally.test"
[[workload.component]]
path = "{user_by_tag}"
"#,
            host = registry.host(),
            hello_by_digest = format!("{}@{hello_digest}", registry.reference("examples/hello")),
            user_by_tag = registry.reference("apps/tally-user:1"),
        ),
    );
    let cache = tempfile::tempdir()?;
    let mut keel = KeelProcess::spawn(&manifest, cache.path(), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    keel.wait_for_log_line(
        "the tally workload running",
        |l| l.contains("workload running") && l.contains("default/tally"),
        Duration::from_secs(60),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    assert_eq!(runtime.block_on(get(addr, "hello.test", "/"))?.body, HELLO);
    assert_eq!(runtime.block_on(get(addr, "again.test", "/"))?.body, HELLO);
    assert_eq!(
        runtime
            .block_on(get(addr, "tally.test", "/add?name=a&delta=5"))?
            .body,
        "5"
    );
    // One pull for the reference two workloads name, logged with its digest.
    let log = keel.log();
    let hello_pulls = log
        .iter()
        .filter(|l| l.contains("pulled from registry") && l.contains(&hello_digest))
        .count();
    assert_eq!(hello_pulls, 1, "log:\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("pulled from registry")
            && l.contains("apps/tally-user:1")
            && l.contains("digest=sha256:")),
        "a tag is logged with the digest it resolved to:\n{}",
        log.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moved_tag_is_followed_only_under_always() -> Result<()> {
    let registry = Registry::start()?;
    let store = tempfile::tempdir()?;
    let reference = registry.reference("apps/moving:stable");
    let first = push(&registry, "hello", "apps/moving:stable").await?;
    let resolve = |policy| {
        let store = store.path().to_path_buf();
        let spec = insecure(&registry);
        let reference = ImageRef::parse(&reference).map_err(anyhow::Error::from);
        async move {
            let client = KeelRegistry::new(options(&store, policy, vec![spec]))?;
            Ok::<_, anyhow::Error>(client.resolve(&reference?).await?)
        }
    };
    let seen = resolve(PullPolicy::IfNotPresent).await?;
    assert!(seen.pulled);
    assert_eq!(seen.artifact.manifest_digest, first.manifest_digest);

    let second = push(&registry, "tally_user", "apps/moving:stable").await?;
    assert_ne!(first.manifest_digest, second.manifest_digest);
    let kept = resolve(PullPolicy::IfNotPresent).await?;
    assert!(!kept.pulled, "if-not-present: the store answers");
    assert_eq!(kept.artifact.manifest_digest, first.manifest_digest);
    assert_eq!(
        &*kept.artifact.bytes,
        std::fs::read(guest("hello"))?.as_slice()
    );

    let followed = resolve(PullPolicy::Always).await?;
    assert!(followed.pulled);
    assert_eq!(followed.artifact.manifest_digest, second.manifest_digest);
    assert_eq!(
        &*followed.artifact.bytes,
        std::fs::read(guest("tally_user"))?.as_slice()
    );
    // The store now remembers the tag's new target, and the old one by digest.
    let after = resolve(PullPolicy::Never).await?;
    assert_eq!(after.artifact.manifest_digest, second.manifest_digest);
    let client = KeelRegistry::new(options(store.path(), PullPolicy::Never, vec![]))?;
    let old = client.resolve(&first.reference).await?;
    assert_eq!(
        &*old.artifact.bytes,
        std::fs::read(guest("hello"))?.as_slice()
    );
    Ok(())
}

#[test]
fn with_the_registry_stopped_a_restart_serves_from_the_store_and_offline_reaches_nothing()
-> Result<()> {
    let mut registry = Registry::start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(push(&registry, "hello", "examples/hello:1"))?;
    let dir = tempfile::tempdir()?;
    let app = |component: &str| {
        format!(
            "[[registry]]\nhost = \"{}\"\ninsecure = true\n\n[[workload]]\nname = \"hello\"\n\
             [[workload.component]]\nname = \"hello\"\npath = \"{}\"\n",
            registry.host(),
            registry.reference(component)
        )
    };
    let manifest = write_file(dir.path(), "app.toml", &app("examples/hello:1"));
    let missing = write_file(dir.path(), "missing.toml", &app("examples/hello:2"));
    let cache = tempfile::tempdir()?;
    {
        let mut keel = KeelProcess::spawn(&manifest, cache.path(), &[])?;
        let addr = keel.http_addr()?;
        keel.wait_for_log("pulled from registry", Duration::from_secs(60))?;
        keel.wait_for_log("workload running", Duration::from_secs(60))?;
        assert_eq!(runtime.block_on(get(addr, "x", "/"))?.body, HELLO);
    }
    registry.stop();
    for extra in [&[][..], &["--offline"][..]] {
        let mut keel = KeelProcess::spawn(&manifest, cache.path(), extra)?;
        let addr = keel.http_addr()?;
        keel.wait_for_log("resolved from the store", Duration::from_secs(60))?;
        keel.wait_for_log("workload running", Duration::from_secs(60))?;
        assert_eq!(runtime.block_on(get(addr, "x", "/"))?.body, HELLO);
    }
    // Offline, a reference the store lacks fails at once, and says why.
    let mut keel = KeelProcess::spawn(&missing, cache.path(), &["--offline"])?;
    assert_ne!(keel.wait(Duration::from_secs(60))?, Some(0));
    let log = keel.log().join("\n");
    assert!(
        log.contains("examples/hello:2")
            && log.contains("offline")
            && log.contains("does not have it"),
        "{log}"
    );
    // `always` with the registry down fails naming the registry.
    let mut keel = KeelProcess::spawn(&manifest, cache.path(), &["--pull", "always"])?;
    assert_ne!(keel.wait(Duration::from_secs(60))?, Some(0));
    let log = keel.log().join("\n");
    assert!(
        log.contains(&format!("from registry {}", registry.host()))
            && log.contains("cannot reach the registry"),
        "{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_that_do_not_match_their_digest_are_refused() -> Result<()> {
    let registry = Registry::start()?;
    let pushed = push(&registry, "hello", "apps/hello:1").await?;
    // Someone with access to the registry's storage swaps the component.
    std::fs::copy(
        guest("tally_user"),
        registry.blob_file(&pushed.layer_digest),
    )?;
    let store = tempfile::tempdir()?;
    let host = host(options(
        store.path(),
        PullPolicy::Always,
        vec![insecure(&registry)],
    ))
    .await?;
    let error = pull_failure(
        host.start_workload(from_reference(
            "by-tag",
            &registry.reference("apps/hello:1"),
        )?)
        .await,
    );
    assert!(
        matches!(error.failure, PullFailure::DigestMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("digest mismatch"), "{error}");
    assert!(host.list().is_empty(), "nothing is started");

    // The manifest itself, under a reference pinned to its digest.
    let pinned = push(&registry, "hello", "apps/pinned:1").await?;
    let manifest_file = registry.blob_file(&pinned.manifest_digest);
    let mut manifest = std::fs::read(&manifest_file)?;
    manifest.extend_from_slice(b" ");
    std::fs::write(&manifest_file, manifest)?;
    let error = pull_failure(
        host.start_workload(from_reference("pinned", &pinned.reference.to_string())?)
            .await,
    );
    assert!(
        matches!(&error.failure, PullFailure::DigestMismatch { .. })
            && error.to_string().contains(&pinned.manifest_digest),
        "{error}"
    );
    // Nothing of it reached the store.
    let offline = KeelRegistry::new(options(store.path(), PullPolicy::Never, vec![]))?;
    assert!(offline.resolve(&pinned.reference).await.is_err());
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_auth_with_right_and_wrong_credentials() -> Result<()> {
    let registry = Registry::start_with_auth("keel", "s3cret-pass")?;
    let reference = registry.reference("private/hello:1");
    let file = guest("hello");
    // Anonymous: refused.
    let (code, _, stderr) = keel_push(
        &[file.to_str().context("path")?, &reference, "--insecure"],
        &[],
    )?;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("not authorized"), "{stderr}");
    // From environment variables named on the command line.
    let (code, _, stderr) = keel_push(
        &[
            file.to_str().context("path")?,
            &reference,
            "--insecure",
            "--username-env",
            "KEEL_TEST_REGISTRY_USER",
            "--password-env",
            "KEEL_TEST_REGISTRY_PASSWORD",
        ],
        &[
            ("KEEL_TEST_REGISTRY_USER", "keel"),
            ("KEEL_TEST_REGISTRY_PASSWORD", "s3cret-pass"),
        ],
    )?;
    assert_eq!(code, Some(0), "{stderr}");

    // Pulls: a Docker-config file with the right `auth`, then a wrong one.
    let dir = tempfile::tempdir()?;
    let docker_config = |name: &str, user_password: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(user_password);
        write_file(
            dir.path(),
            name,
            &format!(
                r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
                registry.host()
            ),
        )
    };
    let good = docker_config("good.json", "keel:s3cret-pass");
    let bad = docker_config("bad.json", "keel:wrong-pass");
    let with = |file: &Path| RegistrySpec {
        credentials: Some(file.to_path_buf()),
        ..insecure(&registry)
    };
    let store = tempfile::tempdir()?;
    let wrong = host(options(store.path(), PullPolicy::Always, vec![with(&bad)])).await?;
    let error = pull_failure(
        wrong
            .start_workload(from_reference("hello", &reference)?)
            .await,
    );
    assert!(matches!(error.failure, PullFailure::Auth(_)), "{error}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("wrong-pass"), "no secret in errors: {text}");
    assert!(text.contains(&registry.host()), "{text}");
    wrong.shutdown().await;

    let right = host(options(store.path(), PullPolicy::Always, vec![with(&good)])).await?;
    let id = right
        .start_workload(from_reference("hello", &reference)?)
        .await?;
    let addr = right.http_addr().context("ingress")?;
    assert_eq!(get(addr, "x", "/").await?.body, HELLO);
    assert!(right.status(&id).is_some());
    right.shutdown().await;
    Ok(())
}

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
    let host = host(options(
        store.path(),
        PullPolicy::IfNotPresent,
        vec![insecure(&registry)],
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
async fn a_component_over_the_size_bound_is_refused() -> Result<()> {
    let registry = Registry::start()?;
    let pushed = push(&registry, "hello", "apps/hello:1").await?;
    let store = tempfile::tempdir()?;
    let client = KeelRegistry::new(OciOptions {
        max_layer_size: 1024,
        ..options(store.path(), PullPolicy::Always, vec![insecure(&registry)])
    })?;
    let error = client.resolve(&pushed.reference).await.unwrap_err();
    assert!(
        matches!(error.failure, PullFailure::TooLarge { limit: 1024, .. }),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keel_artifacts_are_what_oci_wasm_reads() -> Result<()> {
    let registry = Registry::start()?;
    let pushed = push(&registry, "keyvalue_user", "apps/kv:1").await?;
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
    let host = host(options(
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
