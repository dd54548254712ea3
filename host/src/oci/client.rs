//! Talking to registries: pull a component artifact (manifest, then its one
//! layer, both checked against their digests and bounded in size) and push
//! one. The distribution protocol itself (token and basic auth, redirects,
//! uploads) is `oci-client`'s.

use super::config::{
    ACCEPTED_MANIFESTS, ArtifactConfig, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    sha256_digest, wasm_layer,
};
use super::credentials::{Credentials, credentials_for};
use super::store::Artifact;
use crate::spec::ImageRef;
use crate::spec::RegistrySpec;
use futures::StreamExt as _;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use std::time::{Duration, Instant};

/// The largest manifest read (Distribution's own bound is 4 MiB).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a registry may stay silent in the middle of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A pull that failed: which reference, which registry, and why.
#[derive(Debug, thiserror::Error)]
#[error("pulling {reference} from registry {registry}: {failure}")]
pub struct PullError {
    /// The reference asked for.
    pub reference: String,
    /// The registry asked.
    pub registry: String,
    /// Why it failed.
    pub failure: PullFailure,
}

/// Why a pull failed, as a user acts on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullFailure {
    /// The registry refused the credentials, or wants some.
    #[error("not authorized ({0}); check the credentials for this registry")]
    Auth(String),
    /// No such repository, tag or digest.
    #[error("not found ({0})")]
    NotFound(String),
    /// The artifact is something else (a container image, an index).
    #[error("not a Wasm component artifact: {0}")]
    NotWasm(String),
    /// Bytes that do not match the digest that names them.
    #[error("digest mismatch: expected {expected}, received {actual}; nothing from it is used")]
    DigestMismatch {
        /// The digest asked for (by the reference or the manifest).
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The component is larger than the host accepts.
    #[error(
        "the component is {size} bytes, more than the {limit} bytes a pulled component may have (max_layer_size)"
    )]
    TooLarge {
        /// Its size (as announced, or as counted so far).
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The host may not reach registries, and the store lacks it.
    #[error("{0}")]
    NotInStore(String),
    /// The registry could not be reached or the transfer broke.
    #[error("{0}")]
    Transfer(String),
}

impl PullFailure {
    fn about(self, reference: &ImageRef) -> PullError {
        PullError {
            reference: reference.to_string(),
            registry: reference.registry().to_string(),
            failure: self,
        }
    }
}

/// A registry client for every registry of a host.
pub struct RegistryClient {
    client: oci_client::Client,
    registries: Vec<RegistrySpec>,
    max_layer_size: u64,
}

/// What a push left in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The reference pinned to the manifest's digest.
    pub reference: ImageRef,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
}

