//! Pulled artifacts on disk, addressed by content, beside the compiled
//! component cache (`<cache>/oci/` by default):
//!
//! ```text
//! blobs/sha256/<hex>   manifests and components, named by their SHA-256
//! tags/<hex>           for each `registry/repository:tag` pulled (named by
//!                      the SHA-256 of that name): the manifest digest it had
//! ```
//!
//! Every blob is checked against its name when read: a damaged one is
//! removed and counts as missing. Files are written to a temporary name and
//! renamed, so a crash never leaves a torn blob under a valid name, and
//! several keel processes may share one store.

use super::config::{hex, sha256_digest, wasm_layer};
use crate::spec::ImageRef;
use anyhow::{Context, Result};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A component found in the store or just pulled.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest's digest: what a reference pins.
    pub manifest_digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
    /// The component.
    pub bytes: Arc<[u8]>,
}

/// The content-addressed store in one folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the store in `dir`, creating it private to this user; a
    /// folder another user owns or may write to is refused.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
        let dir = dir.into();
        crate::cache::prepare_dir(&dir)?;
        for sub in ["blobs/sha256", "tags"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        Ok(Store { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact `reference` names, if the store has all of it: by its
    /// digest when it has one, else by the digest its tag had when pulled.
    pub fn lookup(&self, reference: &ImageRef) -> Result<Option<Artifact>> {
        let manifest_digest = match reference.digest() {
            Some(digest) => digest.to_string(),
            None => match self.tag_digest(reference)? {
                Some(digest) => digest,
                None => return Ok(None),
            },
        };
        let Some(manifest) = self.read_blob(&manifest_digest)? else {
            return Ok(None);
        };
        let layer = wasm_layer(&manifest).map_err(|e| {
            anyhow::anyhow!("stored manifest {manifest_digest} of {reference}: {e}")
        })?;
        let Some(bytes) = self.read_blob(&layer.digest)? else {
            return Ok(None);
        };
        Ok(Some(Artifact {
            manifest_digest,
            layer_digest: layer.digest,
            bytes: bytes.into(),
        }))
    }

    /// Keeps a pulled artifact: its manifest, its component, and which
    /// manifest the reference's tag named.
    pub fn put(&self, reference: &ImageRef, manifest: &[u8], artifact: &Artifact) -> Result<()> {
        self.write_blob(&artifact.manifest_digest, manifest)?;
        self.write_blob(&artifact.layer_digest, &artifact.bytes)?;
        if let Some(name) = reference.tag_name() {
            self.write_atomic(&self.tag_path(&name), artifact.manifest_digest.as_bytes())?;
        }
        Ok(())
    }

    /// The manifest digest the reference's tag had when last pulled.
    fn tag_digest(&self, reference: &ImageRef) -> Result<Option<String>> {
        let Some(name) = reference.tag_name() else {
            return Ok(None);
        };
        let path = self.tag_path(&name);
        match std::fs::read_to_string(&path) {
            Ok(digest) => {
                let digest = digest.trim().to_string();
                if crate::spec::image_ref::check_digest(&digest).is_err() {
                    tracing::warn!(path = %path.display(), "damaged tag record in the OCI store: ignored");
                    return Ok(None);
                }
                Ok(Some(digest))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn tag_path(&self, name: &str) -> PathBuf {
        self.dir
            .join("tags")
            .join(hex(&sha2::Sha256::digest(name.as_bytes())))
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        crate::spec::image_ref::check_digest(digest).map_err(anyhow::Error::msg)?;
        let hex = digest.trim_start_matches("sha256:");
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    /// The blob named `digest`, checked against its name; a damaged one is
    /// removed (and reported) and counts as missing.
    fn read_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if sha256_digest(&bytes) != digest {
            tracing::warn!(
                path = %path.display(),
                "a blob in the OCI store does not match its digest (damaged): removed"
            );
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest)?;
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        use std::io::Write as _;
        let dir = path.parent().unwrap_or(&self.dir);
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing to {}", dir.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("writing to {}", dir.display()))?;
        file.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::config::{LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

    fn manifest_for(layer: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": sha256_digest(layer), "size": layer.len()}],
        }))
        .unwrap()
    }

    fn put(store: &Store, reference: &ImageRef, layer: &[u8]) -> Artifact {
        let manifest = manifest_for(layer);
        let artifact = Artifact {
            manifest_digest: sha256_digest(&manifest),
            layer_digest: sha256_digest(layer),
            bytes: layer.into(),
        };
        store.put(reference, &manifest, &artifact).unwrap();
        artifact
    }

    #[test]
    fn found_by_tag_and_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("oci")).unwrap();
        let tagged = ImageRef::parse("oci://r.example/app:1").unwrap();
        assert!(store.lookup(&tagged).unwrap().is_none());
        let first = put(&store, &tagged, b"first");
        let found = store.lookup(&tagged).unwrap().unwrap();
        assert_eq!(&*found.bytes, b"first");
        // The tag moves; the old manifest stays reachable by its digest.
        put(&store, &tagged, b"second");
        assert_eq!(&*store.lookup(&tagged).unwrap().unwrap().bytes, b"second");
        let pinned = tagged.pinned(&first.manifest_digest);
        assert_eq!(&*store.lookup(&pinned).unwrap().unwrap().bytes, b"first");
    }

    #[test]
    fn a_damaged_blob_counts_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tagged = ImageRef::parse("oci://r.example/app:1").unwrap();
        let artifact = put(&store, &tagged, b"component");
        let blob = store.blob_path(&artifact.layer_digest).unwrap();
        std::fs::write(&blob, b"tampered").unwrap();
        assert!(store.lookup(&tagged).unwrap().is_none());
        assert!(!blob.exists(), "the damaged blob is removed");
    }
}
