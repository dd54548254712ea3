//! `keel_names`: any text survives `token` then `name` unchanged, tokens
//! hold only `[A-Za-z0-9_]`, `name` never panics on arbitrary input, and
//! `scoped` names split back into their parts.

#![no_main]

use libfuzzer_sys::fuzz_target;

fn round_trip(text: &str) {
    let token = keel_names::token(text);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "{token:?}"
    );
    assert_eq!(keel_names::name(&token).as_deref(), Some(text));
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary input to `name`: valid UTF-8 or not (made valid lossily).
    let text = String::from_utf8_lossy(data);
    if let Some(read) = keel_names::name(&text) {
        // Whatever it reads back is a name whose own token reads back to it.
        round_trip(&read);
    }
    round_trip(&text);

    // Three names joined by `scoped` split apart at `-` into the same three.
    let mut parts = text.splitn(3, '\n');
    if let (Some(namespace), Some(workload), Some(identifier)) =
        (parts.next(), parts.next(), parts.next())
    {
        let scoped = keel_names::scoped(namespace, workload, identifier);
        let back: Vec<Option<String>> = scoped.split('-').map(keel_names::name).collect();
        assert_eq!(
            back,
            [
                Some(namespace.to_string()),
                Some(workload.to_string()),
                Some(identifier.to_string())
            ],
            "{scoped:?}"
        );
    }
});
