//! The blobstore suite against the built-in Object Store plugin
//! (`blobstore-nats`, composed, speaking JetStream over `keel:core/nats`)
//! on a real `nats-server -js`; interop with the `async-nats` Object Store
//! client, byte for byte, both ways; and the plugin's subject grants.

use keel_tests::nats::NatsServer;
use keel_tests::suite::Target;
use keel_tests::{builtin_plugin, get, request, run_example};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Workloads `a.test` and `b.test` (namespace `blob`) on a fresh server.
async fn nats() -> anyhow::Result<Target> {
    Target::on_nats("blob", "blobstore_user", None).await
}

keel_tests::blobstore_suite!(nats);

async fn jetstream(target: &Target) -> anyhow::Result<async_nats::jetstream::Context> {
    let server = target.nats.as_ref().expect("a NATS target");
    let client = async_nats::connect(server.url()).await?;
    Ok(async_nats::jetstream::new(client))
}

/// Bytes no two positions of which a chunking mistake would leave equal.
fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// A reader that hands out its bytes in pieces of varying sizes, so the
/// client writes middle chunks shorter than its chunk size (as real clients
/// reading from sockets and files do).
struct Choppy {
    bytes: Vec<u8>,
    at: usize,
    reads: usize,
}

impl AsyncRead for Choppy {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let piece = [70_001, 131_072, 1, 99_999][self.reads % 4];
        let n = piece.min(buf.remaining()).min(self.bytes.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.bytes[at..at + n]);
        self.at += n;
        self.reads += 1;
        Poll::Ready(Ok(()))
    }
}

/// A 5 MiB object written through keel is read by the async-nats Object
/// Store client, and one that client writes (in uneven chunks) is read
/// through keel whole and in ranges, listed, sized and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_interoperate_with_the_async_nats_client() -> anyhow::Result<()> {
    let t = nats().await?;
    let answer = request(t.addr, "PUT", "a.test", "/container?c=shared", "").await?;
    assert_eq!(answer.status, 200, "{answer:?}");
    let from_keel = data(5 << 20, 1);
    let put = request(
        t.addr,
        "PUT",
        "a.test",
        "/object?c=shared&o=from%20keel.bin",
        from_keel.clone(),
    )
    .await?;
    assert_eq!(put.status, 200, "{put:?}");

    let js = jetstream(&t).await?;
    let store = js.get_object_store("blob-a-shared").await?;
    let mut object = store.get("from keel.bin").await?;
    let mut read = Vec::new();
    object.read_to_end(&mut read).await?;
    assert!(read == from_keel, "{} bytes read back", read.len());
    let info = store.info("from keel.bin").await?;
    assert_eq!((info.size, info.chunks), (5 << 20, 40));

    let from_client = data((5 << 20) + 12_345, 2);
    let mut reader = Choppy {
        bytes: from_client.clone(),
        at: 0,
        reads: 0,
    };
    let written = store.put("dir/from client", &mut reader).await?;
    assert!(written.chunks > 40, "{} chunks", written.chunks);
    let whole = get(t.addr, "a.test", "/object?c=shared&o=dir%2Ffrom%20client").await?;
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert!(
        whole.bytes == from_client,
        "{} bytes through keel",
        whole.bytes.len()
    );
    for (start, end) in [
        (0u64, 0u64),
        (70_000, 70_002),
        (1_000_000, 3_333_333),
        (5 << 20, 1 << 40),
    ] {
        let got = get(
            t.addr,
            "a.test",
            &format!("/object?c=shared&o=dir%2Ffrom%20client&start={start}&end={end}&read=sync"),
        )
        .await?;
        let last = (end as usize).min(from_client.len() - 1);
        assert_eq!(got.status, 200, "{start}..={end}: {}", got.body);
        assert!(
            got.bytes == from_client[start as usize..=last],
            "{start}..={end}: {} bytes",
            got.bytes.len()
        );
    }
    let info = get(
        t.addr,
        "a.test",
        "/object-info?c=shared&o=dir%2Ffrom%20client",
    )
    .await?;
    assert!(
        info.body.contains(&format!("size={}", from_client.len())),
        "{info:?}"
    );

    store.add_link("alias", &written).await?;
    let linked = get(t.addr, "a.test", "/object?c=shared&o=alias&start=5&end=9").await?;
    assert!(linked.bytes == from_client[5..=9], "{linked:?}");

    let mut listed: Vec<String> = get(t.addr, "a.test", "/list?c=shared")
        .await?
        .body
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    listed.sort();
    assert_eq!(listed, ["alias", "dir/from client", "from keel.bin"]);

    let deleted = request(
        t.addr,
        "DELETE",
        "a.test",
        "/object?c=shared&o=from%20keel.bin",
        "",
    )
    .await?;
    assert_eq!(deleted.status, 200);
    assert!(store.get("from keel.bin").await.is_err());
    // Deleting purged its 40 chunks: the client's chunks and three
    // metadata messages (one a deletion marker) are left.
    let mut stream = js.get_stream("OBJ_blob-a-shared").await?;
    let messages = stream.info().await?.state.messages;
    assert_eq!(messages, written.chunks as u64 + 3);
    // Replacing an object purges the chunks of the version it replaces.
    let replaced = request(
        t.addr,
        "PUT",
        "a.test",
        "/object?c=shared&o=dir%2Ffrom%20client",
        "small",
    )
    .await?;
    assert_eq!(replaced.status, 200, "{replaced:?}");
    assert_eq!(stream.info().await?.state.messages, 1 + 3);
    let mut small = Vec::new();
    store
        .get("dir/from client")
        .await?
        .read_to_end(&mut small)
        .await?;
    assert_eq!(small, b"small");
    t.host.shutdown().await;
    Ok(())
}

