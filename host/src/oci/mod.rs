//! Components and plugins from OCI registries: references
//! (`oci://REGISTRY/REPOSITORY:TAG` or `@sha256:…`), credentials, the
//! registry client (pull and push), the content-addressed store on disk,
//! and the artifact config the ecosystem's tools read and write.
//!
//! [`Registry`] is what a host holds: it resolves a reference to verified
//! bytes under the pull policy, at most once per reference at a time, and
//! remembers what each reference resolved to, so every workload of a host
//! runs the same bytes for one reference.
//!
//! This module sits beside the compiled-component cache: it knows nothing
//! of workloads, plugins or HTTP.

pub(crate) mod client;
pub mod config;
pub(crate) mod credentials;
pub(crate) mod store;

pub(crate) use client::RegistryClient;
pub use client::{PullError, PullFailure, Pushed};
pub use credentials::Credentials;
pub use store::Artifact;
pub(crate) use store::Store;

use crate::spec::{ComponentSource, ImageRef, RegistrySpec};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::OnceCell;

/// The largest component pulled by default: 128 MiB.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 128 << 20;

/// When a reference is fetched from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Use the store when it has the artifact (for a tag: what the tag named
    /// when it was pulled); pull otherwise.
    #[default]
    IfNotPresent,
    /// Ask the registry every time the host resolves the reference, so a
    /// moved tag is followed; the store still saves the download when the
    /// bytes are already there.
    Always,
    /// Never reach a registry: the store must have it.
    Never,
}

/// How a host gets components from registries.
///
/// ```
/// use keel::oci::{OciOptions, PullPolicy};
/// use keel::spec::RegistrySpec;
/// let options = OciOptions::default()
///     .with_store_dir("/var/cache/keel/oci")
///     .with_policy(PullPolicy::Always)
///     .with_registry(RegistrySpec::new("127.0.0.1:5000").with_insecure(true));
/// assert!(!options.offline);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OciOptions {
    /// The store folder; `None`: pulled components are kept in memory only,
    /// for the host's life.
    pub store_dir: Option<PathBuf>,
    /// When to reach the registry.
    pub policy: PullPolicy,
    /// Refuse to reach any registry, whatever the policy: only the store
    /// serves.
    pub offline: bool,
    /// Per-registry settings: plain HTTP, credentials.
    pub registries: Vec<RegistrySpec>,
    /// The largest component pulled.
    pub max_layer_size: u64,
}

impl Default for OciOptions {
    fn default() -> OciOptions {
        OciOptions {
            store_dir: None,
            policy: PullPolicy::default(),
            offline: false,
            registries: Vec::new(),
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
        }
    }
}

impl OciOptions {
    /// Keeps pulled components in `dir` (content-addressed).
    pub fn with_store_dir(mut self, dir: impl Into<PathBuf>) -> OciOptions {
        self.store_dir = Some(dir.into());
        self
    }

    /// When to reach the registry.
    pub fn with_policy(mut self, policy: PullPolicy) -> OciOptions {
        self.policy = policy;
        self
    }

    /// Refuses to reach any registry: only the store serves.
    pub fn with_offline(mut self, offline: bool) -> OciOptions {
        self.offline = offline;
        self
    }

    /// Adds one registry's settings.
    pub fn with_registry(mut self, registry: RegistrySpec) -> OciOptions {
        self.registries.push(registry);
        self
    }

    /// The largest component pulled, in bytes.
    pub fn with_max_layer_size(mut self, bytes: u64) -> OciOptions {
        self.max_layer_size = bytes;
        self
    }
}

/// One image's own pull settings, over the host's.
#[derive(Debug, Clone, Default)]
pub struct PullSettings {
    /// When to reach the registry for this image.
    pub policy: Option<PullPolicy>,
    /// Whom to be to its registry.
    pub credentials: Option<Credentials>,
}

