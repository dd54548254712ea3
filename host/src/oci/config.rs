//! The shape of a Wasm component as an OCI artifact (the CNCF Wasm OCI
//! layout, as `wash`, `wkg` and the `oci-wasm` crate write it): an OCI image
//! manifest whose config is `application/vnd.wasm.config.v0+json` and whose
//! one layer is the component, `application/wasm`. wasmCloud's older layer
//! type is read too.

use serde::{Deserialize, Serialize};

/// The manifest's own media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer holding the component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// wasmCloud's layer type before the CNCF layout, accepted on pull.
pub const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// What keel asks a registry for: image manifests (OCI and Docker's), and
/// indexes, only so that one can be refused with a clear message.
pub const ACCEPTED_MANIFESTS: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The config blob of a component artifact. Field names, order and
/// formats are those of `oci-wasm`'s `WasmConfig`, so either side reads
/// what the other writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactConfig {
    /// When the artifact was made (RFC 3339).
    pub created: chrono::DateTime<chrono::Utc>,
    /// Who made it, if said.
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for a component.
    pub os: String,
    /// The digests of the manifest's layers, in order.
    pub layer_digests: Vec<String>,
    /// The component's imports and exports.
    pub component: Option<ComponentWorld>,
}

/// A component's imports and exports, as the artifact config lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentWorld {
    /// Every export's name (`wasi:http/incoming-handler@0.2.0`).
    pub exports: Vec<String>,
    /// Every import's name.
    pub imports: Vec<String>,
    /// The world it targets, when known.
    pub target: Option<String>,
}

impl ArtifactConfig {
    /// The config for `component` (already checked to be a component),
    /// whose layer has digest `layer_digest`.
    pub fn for_component(component: &[u8], layer_digest: &str) -> anyhow::Result<ArtifactConfig> {
        let info = keel_compose::ComponentInfo::read(component)?;
        let names = |items: &[keel_compose::Item]| items.iter().map(|i| i.name.clone()).collect();
        Ok(ArtifactConfig {
            created: chrono::Utc::now(),
            author: None,
            architecture: "wasm".to_string(),
            os: "wasip2".to_string(),
            layer_digests: vec![layer_digest.to_string()],
            component: Some(ComponentWorld {
                exports: names(&info.exports),
                imports: names(&info.imports),
                target: None,
            }),
        })
    }
}

/// The parts of a manifest keel reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    /// Present in an index: the manifests it lists.
    manifests: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: i64,
}

/// The component layer a manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmLayer {
    /// `sha256:…` of the component.
    pub digest: String,
    /// Its size as the manifest states it.
    pub size: u64,
    /// `application/wasm` or the legacy wasmCloud type.
    pub media_type: String,
}

/// Finds the component in manifest `bytes`, or says why this is not a Wasm
/// artifact (a container image, an index, several layers).
pub fn wasm_layer(bytes: &[u8]) -> Result<WasmLayer, String> {
    let manifest: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON for an image manifest: {e}"))?;
    if manifest.manifests.is_some() {
        return Err(format!(
            "it is an image index ({}), not a Wasm component artifact",
            manifest.media_type.as_deref().unwrap_or("no media type")
        ));
    }
    let types: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    let config_type = manifest
        .config
        .as_ref()
        .map_or("none", |c| c.media_type.as_str());
    let [layer] = manifest.layers.as_slice() else {
        return Err(format!(
            "a Wasm component artifact has exactly one layer; this one has {} ({}; config {config_type})",
            types.len(),
            types.join(", ")
        ));
    };
    if layer.media_type != LAYER_MEDIA_TYPE && layer.media_type != LEGACY_LAYER_MEDIA_TYPE {
        return Err(format!(
            "its layer is `{}` (config `{config_type}`): a container image or another artifact, \
             not a Wasm component (`{LAYER_MEDIA_TYPE}`)",
            layer.media_type
        ));
    }
    crate::spec::image_ref::check_digest(&layer.digest)?;
    Ok(WasmLayer {
        digest: layer.digest.clone(),
        size: u64::try_from(layer.size).map_err(|_| "the layer's size is negative".to_string())?,
        media_type: layer.media_type.clone(),
    })
}

/// `sha256:` and the hex SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn manifest(layers: &[&str]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|t| serde_json::json!({"mediaType": t, "digest": DIGEST, "size": 8}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": DIGEST, "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn one_wasm_layer_of_either_type() {
        assert_eq!(wasm_layer(&manifest(&[LAYER_MEDIA_TYPE])).unwrap().size, 8);
        assert_eq!(
            wasm_layer(&manifest(&[LEGACY_LAYER_MEDIA_TYPE]))
                .unwrap()
                .media_type,
            LEGACY_LAYER_MEDIA_TYPE
        );
    }

    #[test]
    fn container_images_and_indexes_are_refused() {
        let image = wasm_layer(&manifest(&["application/vnd.oci.image.layer.v1.tar+gzip"]));
        assert!(image.unwrap_err().contains("not a Wasm component"));
        let two = wasm_layer(&manifest(&[LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPE]));
        assert!(two.unwrap_err().contains("exactly one layer"));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(wasm_layer(index).unwrap_err().contains("image index"));
        assert!(wasm_layer(b"not json").is_err());
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
