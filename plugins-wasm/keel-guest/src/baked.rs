//! The plugin side of baked configuration (`keel_compose::bake`): a
//! reserved, marked region in the plugin's data that composition overwrites
//! with key/value pairs.
//!
//! ```ignore
//! static CONFIG: keel_guest::baked::Region<16384> = keel_guest::baked::Region::new();
//! let pairs = CONFIG.pairs();
//! ```

/// Must match `keel_compose::bake::MARKER`.
const MARKER: [u8; 20] = *b"KEEL-BAKED-CONFIG-V1";

/// A region of `N` bytes that composition can fill. Its filler is non-zero
/// so that it lives in the data section (where baking can find it), not in
/// zero-initialised memory.
#[repr(C)]
pub struct Region<const N: usize> {
    marker: [u8; 20],
    capacity: u32,
    len: u32,
    data: [u8; N],
}

impl<const N: usize> Region<N> {
    /// An empty region (no pairs until baked).
    pub const fn new() -> Region<N> {
        Region {
            marker: MARKER,
            capacity: N as u32,
            len: 0,
            data: [0xa5; N],
        }
    }

    /// The baked pairs, in baking order. Reads are volatile: the compiler
    /// must not assume the region still holds what it was compiled with.
    pub fn pairs(&'static self) -> Vec<(String, String)> {
        // SAFETY: plain reads of a `'static` region this struct owns.
        let len = unsafe { core::ptr::read_volatile(&self.len) } as usize;
        let bytes: Vec<u8> = (0..len.min(N))
            .map(|i| unsafe { core::ptr::read_volatile(&self.data[i]) })
            .collect();
        decode(&bytes)
    }
}

/// The baked key meaning "the component's environment is a last config
/// layer". Must match `keel_compose::bake::ENV_LAYER_KEY`.
pub const ENV_LAYER: &str = "\0env";

impl<const N: usize> Region<N> {
    /// The configuration a `wasi:config` plugin serves from this region:
    /// the baked pairs (later ones winning), then, if composition asked for
    /// it, the component's environment variables.
    pub fn config_layers(&'static self) -> std::collections::BTreeMap<String, String> {
        let mut values = std::collections::BTreeMap::new();
        let mut with_env = false;
        for (key, value) in self.pairs() {
            if key == ENV_LAYER {
                with_env = value == "true";
            } else {
                values.insert(key, value);
            }
        }
        if with_env {
            values.extend(std::env::vars());
        }
        values
    }
}

impl<const N: usize> Default for Region<N> {
    fn default() -> Self {
        Region::new()
    }
}

fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    let mut at = 0;
    let next = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..*at + n)?;
        *at += n;
        Some(slice)
    };
    let read_u32 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let Some(count) = next(&mut at, 4).map(read_u32) else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let Some(key_len) = next(&mut at, 4).map(read_u32) else {
            break;
        };
        let Some(key) = next(&mut at, key_len).map(|k| String::from_utf8_lossy(k).into_owned())
        else {
            break;
        };
        let Some(value_len) = next(&mut at, 4).map(read_u32) else {
            break;
        };
        let Some(value) = next(&mut at, value_len).map(|v| String::from_utf8_lossy(v).into_owned())
        else {
            break;
        };
        pairs.push((key, value));
    }
    pairs
}
