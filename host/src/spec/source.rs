//! Where a component's bytes come from: a file (what a manifest names),
//! bytes already in memory (what a control plane hands an embedder), or an
//! OCI reference the host pulls before it compiles.

use crate::spec::ImageRef;
use anyhow::{Context, Result};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bytes of a workload's component or of a plugin.
#[derive(Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A `.wasm` file, read when the workload starts (or the plugin is
    /// added).
    Path(PathBuf),
    /// The component itself. Cheap to clone: the bytes are shared.
    Bytes(Arc<[u8]>),
    /// A component in an OCI registry (`oci://…`). The host pulls it
    /// (under its pull policy) before anything is compiled.
    Oci(OciComponent),
}

/// A component named by an OCI reference, and once pulled, its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct OciComponent {
    /// The reference as written.
    pub reference: ImageRef,
    /// The manifest digest it resolved to and the component, once the host
    /// has pulled it.
    pub pulled: Option<(String, Arc<[u8]>)>,
}

impl From<&str> for ComponentSource {
    /// A file path (not an `oci://` reference: [`ComponentSource::parse`]
    /// tells the two apart).
    fn from(path: &str) -> ComponentSource {
        ComponentSource::Path(PathBuf::from(path))
    }
}

impl ComponentSource {
    /// What a command line names: an `oci://` reference, or else a file.
    pub fn parse(text: &str) -> Result<ComponentSource, super::image_ref::InvalidReference> {
        if ImageRef::is_reference(text) {
            Ok(ImageRef::parse(text)?.into())
        } else {
            Ok(ComponentSource::Path(PathBuf::from(text)))
        }
    }

    /// The file, for a source read from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ComponentSource::Path(path) => Some(path),
            ComponentSource::Bytes(_) | ComponentSource::Oci(_) => None,
        }
    }

    /// The OCI reference, for a source pulled from a registry.
    pub fn reference(&self) -> Option<&ImageRef> {
        match self {
            ComponentSource::Oci(oci) => Some(&oci.reference),
            _ => None,
        }
    }

    /// The file's path, or how many bytes were given: for messages.
    pub fn describe(&self) -> String {
        match self {
            ComponentSource::Path(path) => path.display().to_string(),
            ComponentSource::Bytes(bytes) => format!("({} bytes given)", bytes.len()),
            ComponentSource::Oci(OciComponent {
                reference,
                pulled: Some((digest, _)),
            }) => reference.pinned(digest).to_string(),
            ComponentSource::Oci(oci) => oci.reference.to_string(),
        }
    }

    /// Whether the source can hold a component, checked before anything
    /// is compiled: a file must exist and be a regular file (not a folder,
    /// a device such as `/dev/zero`, or a pipe); bytes must be a component
    /// (not a core module, not something else); a reference was checked
    /// when parsed, and its bytes are checked once pulled.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            ComponentSource::Path(path) => super::validate::check_component_file(path),
            ComponentSource::Bytes(bytes) => keel_compose::WasmKind::expect_component(bytes)
                .map_err(|e| format!("the bytes given: {e}")),
            ComponentSource::Oci(OciComponent {
                reference,
                pulled: Some((_, bytes)),
            }) => keel_compose::WasmKind::expect_component(bytes)
                .map_err(|e| format!("{reference}: {e}")),
            ComponentSource::Oci(_) => Ok(()),
        }
    }

    /// The component's bytes: the file read whole (after the checks of
    /// [`ComponentSource::check`]), or the bytes given, borrowed. Whether
    /// they are a component is the caller's to check.
    pub(crate) fn read(&self) -> Result<Cow<'_, [u8]>> {
        match self {
            ComponentSource::Path(path) => {
                super::validate::check_component_file(path).map_err(anyhow::Error::msg)?;
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading component file {}", path.display()))?;
                Ok(Cow::Owned(bytes))
            }
            ComponentSource::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            ComponentSource::Oci(OciComponent {
                pulled: Some((_, bytes)),
                ..
            }) => Ok(Cow::Borrowed(bytes)),
            ComponentSource::Oci(oci) => anyhow::bail!(
                "{} has not been pulled: a host pulls references before it compiles them",
                oci.reference
            ),
        }
    }
}

/// A component's bytes run to megabytes: shown by length only.
impl fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::Path(path) => f.debug_tuple("Path").field(path).finish(),
            ComponentSource::Bytes(bytes) => {
                write!(f, "Bytes({} bytes)", bytes.len())
            }
            ComponentSource::Oci(_) => write!(f, "Oci({})", self.describe()),
        }
    }
}

impl From<PathBuf> for ComponentSource {
    fn from(path: PathBuf) -> ComponentSource {
        ComponentSource::Path(path)
    }
}

impl From<&Path> for ComponentSource {
    fn from(path: &Path) -> ComponentSource {
        ComponentSource::Path(path.to_path_buf())
    }
}

impl From<Arc<[u8]>> for ComponentSource {
    fn from(bytes: Arc<[u8]>) -> ComponentSource {
        ComponentSource::Bytes(bytes)
    }
}

impl From<ImageRef> for ComponentSource {
    fn from(reference: ImageRef) -> ComponentSource {
        ComponentSource::Oci(OciComponent {
            reference,
            pulled: None,
        })
    }
}

impl From<Vec<u8>> for ComponentSource {
    fn from(bytes: Vec<u8>) -> ComponentSource {
        ComponentSource::Bytes(bytes.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_must_be_a_component() {
        let module = ComponentSource::from(b"\0asm\x01\0\0\0".to_vec());
        assert!(
            module
                .check()
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        let junk = ComponentSource::from(b"hello".to_vec());
        assert!(junk.check().is_err());
        let component = ComponentSource::from(b"\0asm\x0d\0\x01\0".to_vec());
        assert_eq!(component.check(), Ok(()));
        assert_eq!(format!("{component:?}"), "Bytes(8 bytes)");
        assert!(component.path().is_none());
    }

    #[test]
    fn a_path_must_be_a_regular_file() {
        let device = ComponentSource::from(Path::new("/dev/zero"));
        assert!(device.check().unwrap_err().contains("not a regular file"));
        assert!(device.read().is_err(), "never read a device");
        assert_eq!(device.path(), Some(Path::new("/dev/zero")));
    }
}
