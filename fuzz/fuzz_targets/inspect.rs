//! Reading a component's imports and exports, and telling a component
//! from a module, on arbitrary bytes (seeded with the built guests). Never
//! panics, and whatever reads as a component has a component's preamble.

#![no_main]

use keel_compose::{ComponentInfo, WasmKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kind = WasmKind::detect(data);
    assert_eq!(
        WasmKind::expect_component(data).is_ok(),
        kind == Ok(WasmKind::Component)
    );
    if let Ok(info) = ComponentInfo::read(data) {
        assert_eq!(
            kind,
            Ok(WasmKind::Component),
            "read a non-component: {info:?}"
        );
        for item in info.imports.iter().chain(&info.exports) {
            assert!(!item.name.is_empty());
        }
    }
});
