//! Baking configuration into a plugin component, the way WASI-Virt bakes
//! environments: the plugin reserves a marked region in its data (see
//! `keel_guest::baked`), and baking overwrites that region in place. Nothing
//! is re-encoded, so the component stays valid, and the plugin reads its
//! values from its own memory on any runtime.
//!
//! Region layout (little-endian): the 20-byte [`MARKER`], a `u32` capacity,
//! a `u32` payload length, then `capacity` bytes. Payload: a `u32` count of
//! pairs, then for each pair a `u32` length and the key's bytes, a `u32`
//! length and the value's bytes.

use anyhow::{Result, bail, ensure};

/// A baked key meaning "add the component's environment as the last layer"
/// (value `true`); understood by keel's config plugin. It starts with NUL, so
/// no manifest key collides with it.
pub const ENV_LAYER_KEY: &str = "\0env";

/// The bytes that open a baked-config region.
pub const MARKER: &[u8; 20] = b"KEEL-BAKED-CONFIG-V1";

/// Where a region lies in a component.
fn find_region(bytes: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut found = bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| w == MARKER)
        .map(|(i, _)| i);
    let Some(start) = found.next() else {
        return Ok(None);
    };
    ensure!(
        found.next().is_none(),
        "the component holds more than one baked-config region"
    );
    let header = start + MARKER.len();
    let Some(capacity) = bytes.get(header..header + 4) else {
        bail!("the baked-config region is truncated");
    };
    let capacity =
        u32::from_le_bytes([capacity[0], capacity[1], capacity[2], capacity[3]]) as usize;
    ensure!(
        header + 8 + capacity <= bytes.len(),
        "the baked-config region runs past the end of the component"
    );
    Ok(Some((header, capacity)))
}

/// Whether `component` has a region to bake configuration into.
pub fn accepts_config(component: &[u8]) -> bool {
    matches!(find_region(component), Ok(Some(_)))
}

/// Encodes `pairs` in the payload format.
pub fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

/// A copy of `component` with `pairs` baked into its region.
pub fn bake(component: &[u8], pairs: &[(String, String)]) -> Result<Vec<u8>> {
    let Some((header, capacity)) = find_region(component)? else {
        bail!("the component has no baked-config region (it does not take configuration)");
    };
    let payload = encode(pairs);
    ensure!(
        payload.len() <= capacity,
        "the configuration takes {} bytes, more than the {capacity} the plugin reserves",
        payload.len()
    );
    let mut out = component.to_vec();
    out[header + 4..header + 8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out[header + 8..header + 8 + payload.len()].copy_from_slice(&payload);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(capacity: u32) -> Vec<u8> {
        let mut bytes = b"prefix".to_vec();
        bytes.extend_from_slice(MARKER);
        bytes.extend_from_slice(&capacity.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0xa5, capacity as usize));
        bytes.extend_from_slice(b"suffix");
        bytes
    }

    #[test]
    fn bakes_in_place_and_refuses_what_does_not_fit() {
        let original = region(64);
        let pairs = vec![("greeting".to_string(), "hej".to_string())];
        let baked = bake(&original, &pairs).unwrap();
        assert_eq!(baked.len(), original.len());
        assert!(baked.ends_with(b"suffix"));
        let payload = encode(&pairs);
        let at = 6 + MARKER.len();
        assert_eq!(
            &baked[at + 4..at + 8],
            &(payload.len() as u32).to_le_bytes()
        );
        assert_eq!(&baked[at + 8..at + 8 + payload.len()], payload.as_slice());
        let too_much = vec![("k".to_string(), "v".repeat(100))];
        assert!(
            bake(&original, &too_much)
                .unwrap_err()
                .to_string()
                .contains("more than the 64")
        );
        assert!(bake(b"no region here", &pairs).is_err());
        let mut twice = original.clone();
        twice.extend_from_slice(&original);
        assert!(
            bake(&twice, &pairs)
                .unwrap_err()
                .to_string()
                .contains("more than one")
        );
    }
}