/// A reference resolved to bytes.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference as written.
    pub reference: ImageRef,
    /// What was found.
    pub artifact: Artifact,
    /// Whether it came from the registry just now (or from the store).
    pub pulled: bool,
}

/// A host's access to registries: the client, the store, and what each
/// reference resolved to.
pub struct Registry {
    options: OciOptions,
    store: Option<Store>,
    /// Made on first use: building it loads the system's root
    /// certificates (hundreds of files), which a host whose components are
    /// all local files, or already in the store, never needs.
    client: std::sync::OnceLock<RegistryClient>,
    resolved: Mutex<BTreeMap<ImageRef, Arc<OnceCell<Resolved>>>>,
}

impl Registry {
    /// Opens the store (when there is one); the client is made when a
    /// registry is first reached, and no registry is contacted yet.
    pub fn new(mut options: OciOptions) -> anyhow::Result<Registry> {
        for spec in &options.registries {
            spec.validate()
                .map_err(|m| anyhow::anyhow!("registry {}: {m}", spec.host))?;
        }
        if options.offline {
            options.policy = PullPolicy::Never;
        }
        let store = options.store_dir.as_ref().map(Store::open).transpose()?;
        Ok(Registry {
            options,
            store,
            client: std::sync::OnceLock::new(),
            resolved: Mutex::new(BTreeMap::new()),
        })
    }

    /// The client for registries, made on first use.
    fn client(&self) -> &RegistryClient {
        self.client.get_or_init(|| {
            RegistryClient::new(&self.options.registries, self.options.max_layer_size)
        })
    }

    /// Whether a registry client has been made (a registry was to be
    /// reached): a host serving local files only never makes one.
    pub fn client_made(&self) -> bool {
        self.client.get().is_some()
    }

    /// The options in force.
    pub fn options(&self) -> &OciOptions {
        &self.options
    }

