//! The `wasi:blobstore` test suite, written once and run against every
//! backend keel ships (see [`blobstore_suite!`](crate::blobstore_suite)).
//! Each case drives the `blobstore-user` fixture over real HTTP, as two
//! workloads (`a.test` and `b.test`) sharing one host.

use crate::Answer;
use crate::suite::Target;
use anyhow::{Result, ensure};
use bytes::Bytes;

impl Target {
    async fn expect(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer> {
        let answer = self.call(who, method, path, body).await?;
        ensure!(answer.status == 200, "{method} {path}: {answer:?}");
        Ok(answer)
    }

    async fn put_object(
        &self,
        container: &str,
        object: &str,
        body: impl Into<Bytes>,
    ) -> Result<()> {
        self.expect(
            "a",
            "PUT",
            &format!("/object?c={container}&o={object}"),
            body,
        )
        .await
        .map(|_| ())
    }

    async fn object(&self, query: &str) -> Result<Answer> {
        self.get("a", &format!("/object?{query}")).await
    }
}

/// A value with every position distinct enough to catch an off-by-one.
fn pattern(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// create, exists, get (name, info), a second create, delete.
pub async fn containers(t: &Target) -> Result<()> {
    ensure!(t.get("a", "/container-exists?c=photos").await?.body == "false");
    t.expect("a", "PUT", "/container?c=photos", "").await?;
    ensure!(t.get("a", "/container-exists?c=photos").await?.body == "true");
    let info = t.expect("a", "GET", "/container?c=photos", "").await?;
    ensure!(
        info.body
            .starts_with("name=photos info-name=photos created="),
        "{info:?}"
    );
    let created: u64 = info.body.rsplit('=').next().unwrap_or_default().parse()?;
    ensure!(
        created > 1_700_000_000,
        "created-at is seconds since the epoch: {created}"
    );
    let again = t.call("a", "PUT", "/container?c=photos", "").await?;
    ensure!(
        again.status == 500 && again.body.contains("already exists"),
        "{again:?}"
    );
    t.expect("a", "DELETE", "/container?c=photos", "").await?;
    ensure!(t.get("a", "/container-exists?c=photos").await?.body == "false");
    Ok(())
}

/// An unknown container is an error everywhere, naming it.
pub async fn unknown_containers(t: &Target) -> Result<()> {
    for (method, path) in [
        ("GET", "/container?c=nowhere"),
        ("DELETE", "/container?c=nowhere"),
        ("GET", "/object?c=nowhere&o=x"),
        ("PUT", "/object?c=nowhere&o=x"),
        ("GET", "/list?c=nowhere"),
    ] {
        let answer = t.call("a", method, path, "").await?;
        ensure!(
            answer.status == 500 && answer.body.contains("nowhere"),
            "{method} {path}: {answer:?}"
        );
    }
    Ok(())
}

/// Objects written through the value stream come back byte for byte,
/// whichever order the workload calls `write-data` and writes the body in,
/// and read as a stream or at once.
pub async fn write_and_read(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=docs", "").await?;
    let text = pattern(100_000);
    t.put_object("docs", "after", text.clone()).await?;
    t.expect(
        "a",
        "PUT",
        "/object?c=docs&o=before&order=data-first",
        text.clone(),
    )
    .await?;
    for query in [
        "c=docs&o=after",
        "c=docs&o=before",
        "c=docs&o=after&read=sync",
    ] {
        let got = t.object(query).await?;
        ensure!(
            got.status == 200 && got.body == text,
            "{query}: {} bytes, status {}",
            got.body.len(),
            got.status
        );
    }
    t.put_object("docs", "after", "replaced").await?;
    ensure!(t.object("c=docs&o=after").await?.body == "replaced");
    let missing = t.object("c=docs&o=nothing").await?;
    ensure!(
        missing.status == 500 && missing.body.contains("nothing"),
        "{missing:?}"
    );
    Ok(())
}

/// An empty object and a 1 MiB one.
pub async fn empty_and_large_objects(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=sizes", "").await?;
    t.put_object("sizes", "empty", "").await?;
    let empty = t.object("c=sizes&o=empty").await?;
    ensure!(
        (empty.status, empty.body.as_str()) == (200, ""),
        "{empty:?}"
    );
    let big = pattern(1 << 20);
    t.put_object("sizes", "big", big.clone()).await?;
    let got = t.object("c=sizes&o=big").await?;
    ensure!(
        got.body == big,
        "1 MiB object differs ({} bytes back)",
        got.body.len()
    );
    ensure!(
        t.get("a", "/object-info?c=sizes&o=big")
            .await?
            .body
            .contains("size=1048576")
    );
    Ok(())
}

/// `get-data` honours its inclusive `start`/`end` range.
pub async fn byte_ranges(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=ranges", "").await?;
    let text = pattern(1000);
    t.put_object("ranges", "r", text.clone()).await?;
    for (start, end, want) in [
        (0, 0, &text[0..1]),
        (10, 19, &text[10..20]),
        (990, 5000, &text[990..]),
        (0, 999, &text[..]),
        (1000, 2000, ""),
    ] {
        let got = t
            .object(&format!("c=ranges&o=r&start={start}&end={end}"))
            .await?;
        ensure!(
            got.status == 200 && got.body == want,
            "{start}..={end}: {:?}",
            got.body
        );
    }
    Ok(())
}

/// `object-info`, `has-object`, `delete-object`, `delete-objects`, `clear`.
pub async fn object_info_and_deletion(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=misc", "").await?;
    for name in ["one", "two", "three", "four"] {
        t.put_object("misc", name, name).await?;
    }
    let info = t.get("a", "/object-info?c=misc&o=three").await?;
    ensure!(
        info.body
            .starts_with("name=three container=misc size=5 created="),
        "{info:?}"
    );
    let created: u64 = info.body.rsplit('=').next().unwrap_or_default().parse()?;
    ensure!(created > 1_700_000_000, "{created}");
    let missing = t.get("a", "/object-info?c=misc&o=none").await?;
    ensure!(missing.status == 500, "{missing:?}");
    ensure!(t.get("a", "/has-object?c=misc&o=one").await?.body == "true");
    t.expect("a", "DELETE", "/object?c=misc&o=one", "").await?;
    ensure!(t.get("a", "/has-object?c=misc&o=one").await?.body == "false");
    t.expect("a", "DELETE", "/object?c=misc&o=one", "").await?;
    t.expect("a", "POST", "/delete-objects?c=misc&o=two,three", "")
        .await?;
    ensure!(
        t.get("a", "/list?c=misc").await?.body == "pages=1\nfour",
        "after delete-objects"
    );
    t.expect("a", "POST", "/clear?c=misc", "").await?;
    ensure!(
        t.get("a", "/list?c=misc").await?.body == "pages=1\n",
        "after clear"
    );
    ensure!(t.get("a", "/container-exists?c=misc").await?.body == "true");
    Ok(())
}

/// `list-objects` streams every name, in pages, and can skip.
pub async fn list_objects_in_pages(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=many", "").await?;
    let names: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    for name in &names {
        t.put_object("many", name, "x").await?;
    }
    let listed = t.get("a", "/list?c=many&page=10").await?.body;
    let mut lines = listed.lines();
    ensure!(lines.next() == Some("pages=3"), "{listed}");
    let mut got: Vec<&str> = lines.collect();
    got.sort_unstable();
    ensure!(got == names, "{got:?}");
    let skipped = t.get("a", "/list?c=many&page=100&skip=20").await?.body;
    ensure!(skipped.lines().count() == 1 + 5, "{skipped}");
    Ok(())
}

/// `copy-object` and `move-object`, within and across containers.
pub async fn copy_and_move(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=src", "").await?;
    t.expect("a", "PUT", "/container?c=dst", "").await?;
    t.put_object("src", "o", "payload").await?;
    t.expect("a", "POST", "/copy?c=src&o=o&to-c=dst&to-o=copied", "")
        .await?;
    ensure!(t.object("c=dst&o=copied").await?.body == "payload");
    ensure!(
        t.object("c=src&o=o").await?.body == "payload",
        "copy keeps the source"
    );
    t.expect("a", "POST", "/move?c=src&o=o&to-c=src&to-o=renamed", "")
        .await?;
    ensure!(t.object("c=src&o=renamed").await?.body == "payload");
    ensure!(
        t.get("a", "/has-object?c=src&o=o").await?.body == "false",
        "move removes the source"
    );
    let nowhere = t
        .call("a", "POST", "/copy?c=src&o=renamed&to-c=absent&to-o=x", "")
        .await?;
    ensure!(
        nowhere.status == 500 && nowhere.body.contains("absent"),
        "{nowhere:?}"
    );
    Ok(())
}

/// Workload B does not see workload A's containers.
pub async fn containers_are_per_workload(t: &Target) -> Result<()> {
    t.expect("a", "PUT", "/container?c=private", "").await?;
    t.put_object("private", "secret", "for a").await?;
    ensure!(t.get("b", "/container-exists?c=private").await?.body == "false");
    ensure!(t.get("b", "/object?c=private&o=secret").await?.status == 500);
    t.expect("b", "PUT", "/container?c=private", "").await?;
    ensure!(t.get("b", "/list?c=private").await?.body == "pages=1\n");
    ensure!(t.object("c=private&o=secret").await?.body == "for a");
    Ok(())
}

/// Generates one test per suite case, each on a fresh target from `$start`
/// (an `async fn() -> anyhow::Result<Target>`).
#[macro_export]
macro_rules! blobstore_suite {
    ($start:path) => {
        $crate::blobstore_suite!(@cases $start;
            containers, unknown_containers, write_and_read, empty_and_large_objects, byte_ranges,
            object_info_and_deletion, list_objects_in_pages, copy_and_move,
            containers_are_per_workload);
    };
    (@cases $start:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() -> anyhow::Result<()> {
                let target = $start().await?;
                let result = $crate::blobstore_suite::$case(&target).await;
                target.host.shutdown().await;
                result
            }
        )*
    };
}