/// Makes ring the process's default rustls provider unless one is set:
/// reqwest's TLS (under every registry client, keel's or another's in the
/// same process) needs one, and keel uses ring everywhere else.
pub fn install_tls_provider() {
    // An error means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RegistryClient {
    /// A client speaking HTTPS to every registry but those `registries`
    /// mark `insecure`, accepting components of at most `max_layer_size`
    /// bytes.
    pub fn new(registries: &[RegistrySpec], max_layer_size: u64) -> RegistryClient {
        install_tls_provider();
        let insecure = registries
            .iter()
            .filter(|r| r.insecure)
            .map(|r| r.host.clone())
            .collect();
        let config = oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::HttpsExcept(insecure),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // A component artifact is one manifest; an index is refused.
            platform_resolver: None,
            user_agent: concat!("keel/", env!("CARGO_PKG_VERSION")),
            ..oci_client::client::ClientConfig::default()
        };
        RegistryClient {
            client: oci_client::Client::new(config),
            registries: registries.to_vec(),
            max_layer_size,
        }
    }

    /// The credentials for `registry`, or anonymous.
    fn auth(&self, registry: &str) -> Result<RegistryAuth, String> {
        let spec = self.registries.iter().find(|r| r.host == registry);
        match credentials_for(registry, spec).map_err(|e| format!("{e:#}"))? {
            Some(c) => Ok(RegistryAuth::Basic(
                c.username,
                c.password.expose().to_string(),
            )),
            None => Ok(RegistryAuth::Anonymous),
        }
    }

    /// Pulls the artifact `reference` names: its manifest (checked against
    /// the reference's digest, if any) and its one Wasm layer (checked
    /// against the manifest's digest for it, and bounded in size). Returns
    /// the raw manifest and the artifact.
    pub async fn pull(&self, reference: &ImageRef) -> Result<(Vec<u8>, Artifact), PullError> {
        self.pull_as(reference, None).await
    }

    /// [`RegistryClient::pull`] as `credentials` when given (a control
    /// plane's pull secret for this one image), else as configured.
    pub async fn pull_as(
        &self,
        reference: &ImageRef,
        credentials: Option<&Credentials>,
    ) -> Result<(Vec<u8>, Artifact), PullError> {
        let fail = |f: PullFailure| f.about(reference);
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.expose().to_string()),
            None => self
                .auth(reference.registry())
                .map_err(|e| fail(PullFailure::Auth(e)))?,
        };
        let target = client_reference(reference);
        let (manifest, _) = self
            .client
            .pull_manifest_raw(&target, &auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| fail(classify(e)))?;
        if manifest.len() > MAX_MANIFEST_SIZE {
            return Err(fail(PullFailure::NotWasm(format!(
                "its manifest is {} bytes, more than {MAX_MANIFEST_SIZE}",
                manifest.len()
            ))));
        }
        let manifest_digest = sha256_digest(&manifest);
        if let Some(expected) = reference.digest()
            && expected != manifest_digest
        {
            return Err(fail(PullFailure::DigestMismatch {
                expected: expected.to_string(),
                actual: manifest_digest,
            }));
        }
        let layer = wasm_layer(&manifest).map_err(|e| fail(PullFailure::NotWasm(e)))?;
        if layer.size > self.max_layer_size {
            return Err(fail(PullFailure::TooLarge {
                size: layer.size,
                limit: self.max_layer_size,
            }));
        }
        let descriptor = oci_client::manifest::OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: i64::try_from(layer.size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let bytes = self
            .download(reference, &target, &descriptor, layer.size)
            .await?;
        let actual = sha256_digest(&bytes);
        if actual != layer.digest {
            return Err(fail(PullFailure::DigestMismatch {
                expected: layer.digest,
                actual,
            }));
        }
        Ok((
            manifest.to_vec(),
            Artifact {
                manifest_digest,
                layer_digest: layer.digest,
                bytes: bytes.into(),
            },
        ))
    }

    /// Streams the layer into memory, stopping at the size bound, and
    /// logs progress every 16 MiB.
    async fn download(
        &self,
        reference: &ImageRef,
        target: &oci_client::Reference,
        descriptor: &oci_client::manifest::OciDescriptor,
        announced: u64,
    ) -> Result<Vec<u8>, PullError> {
        const PROGRESS_EVERY: u64 = 16 << 20;
        let fail = |f: PullFailure| f.about(reference);
        let mut stream = self
            .client
            .pull_blob_stream(target, descriptor)
            .await
            .map_err(|e| fail(classify(e)))?;
        let limit = self.max_layer_size;
        if let Some(length) = stream.content_length
            && length > limit
        {
            return Err(fail(PullFailure::TooLarge {
                size: length,
                limit,
            }));
        }
        let started = Instant::now();
        let mut bytes = Vec::with_capacity(usize::try_from(announced.min(limit)).unwrap_or(0));
        let mut next_report = PROGRESS_EVERY;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // The client's own digest check fails at the end of the
                // stream: then every byte is here, and the digest check of
                // the caller names the mismatch.
                Err(_) if bytes.len() as u64 == announced => break,
                Err(e) => {
                    return Err(fail(PullFailure::Transfer(format!(
                        "the download of layer {} broke after {} bytes: {e}",
                        descriptor.digest,
                        bytes.len()
                    ))));
                }
            };
            let received = bytes.len() as u64 + chunk.len() as u64;
            if received > limit {
                return Err(fail(PullFailure::TooLarge {
                    size: received,
                    limit,
                }));
            }
            if received > announced {
                return Err(fail(PullFailure::DigestMismatch {
                    expected: descriptor.digest.clone(),
                    actual: format!("more than the {announced} bytes the manifest states"),
                }));
            }
            bytes.extend_from_slice(&chunk);
            if received >= next_report {
                next_report += PROGRESS_EVERY;
                tracing::info!(
                    reference = %reference,
                    received,
                    total = announced,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "pulling"
                );
            }
        }
        Ok(bytes)
    }

    /// Pushes `component` as a Wasm component artifact under `reference`
    /// (which must have a tag): the layer, the config listing its imports
    /// and exports, and the manifest. Returns the digests.
    pub async fn push(&self, reference: &ImageRef, component: &[u8]) -> anyhow::Result<Pushed> {
        use anyhow::Context as _;
        let Some(tag) = reference.tag() else {
            anyhow::bail!(
                "pushing {reference}: a push needs a tag (oci://REGISTRY/REPOSITORY:TAG)"
            );
        };
        keel_compose::WasmKind::expect_component(component)
            .context("only a WebAssembly component can be pushed")?;
        let layer_digest = sha256_digest(component);
        let config = ArtifactConfig::for_component(component, &layer_digest)?;
        let config = oci_client::client::Config::new(
            serde_json::to_vec(&config)?,
            CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let layers = [oci_client::client::ImageLayer::new(
            component.to_vec(),
            LAYER_MEDIA_TYPE.to_string(),
            None,
        )];
        let mut manifest = oci_client::manifest::OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(MANIFEST_MEDIA_TYPE.to_string());
        let auth = self
            .auth(reference.registry())
            .map_err(anyhow::Error::msg)?;
        let target = oci_client::Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            tag.to_string(),
        );
        let registry = reference.registry();
        self.client
            .push(&target, &layers, config, &auth, Some(manifest))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "pushing {reference} to registry {registry}: {}",
                    classify(e)
                )
            })?;
        let manifest_digest = self
            .client
            .fetch_manifest_digest(&target, &auth)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading back {reference} from registry {registry}: {}",
                    classify(e)
                )
            })?;
        Ok(Pushed {
            reference: reference.pinned(&manifest_digest),
            manifest_digest,
            layer_digest,
        })
    }
}

