//! Baking configuration into a component: arbitrary bytes as the component
//! (seeded with real plugins that hold a baked-config region), key/value
//! pairs read from the front of the same bytes. Never panics; when baking
//! succeeds, exactly the region's length and payload changed.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use keel_compose::bake::{MARKER, accepts_config, bake, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pairs =
        Vec::<(String, String)>::arbitrary(&mut Unstructured::new(data)).unwrap_or_default();
    let accepts = accepts_config(data);
    let Ok(baked) = bake(data, &pairs) else {
        return;
    };
    assert!(
        accepts,
        "baked into a component that takes no configuration"
    );
    assert_eq!(baked.len(), data.len());
    let start = data
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("a region was found, so its marker is there");
    let header = start + MARKER.len();
    let payload = encode(&pairs);
    let at = header + 8;
    assert_eq!(
        &baked[..header + 4],
        &data[..header + 4],
        "bytes before the length changed"
    );
    assert_eq!(
        &baked[header + 4..at],
        &(payload.len() as u32).to_le_bytes()
    );
    assert_eq!(&baked[at..at + payload.len()], payload.as_slice());
    assert_eq!(
        &baked[at + payload.len()..],
        &data[at + payload.len()..],
        "bytes after the payload changed"
    );
});
