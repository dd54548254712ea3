//! Components and plugins from a real OCI registry (Debian's
//! `docker-registry`, one per test on a loopback port): push and run by tag
//! and by digest, pull policies, the store, offline, basic auth, refusals
//! (digest mismatch, too large). Artifacts exchanged with the ecosystem's
//! tools are in `oci_interop.rs`.

use anyhow::{Context, Result};
use keel_tests::keel::oci::{PullFailure, PullPolicy, Registry as KeelRegistry};
use keel_tests::keel::spec::ImageRef;
use keel_tests::registry::{Registry, from_reference, oci_host, pull_failure, store_options};
use keel_tests::{KeelProcess, get, guest, write_file};
use std::path::Path;
use std::time::Duration;

const HELLO: &str = "Hello from keel! You asked for /\n";

/// `keel push` with `args`; (exit code, stdout, stderr).
fn keel_push(args: &[&str], env: &[(&str, &str)]) -> Result<keel_tests::KeelOutput> {
    let args: Vec<&str> = std::iter::once("push")
        .chain(args.iter().copied())
        .collect();
    keel_tests::keel_output_with_env(&args, env)
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
    let first = registry.push_guest("hello", "apps/moving:stable").await?;
    let resolve = |policy| {
        let store = store.path().to_path_buf();
        let spec = registry.insecure();
        let reference = ImageRef::parse(&reference).map_err(anyhow::Error::from);
        async move {
            let client = KeelRegistry::new(store_options(&store, policy, vec![spec]))?;
            Ok::<_, anyhow::Error>(client.resolve(&reference?).await?)
        }
    };
    let seen = resolve(PullPolicy::IfNotPresent).await?;
    assert!(seen.pulled);
    assert_eq!(seen.artifact.manifest_digest, first.manifest_digest);

    let second = registry
        .push_guest("tally_user", "apps/moving:stable")
        .await?;
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
    let client = KeelRegistry::new(store_options(store.path(), PullPolicy::Never, vec![]))?;
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
    runtime.block_on(registry.push_guest("hello", "examples/hello:1"))?;
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
    let pushed = registry.push_guest("hello", "apps/hello:1").await?;
    // Someone with access to the registry's storage swaps the component.
    std::fs::copy(
        guest("tally_user"),
        registry.blob_file(&pushed.layer_digest),
    )?;
    let store = tempfile::tempdir()?;
    let host = oci_host(store_options(
        store.path(),
        PullPolicy::Always,
        vec![registry.insecure()],
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
    let pinned = registry.push_guest("hello", "apps/pinned:1").await?;
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
    let offline = KeelRegistry::new(store_options(store.path(), PullPolicy::Never, vec![]))?;
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
    let with = |file: &Path| registry.insecure().with_credentials(file);
    let store = tempfile::tempdir()?;
    let wrong = oci_host(store_options(
        store.path(),
        PullPolicy::Always,
        vec![with(&bad)],
    ))
    .await?;
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

    let right = oci_host(store_options(
        store.path(),
        PullPolicy::Always,
        vec![with(&good)],
    ))
    .await?;
    let id = right
        .start_workload(from_reference("hello", &reference)?)
        .await?;
    let addr = right.http_addr().context("ingress")?;
    assert_eq!(get(addr, "x", "/").await?.body, HELLO);
    assert!(right.status(&id).is_some());
    right.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_component_over_the_size_bound_is_refused() -> Result<()> {
    let registry = Registry::start()?;
    let pushed = registry.push_guest("hello", "apps/hello:1").await?;
    let store = tempfile::tempdir()?;
    let client = KeelRegistry::new(
        store_options(store.path(), PullPolicy::Always, vec![registry.insecure()])
            .with_max_layer_size(1024),
    )?;
    let error = client.resolve(&pushed.reference).await.unwrap_err();
    assert!(
        matches!(error.failure, PullFailure::TooLarge { limit: 1024, .. }),
        "{error}"
    );
    Ok(())
}