/// Workloads `a.test` and `b.test` with `blobstore-nats` configured so.
async fn nats_with(config: &[(&str, &str)], grants: &[&str]) -> anyhow::Result<Target> {
    let plugin = builtin_plugin("blobstore-nats", config, grants);
    Target::on_nats("blob", "blobstore_user", Some(plugin)).await
}

/// A container mapped to a raw bucket outside the workload's namespace is
/// refused until the manifest grants that bucket's subjects.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_bucket_needs_its_subjects_granted() -> anyhow::Result<()> {
    let mapped = [("container.assets", "assets")];
    let t = nats_with(&mapped, &[]).await?;
    let refused = request(t.addr, "PUT", "a.test", "/container?c=assets", "").await?;
    assert!(
        refused.status == 500 && refused.body.contains("access denied"),
        "{refused:?}"
    );
    t.host.shutdown().await;

    let granted = [
        "$O.assets.>",
        "$JS.API.STREAM.*.OBJ_assets",
        "$JS.API.DIRECT.GET.OBJ_assets",
        "$JS.API.DIRECT.GET.OBJ_assets.>",
    ];
    let t = nats_with(&mapped, &granted).await?;
    let created = request(t.addr, "PUT", "a.test", "/container?c=assets", "").await?;
    assert_eq!(created.status, 200, "{created:?}");
    let put = request(t.addr, "PUT", "a.test", "/object?c=assets&o=logo", "png").await?;
    assert_eq!(put.status, 200, "{put:?}");
    let store = jetstream(&t).await?.get_object_store("assets").await?;
    let mut logo = Vec::new();
    store.get("logo").await?.read_to_end(&mut logo).await?;
    assert_eq!(logo, b"png");
    // Listing needs a consumer, which was not granted.
    let listed = get(t.addr, "a.test", "/list?c=assets").await?;
    assert!(
        listed.status == 500 && listed.body.contains("CONSUMER.CREATE"),
        "{listed:?}"
    );
    t.host.shutdown().await;
    Ok(())
}

/// `examples/http-blobstore` runs unchanged with `--nats`: its blobstore is
/// then served by `blobstore-nats`, composed, and its objects are in the
/// Object Store.
#[test]
fn the_blobstore_example_runs_unchanged_over_nats() -> anyhow::Result<()> {
    use std::time::Duration;
    let server = NatsServer::start()?;
    let (mut keel, addr, _cache) = run_example("http-blobstore", &["--nats", &server.url()])?;
    let served = keel.wait_for_log("plugin=\"blobstore-nats\"", Duration::from_secs(1))?;
    assert!(served.contains("mode=\"composed\""), "{served}");
    let runtime = tokio::runtime::Runtime::new()?;
    let put = runtime.block_on(request(addr, "PUT", "localhost", "/notes.txt", "on nats"))?;
    assert_eq!(put.status, 200, "{put:?}");
    let got = runtime.block_on(get(addr, "localhost", "/notes.txt"))?;
    assert_eq!((got.status, got.body.as_str()), (200, "on nats"));
    // The example's container `files`, as the documented bucket name.
    let stored = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let store = async_nats::jetstream::new(client)
            .get_object_store("examples-http_2Dblobstore-files")
            .await?;
        let mut bytes = Vec::new();
        store
            .get("notes.txt")
            .await?
            .read_to_end(&mut bytes)
            .await?;
        anyhow::Ok(bytes)
    })?;
    assert_eq!(stored, b"on nats");
    Ok(())
}
