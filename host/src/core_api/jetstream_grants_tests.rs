//! Bodies as keel's NATS-backed plugins send them (`plugins-wasm/keyvalue-nats`,
//! `blobstore-nats`, `keel-jetstream`), and the same requests bent to reach
//! what the grants do not cover.

use super::*;
use serde_json::json;

/// The grants `keyvalue-nats` and `blobstore-nats` get by default.
fn builtin_grants() -> SubjectGrants {
    SubjectGrants::parse(&[
        "$KV.{namespace}-*.>",
        "$JS.API.STREAM.INFO.KV_{namespace}-*",
        "$JS.API.STREAM.CREATE.KV_{namespace}-*",
        "$JS.API.DIRECT.GET.KV_{namespace}-*.>",
        "$JS.API.CONSUMER.CREATE.KV_{namespace}-*.>",
        "$O.{namespace}-*.>",
        "$JS.API.STREAM.*.OBJ_{namespace}-*",
    ])
    .unwrap()
}

/// A third-party plugin granted every stream and consumer endpoint, but
/// only its own subjects.
fn wide_api_grants() -> SubjectGrants {
    SubjectGrants::parse(&[
        "$JS.API.STREAM.*.*",
        "$JS.API.CONSUMER.CREATE.*",
        "$JS.API.CONSUMER.CREATE.*.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
        "app.{namespace}.>",
    ])
    .unwrap()
}

fn check(
    grants: &SubjectGrants,
    subject: &str,
    body: serde_json::Value,
) -> Result<ApiCall, Refused> {
    let body = serde_json::to_vec(&body).unwrap();
    Checker {
        grants,
        namespace: "shop",
    }
    .check(subject, &body)
}

fn not_granted(result: Result<ApiCall, Refused>) -> String {
    match result {
        Err(Refused::NotGranted(why)) => why,
        other => panic!("expected not-granted, got {other:?}"),
    }
}

