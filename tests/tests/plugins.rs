//! Plugins end to end over HTTP: a custom plugin in composed mode, the
//! composed-and-compiled cache, deny by default, and the refusal of
//! workloads that import `keel:core`.

use keel_tests::keel::spec::{LinkMode, PluginSpec};
use keel_tests::keel::{CacheStats, Host, WorkloadId, WorkloadSpec};
use keel_tests::{get, guest, request, start_host};
use std::path::Path;

fn plugin(name: &str, file: &str, mode: LinkMode) -> PluginSpec {
    PluginSpec::new(name, Some(guest(file)), mode)
}

fn tally_user(name: &str) -> WorkloadSpec {
    WorkloadSpec::single(WorkloadId::new("plugins", name), guest("tally_user"))
}

async fn host_with(plugins: &[PluginSpec], cache: Option<&Path>) -> anyhow::Result<Host> {
    let host = start_host(cache).await?;
    for spec in plugins {
        host.add_plugin(spec.clone()).await?;
    }
    Ok(host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_composed_custom_plugin_serves_every_kind_of_call() -> anyhow::Result<()> {
    let host = host_with(&[plugin("tally", "tally_plugin", LinkMode::Composed)], None).await?;
    host.start_workload(tally_user("user")).await?;
    let addr = host.http_addr().expect("ingress");
    // own resource returned, method with a result
    assert_eq!(get(addr, "x", "/add?name=a&delta=5").await?.body, "5");
    // record with a list, and the caller's identity learned through keel:core
    assert_eq!(
        get(addr, "x", "/snapshot?name=a").await?.body,
        "name=a value=0 history=[] owner=plugins/user",
        "composed: every request has a fresh plugin instance"
    );
    // a borrow and an owned handle in one call
    assert_eq!(
        get(addr, "x", "/merge?target=a&source=b").await?.body,
        "name=a value=0 history=[0] owner=plugins/user"
    );
    assert_eq!(get(addr, "x", "/sum?values=1,2,39").await?.body, "42");
    let empty = get(addr, "x", "/open-empty").await?;
    assert_eq!(
        (empty.status, empty.body.as_str()),
        (400, "TallyError::EmptyName")
    );
    assert_eq!(get(addr, "x", "/live").await?.body, "0");
    // A plugin trap is the workload's trap: 500, and the next request works.
    assert_eq!(get(addr, "x", "/crash").await?.status, 500);
    assert_eq!(get(addr, "x", "/add?name=c&delta=1").await?.body, "1");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_neither_composes_nor_compiles_unless_an_input_changed() -> anyhow::Result<()>
{
    let cache = tempfile::tempdir()?;
    let tally = plugin("tally", "tally_plugin", LinkMode::Composed);
    let first = host_with(std::slice::from_ref(&tally), Some(cache.path())).await?;
    first.start_workload(tally_user("user")).await?;
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            compiled: 1,
            loaded: 0,
            composed: 1
        }
    );
    first.shutdown().await;

    let second = host_with(std::slice::from_ref(&tally), Some(cache.path())).await?;
    second.start_workload(tally_user("user")).await?;
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            compiled: 0,
            loaded: 1,
            composed: 0
        }
    );
    assert_eq!(
        get(second.http_addr().expect("ingress"), "x", "/sum?values=2,2")
            .await?
            .body,
        "4"
    );
    second.shutdown().await;

    // Configuration a plugin takes is baked in, so it is an input of the
    // composition: a change composes again, the same values do not.
    let with_greeting = |greeting: &str| {
        let mut spec = WorkloadSpec::single(
            WorkloadId::new("plugins", "configured"),
            guest("config_user"),
        );
        spec.components[0]
            .config
            .insert("greeting".into(), greeting.into());
        spec
    };
    for (greeting, expected) in [
        (
            "hello",
            CacheStats {
                compiled: 1,
                loaded: 0,
                composed: 1,
            },
        ),
        (
            "hello",
            CacheStats {
                compiled: 0,
                loaded: 1,
                composed: 0,
            },
        ),
        (
            "goodbye",
            CacheStats {
                compiled: 1,
                loaded: 0,
                composed: 1,
            },
        ),
    ] {
        let host = host_with(&[], Some(cache.path())).await?;
        host.start_workload(with_greeting(greeting)).await?;
        assert_eq!(host.cache_stats(), expected, "greeting {greeting}");
        let answer = get(host.http_addr().expect("ingress"), "x", "/get?key=greeting").await?;
        assert_eq!(answer.body, greeting);
        host.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unserved_keyvalue_import_answers_access_denied() -> anyhow::Result<()> {
    // Without the built-in plugins nothing serves wasi:keyvalue.
    let host = Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(keel_tests::test_engine())
        .builtin_plugins(false)
        .start()
        .await?;
    host.start_workload(WorkloadSpec::single(
        WorkloadId::new("plugins", "kv"),
        guest("keyvalue_user"),
    ))
    .await?;
    let addr = host.http_addr().expect("ingress");
    let denied = get(addr, "x", "/get?bucket=default&key=k").await?;
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (500, "Error::AccessDenied")
    );
    let denied = request(addr, "PUT", "x", "/set?bucket=default&key=k", "v").await?;
    assert_eq!(denied.body, "Error::AccessDenied", "a denial, not a crash");
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unserved_import_without_an_error_case_traps_and_the_host_goes_on() -> anyhow::Result<()>
{
    let host = start_host(None).await?;
    host.start_workload(tally_user("lonely")).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "x", "/sum?values=1").await?.status, 500);
    assert_eq!(get(addr, "x", "/sum?values=1").await?.status, 500);
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_importing_keel_core_is_refused() -> anyhow::Result<()> {
    let host = start_host(None).await?;
    let spec = WorkloadSpec::single(WorkloadId::new("plugins", "sneaky"), guest("tally_plugin"));
    let err = host.start_workload(spec).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("imports `keel:core/identity@0.1.0`"),
        "{text}"
    );
    assert!(
        text.contains("keel:core interfaces are for plugins only"),
        "{text}"
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_plugins_are_an_error_until_the_workload_picks_one() -> anyhow::Result<()> {
    let host = host_with(
        &[
            plugin("one", "tally_plugin", LinkMode::Composed),
            plugin("two", "tally_plugin", LinkMode::Composed),
        ],
        None,
    )
    .await?;
    let err = host.start_workload(tally_user("torn")).await.unwrap_err();
    assert!(format!("{err:#}").contains("`one` and `two`"), "{err:#}");
    let mut picked = tally_user("decided");
    picked
        .plugins
        .insert("acme:tally/counters".into(), "two".into());
    picked.http.host = Some("decided.test".into());
    host.start_workload(picked).await?;
    let addr = host.http_addr().expect("ingress");
    assert_eq!(get(addr, "decided.test", "/sum?values=3").await?.body, "3");
    host.shutdown().await;
    Ok(())
}

#[test]
fn keel_run_logs_what_serves_each_import_including_the_builtin_plugins() -> anyhow::Result<()> {
    use keel_tests::{KeelProcess, write_file};
    use std::time::Duration;
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[plugin]]\nname = \"tally\"\npath = {:?}\n\n\
             [[workload]]\nname = \"counting\"\n[workload.http]\nhost = \"counting.test\"\n\
             [[workload.component]]\npath = {:?}\n\n\
             [[workload]]\nname = \"bare\"\n[workload.http]\nhost = \"bare.test\"\n\
             [[workload.component]]\npath = {:?}\n",
            guest("tally_plugin"),
            guest("tally_user"),
            guest("keyvalue_user"),
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log(
        "workload running workload=default/bare",
        Duration::from_secs(60),
    )?;
    let served = keel.wait_for_log("import served by plugin", Duration::from_secs(5))?;
    assert!(
        served.contains("acme:tally/counters@0.2.0")
            && served.contains("plugin=\"tally\"")
            && served.contains("composed"),
        "{served}"
    );
    let builtin = keel.wait_for_log(
        "import=\"wasi:keyvalue/store@0.2.0-draft\"",
        Duration::from_secs(5),
    )?;
    assert!(
        builtin.contains("plugin=\"keyvalue-memory\"") && builtin.contains("mode=\"shared\""),
        "{builtin}"
    );
    let linked = keel.wait_for_log("shared plugin linked", Duration::from_secs(5))?;
    assert!(
        linked.contains("plugin=\"keyvalue-memory\"") && linked.contains("store=\"sync\""),
        "{linked}"
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let sum = runtime.block_on(get(addr, "counting.test", "/sum?values=4,5"))?;
    assert_eq!(sum.body, "9");
    let set = runtime.block_on(request(
        addr,
        "PUT",
        "bare.test",
        "/set?bucket=b&key=k",
        "built in",
    ))?;
    assert_eq!(set.body, "ok");
    let got = runtime.block_on(get(addr, "bare.test", "/get?bucket=b&key=k"))?;
    assert_eq!(got.body, "built in");
    Ok(())
}

#[test]
fn a_denied_call_traps_with_a_message_naming_the_interface() -> anyhow::Result<()> {
    use keel_tests::{KeelProcess, write_file};
    use std::time::Duration;
    let dir = tempfile::tempdir()?;
    let manifest = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[[workload]]\nname = \"lonely\"\n[[workload.component]]\npath = {:?}\n",
            guest("tally_user")
        ),
    );
    let mut keel = KeelProcess::spawn(&manifest, &dir.path().join("cache"), &[])?;
    let addr = keel.http_addr()?;
    keel.wait_for_log("workload running", Duration::from_secs(60))?;
    let runtime = tokio::runtime::Runtime::new()?;
    assert_eq!(
        runtime.block_on(get(addr, "x", "/sum?values=1"))?.status,
        500
    );
    let denied = keel.wait_for_log("import denied", Duration::from_secs(5))?;
    assert!(denied.contains("acme:tally/counters@0.2.0"), "{denied}");
    let trap = keel.wait_for_log("guest trapped", Duration::from_secs(5))?;
    assert!(
        trap.contains("keel denied `acme:tally/counters@0.2.0#sum-all`"),
        "{trap}"
    );
    assert!(trap.contains("no plugin exports it"), "{trap}");
    Ok(())
}
