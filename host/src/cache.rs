//! Compiled components on disk, so that a restart does not recompile.
//!
//! An artifact is named by the SHA-256 of the component's bytes and the
//! engine's compatibility hash (Wasmtime version, target, CPU features,
//! tunables), so an artifact is only ever loaded into an engine able to run
//! it. Artifacts are written to a temporary file and renamed into place, so a
//! crash never leaves a torn file under a valid name.
//!
//! Artifacts are native code, and Wasmtime loads them without validation: a
//! damaged one would crash the host on its first request, and again after
//! every restart. So each artifact starts with a header holding the SHA-256
//! of the rest, checked before Wasmtime sees a byte; one that fails the
//! check is removed and recompiled, with a warning. The digest catches
//! damage, not malice: the folder must be writable by keel's user alone, so
//! keel creates it private (`0700`) and refuses to use one that other users
//! may write to or that another user owns.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

/// What the cache did so far; tests and `keel` logs read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Components compiled from Wasm (cache misses, or no cache).
    pub compiled: u64,
    /// Components loaded from a precompiled artifact.
    pub loaded: u64,
    /// Workloads composed with their plugins (a cache miss of a composed one).
    pub composed: u64,
}

/// The first bytes of every artifact keel writes: a format tag, then the
/// SHA-256 of the serialised component that follows.
const MAGIC: &[u8; 8] = b"KEELCW01";

/// Length of the header: [`MAGIC`] and the digest.
const HEADER: usize = MAGIC.len() + 32;

/// Loads components, compiling only what the disk cache lacks.
#[derive(Debug, Default)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    compiled: AtomicU64,
    loaded: AtomicU64,
    composed: AtomicU64,
}

impl ComponentCache {
    /// A cache in `dir`, or none: always compile. The folder is created
    /// private to this user when missing; an existing one that another user
    /// owns or that others may write to is refused.
    pub fn new(dir: Option<PathBuf>) -> Result<ComponentCache> {
        if let Some(dir) = &dir {
            prepare_dir(dir)?;
        }
        Ok(ComponentCache {
            dir,
            ..ComponentCache::default()
        })
    }

    /// The folder artifacts live in, if caching is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Counters of compilations, compositions and cache loads.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
            composed: self.composed.load(Ordering::Relaxed),
        }
    }

    /// Turns component bytes into a [`Component`]: from the cache when an
    /// artifact exists, otherwise by compiling (and storing the artifact).
    /// `name` only labels log lines. Blocking: call it off the async runtime.
    pub fn load(&self, engine: &Engine, name: &str, wasm: &[u8]) -> Result<Component> {
        let key = Sha256::digest(wasm).into();
        self.load_or_build(engine, name, key, || Ok(wasm.to_vec()))
    }

    /// The component compiled from `wasm`, when the cache holds its
    /// artifact (a damaged one is removed, with a warning, and `None`
    /// returned). Blocking: call it off the async runtime.
    pub fn cached(&self, engine: &Engine, name: &str, wasm: &[u8]) -> Option<Component> {
        let dir = self.dir.as_ref()?;
        let key = Sha256::digest(wasm).into();
        self.artifact(engine, name, &dir.join(artifact_name(engine, &key)))
    }

    /// Like [`ComponentCache::load`] for a component that first has to be
    /// composed: `key` must cover every input of `compose`, which runs only
    /// when no artifact exists for `key`.
    pub fn load_composed(
        &self,
        engine: &Engine,
        name: &str,
        key: [u8; 32],
        compose: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Component> {
        self.load_or_build(engine, name, key, || {
            self.composed.fetch_add(1, Ordering::Relaxed);
            compose()
        })
    }

    fn load_or_build(
        &self,
        engine: &Engine,
        name: &str,
        key: [u8; 32],
        wasm: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Component> {
        let Some(dir) = &self.dir else {
            return self.compile(engine, name, &wasm()?);
        };
        let path = dir.join(artifact_name(engine, &key));
        if let Some(component) = self.artifact(engine, name, &path) {
            return Ok(component);
        }
        let component = self.compile(engine, name, &wasm()?)?;
        if let Err(e) = store(dir, &path, &component) {
            tracing::warn!(
                component = name,
                error = format!("{e:#}"),
                "could not write the compiled component to the cache"
            );
        }
        Ok(component)
    }

    /// The component in artifact `path`, if there is one and it passes its
    /// integrity check (a damaged one is removed).
    fn artifact(&self, engine: &Engine, name: &str, path: &Path) -> Option<Component> {
        if !path.is_file() {
            return None;
        }
        match read_verified(path) {
            Ok(serialized) => {
                // SAFETY: `serialized` is byte for byte what `store` wrote
                // from `Component::serialize` (its digest matches) for an
                // engine with the same compatibility hash (the file name
                // says so), in a folder only this user can write.
                match unsafe { Component::deserialize(engine, &serialized) } {
                    Ok(component) => {
                        self.loaded.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(component = name, artifact = %path.display(), "loaded precompiled component");
                        return Some(component);
                    }
                    Err(e) => tracing::warn!(
                        component = name,
                        artifact = %path.display(),
                        error = format!("{e:#}"),
                        "ignoring an unusable precompiled artifact; recompiling"
                    ),
                }
            }
            Err(e) => {
                tracing::warn!(
                    component = name,
                    artifact = %path.display(),
                    error = format!("{e:#}"),
                    "a precompiled artifact failed its integrity check; removing it and recompiling"
                );
                let _ = std::fs::remove_file(path);
            }
        }
        None
    }

    fn compile(&self, engine: &Engine, name: &str, wasm: &[u8]) -> Result<Component> {
        let started = std::time::Instant::now();
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling component `{name}`"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            component = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled component"
        );
        Ok(component)
    }
}

