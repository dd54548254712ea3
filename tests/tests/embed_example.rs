//! `host/examples/embed.rs`, the embedding example README points to, run on
//! the hello guest: its code is compiled into this test as it is.

#[allow(dead_code, reason = "the example's `main` is not called here")]
#[path = "../../host/examples/embed.rs"]
mod embed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedding_example_serves_watches_stops_and_removes() -> anyhow::Result<()> {
    let component = std::fs::read(keel_tests::guest("hello"))?;
    let mut out = Vec::new();
    embed::run(component, &mut out).await?;
    let out = String::from_utf8(out)?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        "GET /embedded -> 200 Hello from keel! You asked for /embedded"
    );
    // The watcher may or may not be scheduled between stopping and stopped.
    assert!(
        [
            "states: running -> stopped",
            "states: running -> stopping -> stopped"
        ]
        .contains(&lines[1]),
        "{out}"
    );
    assert_eq!(lines[2], "removed: true");
    Ok(())
}