/// The client's reference: by digest when there is one (the tag then only
/// documents it), else by tag.
fn client_reference(reference: &ImageRef) -> oci_client::Reference {
    let (registry, repository) = (
        reference.registry().to_string(),
        reference.repository().to_string(),
    );
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => {
            oci_client::Reference::with_digest(registry, repository, digest.to_string())
        }
        (None, Some(tag)) => oci_client::Reference::with_tag(registry, repository, tag.to_string()),
        // A reference always has one or the other.
        (None, None) => oci_client::Reference::with_tag(registry, repository, "latest".to_string()),
    }
}

/// Sorts the client's errors into what a user acts on.
fn classify(error: OciDistributionError) -> PullFailure {
    match error {
        OciDistributionError::AuthenticationFailure(why) => PullFailure::Auth(short(&why)),
        OciDistributionError::UnauthorizedError { .. } => {
            PullFailure::Auth("the registry answered 401".to_string())
        }
        OciDistributionError::ImageManifestNotFoundError(what) => {
            PullFailure::NotFound(short(&what))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect();
            let text = short(&codes.join("; "));
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => PullFailure::Auth(text),
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound,
                ) => PullFailure::NotFound(text),
                _ => PullFailure::Transfer(format!("the registry answered: {text}")),
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => PullFailure::Auth(format!("HTTP {code}")),
            404 => PullFailure::NotFound(format!("HTTP 404 {}", short(&message))),
            _ => PullFailure::Transfer(format!(
                "the registry answered HTTP {code}: {}",
                short(&message)
            )),
        },
        OciDistributionError::DigestError(e) => PullFailure::DigestMismatch {
            expected: "the digest asked for".to_string(),
            actual: short(&e.to_string()),
        },
        OciDistributionError::UnsupportedMediaTypeError(t)
        | OciDistributionError::IncompatibleLayerMediaTypeError(t) => {
            PullFailure::NotWasm(format!("media type `{}`", short(&t)))
        }
        OciDistributionError::RequestError(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            PullFailure::Transfer(format!("cannot reach the registry: {}", short(&text)))
        }
        other => PullFailure::Transfer(short(&other.to_string())),
    }
}

/// A registry's text cut to a readable length.
fn short(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_string();
    }
    let cut = text.floor_char_boundary(MAX);
    format!("{}…", &text[..cut])
}