    /// The bytes `reference` names, under the pull policy. The first call
    /// for a reference resolves it (callers asking meanwhile wait for that
    /// one pull); later calls get the same answer. A failure is not
    /// remembered: the next call tries again.
    pub async fn resolve(&self, reference: &ImageRef) -> Result<Resolved, PullError> {
        let cell = self
            .resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reference.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.fetch(reference))
            .await
            .cloned()
    }

    /// Resolves `source` in place when it is an `oci://` reference not yet
    /// pulled (see [`Registry::resolve`]); files and bytes stay as they are.
    pub async fn fill(&self, source: &mut ComponentSource) -> Result<(), PullError> {
        if let ComponentSource::Oci(oci) = source
            && oci.pulled.is_none()
        {
            let resolved = self.resolve(&oci.reference).await?;
            oci.pulled = Some((resolved.artifact.manifest_digest, resolved.artifact.bytes));
        }
        Ok(())
    }

    /// The bytes `reference` names, under this one image's own settings
    /// where it has any (a control plane sends a policy and a pull secret
    /// with each image): then the registry is asked as they say (offline
    /// still wins), the store kept up to date, and nothing remembered for
    /// later calls. Without settings, as [`Registry::resolve`].
    pub async fn resolve_with(
        &self,
        reference: &ImageRef,
        settings: &PullSettings,
    ) -> Result<Resolved, PullError> {
        if settings.policy.is_none() && settings.credentials.is_none() {
            return self.resolve(reference).await;
        }
        let policy = if self.options.offline {
            PullPolicy::Never
        } else {
            settings.policy.unwrap_or(self.options.policy)
        };
        self.fetch_as(reference, policy, settings.credentials.as_ref())
            .await
    }

    /// Store or registry, as the policy says; logs where it came from and
    /// the digest, so a run can be pinned.
    async fn fetch(&self, reference: &ImageRef) -> Result<Resolved, PullError> {
        self.fetch_as(reference, self.options.policy, None).await
    }

    /// [`Registry::fetch`] under `policy`, as `credentials` when given.
    async fn fetch_as(
        &self,
        reference: &ImageRef,
        policy: PullPolicy,
        credentials: Option<&Credentials>,
    ) -> Result<Resolved, PullError> {
        let stored = match (&self.store, policy) {
            (Some(store), PullPolicy::IfNotPresent | PullPolicy::Never) => {
                lookup(store, reference)?
            }
            _ => None,
        };
        if let Some(artifact) = stored {
            log_resolved(reference, &artifact, "store", None);
            return Ok(Resolved {
                reference: reference.clone(),
                artifact,
                pulled: false,
            });
        }
        if policy == PullPolicy::Never {
            let why = match (&self.store, self.options.offline) {
                (None, _) => "registries may not be reached (offline or pull policy `never`) and the host has no OCI store".to_string(),
                (Some(store), true) => format!("offline, and the OCI store {} does not have it; pull it once without --offline", store.dir().display()),
                (Some(store), false) => format!("pull policy `never`, and the OCI store {} does not have it", store.dir().display()),
            };
            return Err(PullError {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
                failure: PullFailure::NotInStore(why),
            });
        }
        tracing::info!(reference = %reference, registry = reference.registry(), "pulling");
        let started = Instant::now();
        let (manifest, artifact) = match credentials {
            // The client keeps the first credentials it used with a registry
            // for its life: one image's own credentials get a client of
            // their own, so they neither lose to nor linger for others.
            Some(credentials) => {
                RegistryClient::new(&self.options.registries, self.options.max_layer_size)
                    .pull_as(reference, Some(credentials))
                    .await?
            }
            None => self.client().pull(reference).await?,
        };
        let elapsed = started.elapsed();
        if let Some(store) = &self.store
            && let Err(e) = store.put(reference, &manifest, &artifact)
        {
            // The bytes are verified and in hand: run them, and say the
            // store could not keep them.
            tracing::warn!(reference = %reference, "the OCI store could not keep a pulled component: {e:#}");
        }
        log_resolved(reference, &artifact, "registry", Some(elapsed));
        Ok(Resolved {
            reference: reference.clone(),
            artifact,
            pulled: true,
        })
    }

    /// Pushes `component` to `reference` (with the artifact layout `keel::oci::config` describes).
    /// Refused when offline.
    pub async fn push(&self, reference: &ImageRef, component: &[u8]) -> anyhow::Result<Pushed> {
        if self.options.offline {
            anyhow::bail!("pushing {reference}: offline, no registry may be reached");
        }
        self.client().push(reference, component).await
    }
}

fn lookup(store: &Store, reference: &ImageRef) -> Result<Option<Artifact>, PullError> {
    store.lookup(reference).map_err(|e| PullError {
        reference: reference.to_string(),
        registry: reference.registry().to_string(),
        failure: PullFailure::Transfer(format!("reading the OCI store: {e:#}")),
    })
}

/// One line per resolution: the reference, the digest it resolved to (to
/// pin it), where the bytes came from, and for a pull its size and speed.
fn log_resolved(
    reference: &ImageRef,
    artifact: &Artifact,
    from: &str,
    elapsed: Option<std::time::Duration>,
) {
    let pinned = reference.pinned(&artifact.manifest_digest);
    let bytes = artifact.bytes.len();
    match elapsed {
        Some(elapsed) => {
            let secs = elapsed.as_secs_f64().max(1e-6);
            tracing::info!(
                reference = %reference,
                digest = %artifact.manifest_digest,
                bytes,
                elapsed_ms = elapsed.as_millis() as u64,
                mib_per_s = format!("{:.1}", bytes as f64 / secs / (1 << 20) as f64),
                pinned = %pinned,
                "pulled from {from}"
            );
        }
        None => tracing::info!(
            reference = %reference,
            digest = %artifact.manifest_digest,
            bytes,
            pinned = %pinned,
            "resolved from the {from}"
        ),
    }
}
