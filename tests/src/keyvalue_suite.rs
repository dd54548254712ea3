//! The `wasi:keyvalue` test suite, written once and run against every
//! backend keel ships (see [`keyvalue_suite!`](crate::keyvalue_suite)). Each
//! case drives the `keyvalue-user` fixture over real HTTP, as two workloads
//! (`a.test` and `b.test`) sharing one host.

use crate::{Answer, request};
use anyhow::{Result, ensure};
use bytes::Bytes;
use std::collections::BTreeSet;

pub use crate::suite::Target;

impl Target {
    async fn set(&self, who: &str, bucket: &str, key: &str, value: impl Into<Bytes>) -> Result<()> {
        let path = format!("/set?bucket={bucket}&key={}", encode(key));
        let answer = self.call(who, "PUT", &path, value).await?;
        ensure!(
            answer.status == 200,
            "set {key}: {} {}",
            answer.status,
            answer.body
        );
        Ok(())
    }
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The keys of a `/list-all` answer, and its page count.
fn listed(answer: &Answer) -> (usize, Vec<String>) {
    let mut lines = answer.body.lines();
    let header = lines.next().unwrap_or_default();
    let pages = header
        .split_whitespace()
        .find_map(|p| p.strip_prefix("pages="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (pages, lines.map(str::to_string).collect())
}

/// set, get, exists, delete.
pub async fn set_get_exists_delete(t: &Target) -> Result<()> {
    t.set("a", "default", "greeting", "hello").await?;
    let got = t.get("a", "/get?bucket=default&key=greeting").await?;
    ensure!((got.status, got.body.as_str()) == (200, "hello"), "{got:?}");
    ensure!(
        t.get("a", "/exists?bucket=default&key=greeting")
            .await?
            .body
            == "true"
    );
    t.set("a", "default", "greeting", "replaced").await?;
    ensure!(t.get("a", "/get?bucket=default&key=greeting").await?.body == "replaced");
    let deleted = t
        .call("a", "DELETE", "/delete?bucket=default&key=greeting", "")
        .await?;
    ensure!(deleted.status == 200, "{deleted:?}");
    ensure!(t.get("a", "/get?bucket=default&key=greeting").await?.status == 404);
    ensure!(
        t.get("a", "/exists?bucket=default&key=greeting")
            .await?
            .body
            == "false"
    );
    Ok(())
}

/// Missing keys: get is none, exists is false, delete is fine.
pub async fn missing_keys(t: &Target) -> Result<()> {
    let got = t.get("a", "/get?bucket=default&key=nowhere").await?;
    ensure!(
        (got.status, got.body.as_str()) == (404, "absent"),
        "{got:?}"
    );
    ensure!(t.get("a", "/exists?bucket=default&key=nowhere").await?.body == "false");
    ensure!(
        t.call("a", "DELETE", "/delete?bucket=default&key=nowhere", "")
            .await?
            .status
            == 200
    );
    Ok(())
}

/// An empty value is a value, not a missing key.
pub async fn empty_value(t: &Target) -> Result<()> {
    t.set("a", "default", "empty", "").await?;
    let got = t.get("a", "/get?bucket=default&key=empty").await?;
    ensure!((got.status, got.body.as_str()) == (200, ""), "{got:?}");
    ensure!(t.get("a", "/exists?bucket=default&key=empty").await?.body == "true");
    Ok(())
}

/// A 1 MiB value comes back byte for byte.
pub async fn one_mebibyte_value(t: &Target) -> Result<()> {
    let value: Vec<u8> = (0..1 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    t.set("a", "default", "big", value.clone()).await?;
    let got = t.get("a", "/get?bucket=default&key=big").await?;
    ensure!(
        got.status == 200 && got.body.as_bytes() == value.as_slice(),
        "1 MiB value differs ({} bytes back)",
        got.body.len()
    );
    Ok(())
}

/// Keys in any script.
pub async fn unicode_keys(t: &Target) -> Result<()> {
    for key in ["ключ", "鍵/🔑", "clé avec espaces"] {
        t.set("a", "default", key, key.to_uppercase()).await?;
        let got = t
            .get("a", &format!("/get?bucket=default&key={}", encode(key)))
            .await?;
        ensure!(got.body == key.to_uppercase(), "{key}: {got:?}");
    }
    let (_, keys) = listed(&t.get("a", "/list-all?bucket=default").await?);
    ensure!(keys.contains(&"鍵/🔑".to_string()), "{keys:?}");
    Ok(())
}

/// 10,000 keys, paged through with the cursor: each exactly once.
pub async fn ten_thousand_keys_page_through(t: &Target) -> Result<()> {
    let filled = t
        .call("a", "POST", "/fill?bucket=many&n=10000&prefix=k", "")
        .await?;
    ensure!(filled.status == 200, "{filled:?}");
    let (pages, keys) = listed(&t.get("a", "/list-all?bucket=many").await?);
    let distinct: BTreeSet<&String> = keys.iter().collect();
    ensure!(
        keys.len() == 10_000 && distinct.len() == 10_000,
        "{} keys, {} distinct",
        keys.len(),
        distinct.len()
    );
    ensure!(
        pages > 1,
        "10,000 keys came in one page: the cursor was not exercised"
    );
    Ok(())
}

/// Keys added while a listing is under way: no key listed twice, none of the
/// keys present at the start missed.
pub async fn cursor_survives_new_keys(t: &Target) -> Result<()> {
    t.call("a", "POST", "/fill?bucket=moving&n=2500&prefix=old", "")
        .await?;
    let first = t.get("a", "/list?bucket=moving").await?;
    let mut lines = first.body.lines();
    let cursor = lines
        .next()
        .and_then(|l| l.strip_prefix("cursor="))
        .unwrap_or("none")
        .to_string();
    ensure!(cursor != "none", "the first page held every key: {first:?}");
    let mut seen: Vec<String> = lines.map(str::to_string).collect();
    t.call("a", "POST", "/fill?bucket=moving&n=700&prefix=new", "")
        .await?;
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let page = t
            .get("a", &format!("/list?bucket=moving&cursor={cursor}"))
            .await?;
        let mut lines = page.body.lines();
        next = lines
            .next()
            .and_then(|l| l.strip_prefix("cursor="))
            .filter(|c| *c != "none")
            .map(str::to_string);
        seen.extend(lines.map(str::to_string));
    }
    let distinct: BTreeSet<&String> = seen.iter().collect();
    ensure!(distinct.len() == seen.len(), "a key was listed twice");
    for i in 0..2500 {
        ensure!(distinct.contains(&format!("old{i}")), "old{i} was missed");
    }
    Ok(())
}

/// increment: a missing key starts at 0; the value is stored as decimal
/// text; a value that is not a counter is an error.
pub async fn increments(t: &Target) -> Result<()> {
    let first = t
        .call(
            "a",
            "POST",
            "/increment?bucket=default&key=hits&delta=5",
            "",
        )
        .await?;
    ensure!(first.body == "5", "{first:?}");
    ensure!(
        t.call(
            "a",
            "POST",
            "/increment?bucket=default&key=hits&delta=3",
            ""
        )
        .await?
        .body
            == "8"
    );
    ensure!(
        t.get("a", "/get?bucket=default&key=hits").await?.body == "8",
        "counters are decimal text"
    );
    t.set("a", "default", "prose", "not a number").await?;
    let refused = t
        .call(
            "a",
            "POST",
            "/increment?bucket=default&key=prose&delta=1",
            "",
        )
        .await?;
    ensure!(
        refused.status == 500 && refused.body.contains("not a counter"),
        "{refused:?}"
    );
    Ok(())
}

/// 8 parallel increments all count.
pub async fn concurrent_increments(t: &Target) -> Result<()> {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = t.addr;
        tasks.push(tokio::spawn(async move {
            request(
                addr,
                "POST",
                "a.test",
                "/increment?bucket=default&key=together&delta=1",
                "",
            )
            .await
        }));
    }
    for task in tasks {
        let answer = task.await??;
        ensure!(answer.status == 200, "{answer:?}");
    }
    let total = t.get("a", "/get?bucket=default&key=together").await?;
    ensure!(total.body == "8", "8 increments made {}", total.body);
    Ok(())
}

/// set-many, get-many (with a missing key), delete-many.
pub async fn batch_operations(t: &Target) -> Result<()> {
    ensure!(
        t.call("a", "POST", "/set-many?bucket=batch", "x=1\ny=2\nz=3")
            .await?
            .body
            == "ok"
    );
    let got = t.get("a", "/get-many?bucket=batch&keys=x,nope,z").await?;
    ensure!(got.body == "x=1\nnope absent\nz=3", "{got:?}");
    ensure!(
        t.call("a", "POST", "/delete-many?bucket=batch&keys=x,y", "")
            .await?
            .body
            == "ok"
    );
    let after = t.get("a", "/get-many?bucket=batch&keys=x,y,z").await?;
    ensure!(after.body == "x absent\ny absent\nz=3", "{after:?}");
    Ok(())
}

/// Workload B does not see workload A's bucket of the same name.
pub async fn buckets_are_per_workload(t: &Target) -> Result<()> {
    t.set("a", "default", "secret", "for a only").await?;
    ensure!(t.get("b", "/get?bucket=default&key=secret").await?.status == 404);
    ensure!(t.get("b", "/exists?bucket=default&key=secret").await?.body == "false");
    let (_, keys) = listed(&t.get("b", "/list-all?bucket=default").await?);
    ensure!(keys.is_empty(), "B listed A's keys: {keys:?}");
    t.set("b", "default", "secret", "for b").await?;
    ensure!(t.get("a", "/get?bucket=default&key=secret").await?.body == "for a only");
    Ok(())
}

/// Generates one test per suite case, each on a fresh target from `$start`
/// (an `async fn() -> anyhow::Result<Target>`).
#[macro_export]
macro_rules! keyvalue_suite {
    ($start:path) => {
        $crate::keyvalue_suite!(@cases $start;
            set_get_exists_delete, missing_keys, empty_value, one_mebibyte_value, unicode_keys,
            ten_thousand_keys_page_through, cursor_survives_new_keys, increments,
            concurrent_increments, batch_operations, buckets_are_per_workload);
    };
    (@cases $start:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() -> anyhow::Result<()> {
                let target = $start().await?;
                let result = $crate::keyvalue_suite::$case(&target).await;
                target.host.shutdown().await;
                result
            }
        )*
    };
}