/// `<key>-<compatibility hash>.cwasm`
fn artifact_name(engine: &Engine, key: &[u8; 32]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut name = String::with_capacity(64 + 18 + 6);
    for byte in key {
        name.push_str(&format!("{byte:02x}"));
    }
    name.push_str(&format!("-{:016x}.cwasm", hasher.finish()));
    name
}

fn store(dir: &Path, path: &Path, component: &Component) -> Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating cache folder {}", dir.display()))?;
    let bytes = component
        .serialize()
        .map_err(anyhow::Error::from)
        .context("serialising the compiled component")?;
    // Unique per process and call, so concurrent writers never share a file.
    let unique = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
    let mut file = Vec::with_capacity(HEADER + bytes.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&Sha256::digest(&bytes));
    file.extend_from_slice(&bytes);
    std::fs::write(&tmp, file).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// The serialised component in artifact `path`, if its header is keel's and
/// its digest matches.
fn read_verified(path: &Path) -> Result<Vec<u8>> {
    let mut file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if file.len() < HEADER || &file[..MAGIC.len()] != MAGIC {
        anyhow::bail!("not an artifact this version of keel wrote");
    }
    let digest: [u8; 32] = Sha256::digest(&file[HEADER..]).into();
    if digest[..] != file[MAGIC.len()..HEADER] {
        anyhow::bail!(
            "its contents do not match the digest written with them (the file is damaged)"
        );
    }
    file.drain(..HEADER);
    Ok(file)
}

/// Creates `dir` private to this user, or checks that an existing one is
/// owned by this user and writable by nobody else.
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating cache folder {}", dir.display()))?;
    }
    let metadata = std::fs::metadata(dir)
        .with_context(|| format!("reading cache folder {}", dir.display()))?;
    if !metadata.is_dir() {
        anyhow::bail!("cache folder {} is not a folder", dir.display());
    }
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        anyhow::bail!(
            "cache folder {} belongs to another user (uid {}): compiled code loaded from it would run as this one; use a folder of your own",
            dir.display(),
            metadata.uid()
        );
    }
    if metadata.mode() & 0o022 != 0 {
        anyhow::bail!(
            "cache folder {} may be written by other users (mode {:o}): compiled code loaded from it would run as this one; `chmod go-w` it or use another folder",
            dir.display(),
            metadata.mode() & 0o7777
        );
    }
    Ok(())
}

/// The default cache folder: `$XDG_CACHE_HOME/keel` or `~/.cache/keel`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("keel"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("keel"))
}