fn invalid(result: Result<ApiCall, Refused>) -> String {
    match result {
        Err(Refused::Invalid(why)) => why,
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// `keyvalue-nats`'s `bucket_config`.
fn kv_bucket(name: &str) -> serde_json::Value {
    json!({
        "name": format!("KV_{name}"), "subjects": [format!("$KV.{name}.>")],
        "retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1,
        "max_age": 0, "max_msgs_per_subject": 1, "max_msg_size": -1, "discard": "new",
        "storage": "file", "num_replicas": 1, "duplicate_window": 120_000_000_000u64,
        "allow_rollup_hdrs": true, "deny_delete": true, "deny_purge": false,
        "allow_direct": true,
    })
}

/// `blobstore-nats`'s `stream_config`.
fn object_bucket(name: &str) -> serde_json::Value {
    json!({
        "name": format!("OBJ_{name}"),
        "subjects": [format!("$O.{name}.C.>"), format!("$O.{name}.M.>")],
        "retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1,
        "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "new",
        "storage": "file", "num_replicas": 1, "allow_rollup_hdrs": true, "allow_direct": true,
    })
}

#[test]
fn the_builtin_plugins_requests_pass_and_stream_creates_are_named() {
    let g = builtin_grants();
    assert_eq!(
        check(
            &g,
            "$JS.API.STREAM.CREATE.KV_shop-web-default",
            kv_bucket("shop-web-default")
        ),
        Ok(ApiCall::CreateStream("KV_shop-web-default".into()))
    );
    assert_eq!(
        check(
            &g,
            "$JS.API.STREAM.CREATE.OBJ_shop-web-files",
            object_bucket("shop-web-files")
        ),
        Ok(ApiCall::CreateStream("OBJ_shop-web-files".into()))
    );
    assert_eq!(
        check(&g, "$JS.API.STREAM.DELETE.OBJ_shop-web-files", json!(null)),
        Ok(ApiCall::DeleteStream("OBJ_shop-web-files".into()))
    );
    // `keel-jetstream`'s ephemeral pull consumer listing keys.
    let consumer = json!({"stream_name": "KV_shop-web-default", "config": {
        "deliver_policy": "last_per_subject", "headers_only": true, "name": "Abc123",
        "filter_subject": "$KV.shop-web-default.>", "ack_policy": "none",
        "replay_policy": "instant", "inactive_threshold": 30_000_000_000u64,
        "num_replicas": 1, "mem_storage": true}});
    assert_eq!(
        check(
            &g,
            "$JS.API.CONSUMER.CREATE.KV_shop-web-default.Abc123.$KV.shop-web-default.>",
            consumer
        ),
        Ok(ApiCall::Other)
    );
    // Bodies of other endpoints, and subjects outside the API, are not read.
    for subject in [
        "$JS.API.DIRECT.GET.KV_shop-web-default",
        "$JS.API.STREAM.INFO.KV_shop-web-default",
        "$KV.shop-web-default.key",
    ] {
        let body = Checker {
            grants: &g,
            namespace: "shop",
        }
        .check(subject, b"not json");
        assert_eq!(body, Ok(ApiCall::Other), "{subject}");
    }
}

#[test]
fn a_stream_capturing_subjects_outside_the_grants_is_refused() {
    let g = builtin_grants();
    let subject = "$JS.API.STREAM.CREATE.KV_shop-web-default";
    let mut everything = kv_bucket("shop-web-default");
    everything["subjects"] = json!([">"]);
    let why = not_granted(check(&g, subject, everything));
    assert!(
        why.contains("field `subjects[0]`") && why.contains("`>`"),
        "{why}"
    );

    let mut other_tenant = kv_bucket("shop-web-default");
    other_tenant["subjects"] = json!(["$KV.shop-web-default.>", "$KV.bank-web-default.>"]);
    let why = not_granted(check(&g, subject, other_tenant));
    assert!(
        why.contains("`subjects[1]`") && why.contains("$KV.bank-web-default.>"),
        "{why}"
    );

    let mut wider = kv_bucket("shop-web-default");
    wider["subjects"] = json!(["$KV.*.>"]);
    not_granted(check(&g, subject, wider));

    // Without subjects, the server captures the stream's name.
    let g = wide_api_grants();
    let why = not_granted(check(
        &g,
        "$JS.API.STREAM.CREATE.orders",
        json!({"name": "orders"}),
    ));
    assert!(
        why.contains("field `name`") && why.contains("`orders`"),
        "{why}"
    );
    assert_eq!(
        check(
            &g,
            "$JS.API.STREAM.CREATE.orders",
            json!({"name": "orders", "subjects": ["app.shop.orders.>"]})
        ),
        Ok(ApiCall::CreateStream("orders".into()))
    );
    // Updates are checked alike.
    let why = not_granted(check(
        &g,
        "$JS.API.STREAM.UPDATE.orders",
        json!({"name": "orders", "subjects": ["app.shop.orders.>", "app.bank.>"]}),
    ));
    assert!(why.contains("app.bank.>"), "{why}");
    // So is the `{namespace}` of the caller: `shop` does not reach `bank`'s.
    not_granted(check(
        &g,
        "$JS.API.STREAM.CREATE.x",
        json!({"name": "x", "subjects": ["app.bank.orders"]}),
    ));
}

#[test]
fn republish_mirror_and_sources_must_stay_within_the_grants() {
    let g = wide_api_grants();
    let subject = "$JS.API.STREAM.CREATE.copy";
    let mine = json!(["app.shop.copy.>"]);
    let why = not_granted(check(
        &g,
        subject,
        json!({"name": "copy", "subjects": mine, "republish": {"src": ">", "dest": "audit.>"}}),
    ));
    assert!(
        why.contains("`republish.dest`") && why.contains("audit.>"),
        "{why}"
    );
    assert!(
        check(
            &g,
            subject,
            json!({"name": "copy", "subjects": mine, "republish": {"src": ">", "dest": "app.shop.out.>"}})
        )
        .is_ok()
    );
    invalid(check(
        &g,
        subject,
        json!({"name": "copy", "subjects": mine, "republish": {"src": ">"}}),
    ));

    // Streams are granted by name through `STREAM.INFO`: here `orders_*`.
    let g =
        SubjectGrants::parse(&["$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.INFO.orders_*"]).unwrap();
    let why = not_granted(check(
        &g,
        subject,
        json!({"name": "copy", "mirror": {"name": "KV_bank-web-default"}}),
    ));
    assert!(
        why.contains("`mirror.name`") && why.contains("KV_bank-web-default"),
        "{why}"
    );
    assert_eq!(
        check(
            &g,
            subject,
            json!({"name": "copy", "mirror": {"name": "orders_eu"}})
        ),
        Ok(ApiCall::CreateStream("copy".into()))
    );
    let why = not_granted(check(
        &g,
        subject,
        json!({"name": "copy", "sources": [{"name": "orders_eu"}, {"name": "secrets", "filter_subject": ">"}]}),
    ));
    assert!(why.contains("`sources[1].name`"), "{why}");
    let why = not_granted(check(
        &g,
        subject,
        json!({"name": "copy", "sources": [{"name": "orders_eu", "external": {"api": "$JS.hub.API", "deliver": ""}}]}),
    ));
    assert!(why.contains("`sources[0].external`"), "{why}");
    invalid(check(
        &g,
        subject,
        json!({"name": "copy", "mirror": {"name": "orders_eu.>"}}),
    ));
}

#[test]
fn consumers_and_snapshots_deliver_only_to_granted_subjects() {
    let g = wide_api_grants();
    let push = |deliver: &str| json!({"stream_name": "orders", "config": {"durable_name": "d", "deliver_subject": deliver, "ack_policy": "explicit"}});
    for subject in [
        "$JS.API.CONSUMER.CREATE.orders",
        "$JS.API.CONSUMER.CREATE.orders.d.app.shop.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.orders.d",
    ] {
        let why = not_granted(check(&g, subject, push("bank.inbox")));
        assert!(
            why.contains("`config.deliver_subject`") && why.contains("bank.inbox"),
            "{why}"
        );
        assert_eq!(
            check(&g, subject, push("app.shop.inbox")),
            Ok(ApiCall::Other),
            "{subject}"
        );
        invalid(check(&g, subject, push("app.shop.*")));
    }
    // A pull consumer has no deliver subject.
    assert!(
        check(
            &g,
            "$JS.API.CONSUMER.CREATE.orders",
            json!({"stream_name": "orders", "config": {"deliver_subject": ""}})
        )
        .is_ok()
    );
    let why = invalid(check(
        &g,
        "$JS.API.CONSUMER.CREATE.orders",
        json!({"stream_name": "secrets", "config": {}}),
    ));
    assert!(why.contains("stream_name"), "{why}");
    let why = not_granted(check(
        &g,
        "$JS.API.STREAM.SNAPSHOT.orders",
        json!({"deliver_subject": "bank.x", "chunk_size": 65536}),
    ));
    assert!(why.contains("`deliver_subject`"), "{why}");
    not_granted(check(
        &g,
        "$JS.API.STREAM.TEMPLATE.CREATE.t",
        json!({"name": "t"}),
    ));
}

#[test]
fn field_names_are_matched_as_the_server_matches_them() {
    let g = wide_api_grants();
    let subject = "$JS.API.STREAM.CREATE.x";
    // Go's JSON decoder reads `SUBJECTS` and `ſubjects` as `subjects`.
    for key in ["SUBJECTS", "Subjects", "\u{17F}ubjects"] {
        let mut body = serde_json::Map::new();
        body.insert("name".into(), json!("x"));
        body.insert(key.into(), json!([">"]));
        not_granted(check(&g, subject, serde_json::Value::Object(body)));
    }
    let body = json!({"name": "x", "subjects": ["app.shop.x"], "Subjects": [">"]});
    let why = invalid(check(&g, subject, body));
    assert!(why.contains("twice"), "{why}");
    let why = not_granted(check(
        &g,
        "$JS.API.CONSUMER.CREATE.orders",
        json!({"stream_name": "orders", "config": {"DELIVER_SUBJECT": "bank.x"}}),
    ));
    assert!(why.contains("bank.x"), "{why}");
}

#[test]
fn bodies_that_cannot_be_read_are_refused() {
    let g = wide_api_grants();
    let checker = Checker {
        grants: &g,
        namespace: "shop",
    };
    for (subject, body) in [
        ("$JS.API.STREAM.CREATE.x", &b""[..]),
        ("$JS.API.STREAM.CREATE.x", b"{\"name\":"),
        ("$JS.API.STREAM.UPDATE.x", b"[]"),
        ("$JS.API.CONSUMER.CREATE.x", b"\"text\""),
        ("$JS.API.STREAM.RESTORE.x", b"{}"),
    ] {
        assert!(
            matches!(checker.check(subject, body), Err(Refused::Invalid(_))),
            "{subject} {body:?}"
        );
    }
    invalid(check(
        &g,
        "$JS.API.STREAM.CREATE.x",
        json!({"name": "x", "subjects": "app.shop.x"}),
    ));
    invalid(check(
        &g,
        "$JS.API.STREAM.CREATE.x",
        json!({"name": "x", "subjects": [42]}),
    ));
    invalid(check(
        &g,
        "$JS.API.STREAM.CREATE.x",
        json!({"name": "y", "subjects": ["app.shop.x"]}),
    ));
}

#[test]
fn domains_and_restores_are_checked_like_the_plain_api() {
    let g = SubjectGrants::parse(&[
        "$JS.*.API.STREAM.*.*",
        "$JS.API.STREAM.RESTORE.*",
        "app.{namespace}.>",
    ])
    .unwrap();
    not_granted(check(
        &g,
        "$JS.hub.API.STREAM.CREATE.x",
        json!({"name": "x", "subjects": [">"]}),
    ));
    assert_eq!(
        check(
            &g,
            "$JS.hub.API.STREAM.CREATE.x",
            json!({"name": "x", "subjects": ["app.shop.x"]})
        ),
        Ok(ApiCall::CreateStream("x".into()))
    );
    let why = not_granted(check(
        &g,
        "$JS.API.STREAM.RESTORE.x",
        json!({"config": {"name": "x", "subjects": ["secrets.>"]}, "state": {}}),
    ));
    assert!(why.contains("`config.subjects[0]`"), "{why}");
    assert_eq!(
        check(
            &g,
            "$JS.API.STREAM.RESTORE.x",
            json!({"config": {"name": "x", "subjects": ["app.shop.x"]}, "state": {}})
        ),
        Ok(ApiCall::CreateStream("x".into()))
    );
}
