//! Subject grants through `SubjectGrants::parse` and `allows`, on text laid
//! out like the seeds (`fuzz/seeds/subjects/`), so that seeds read like the
//! unit tests and mutations stay close to real patterns:
//!
//! ```text
//! namespace
//! another namespace
//! grant patterns, one a line
//! --
//! more grant patterns
//! --
//! subjects, one a line
//! ```
//!
//! Beyond "never panics", it checks what the grants promise:
//! - a grant covers its own text (with `{namespace}` filled in);
//! - adding grants never takes a subject away;
//! - a namespace always reaches its own inboxes, never another's;
//! - `KV_{namespace}-*` never reaches another namespace's buckets.

#![no_main]

use keel::testing::policy::grants::SubjectGrants;
use keel::testing::policy::inbox::PLUGIN_INBOX_ROOT;
use libfuzzer_sys::fuzz_target;

/// Lines past this many are ignored: each input stays fast.
const MAX_LINES: usize = 64;

fuzz_target!(|text: &str| {
    let mut lines = text.lines().take(MAX_LINES);
    let namespace = lines.next().unwrap_or_default();
    let other = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    let mut sections = rest.split(|line| *line == "--");
    let patterns = sections.next().unwrap_or_default();
    let more = sections.next().unwrap_or_default();
    let subjects: Vec<&str> = sections.flatten().copied().collect();
    let ns_token = keel_names::token(namespace);
    let other_token = keel_names::token(other);

    let grants = SubjectGrants::parse(patterns);
    let extra = SubjectGrants::parse(more);
    for subject in &subjects {
        if let Ok(g) = &grants {
            let _ = g.allows(other, subject);
        }
        if let Ok(e) = &extra {
            let _ = e.allows(namespace, subject);
        }
    }

    if let Ok(grants) = &grants {
        for pattern in patterns {
            let own = pattern.replace("{namespace}", &ns_token);
            assert!(
                grants.allows(namespace, &own),
                "grant {pattern:?} does not cover its own text {own:?} in namespace {namespace:?}"
            );
        }
        if let Ok(extra) = &extra {
            let both = grants.union(extra);
            for subject in &subjects {
                if grants.allows(namespace, subject) || extra.allows(namespace, subject) {
                    assert!(
                        both.allows(namespace, subject),
                        "the union lost {subject:?}"
                    );
                }
            }
        }
    }

    let none = SubjectGrants::default();
    let kv = SubjectGrants::parse(&["KV_{namespace}-*"]).expect("a valid grant");
    for id in &subjects {
        // Inboxes: a namespace's own, never another's (unless the two
        // names are the same, as tokens are only for equal names).
        if !id.is_empty() && !id.contains(['.', '*', '>']) {
            let inbox = format!("{PLUGIN_INBOX_ROOT}.{ns_token}.{id}");
            assert!(
                none.allows(namespace, &inbox),
                "{inbox:?} refused to its namespace"
            );
            if other_token != ns_token {
                assert!(!none.allows(other, &inbox), "{other:?} reached {inbox:?}");
            }
        }
        // Tenant buckets: one namespace's grant never reaches another's.
        if !id.contains('.') {
            let bucket = format!("KV_{other_token}-{id}");
            if kv.allows(namespace, &bucket) {
                assert_eq!(
                    other_token, ns_token,
                    "namespace {namespace:?} reached {bucket:?}"
                );
            }
        }
    }
});
