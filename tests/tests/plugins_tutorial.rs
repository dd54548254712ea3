//! `docs/plugins.md`, followed as written: every file the page has its
//! reader write is written (and must equal the committed one under
//! `docs/plugins/`), every command it shows is run, and the output it
//! shows must appear. `keel plugin new` scaffolds, `cargo build` builds the
//! plugin, the layer and the workload (offline, into one scratch target
//! folder under `CARGO_TARGET_DIR`), `keel push` pushes to a real
//! `docker-registry`, and the manifests run under `keel run` answer the
//! HTTP requests the page shows. At the end the reader's folder must hold
//! exactly the crates committed under `docs/plugins/`.
//!
//! The test's registry and keel listen on ports of their own: the page's
//! `127.0.0.1:5000` is replaced by the registry's address in what is run
//! and written, and its `curl`s go to keel's address.

use anyhow::{Context, Result, bail, ensure};
use keel_tests::registry::Registry;
use keel_tests::tutorial::{self, Step};
use keel_tests::{KeelProcess, get, keel_bin, repo_root};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The registry address the page writes.
const PAGE_REGISTRY: &str = "127.0.0.1:5000";

/// How long keel may take to log a line the page shows.
const LOG_TIMEOUT: Duration = Duration::from_secs(120);

/// A reader following the page, in a scratch folder.
struct Reader {
    /// Holds the reader's folders; removed at the end.
    scratch: tempfile::TempDir,
    /// Where the page's files go: the folder the first file is written in.
    base: Option<PathBuf>,
    /// The reader's current folder.
    cwd: PathBuf,
    /// The one cargo target folder every crate of the page builds into.
    target: PathBuf,
    registry: Option<Registry>,
    keel: Option<(KeelProcess, SocketAddr)>,
    runtime: tokio::runtime::Runtime,
    /// The commands run, for the final checks.
    ran: Vec<String>,
}

impl Reader {
    fn new() -> Result<Reader> {
        let scratch = tempfile::tempdir()?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("plugins-tutorial");
        std::fs::create_dir_all(&target)?;
        Ok(Reader {
            cwd: scratch.path().to_path_buf(),
            scratch,
            base: None,
            target,
            registry: None,
            keel: None,
            runtime: tokio::runtime::Runtime::new()?,
            ran: Vec::new(),
        })
    }

    /// `text` with the page's registry address replaced by the test's.
    fn local(&self, text: &str) -> String {
        match &self.registry {
            Some(registry) => text.replace(PAGE_REGISTRY, &registry.host()),
            None => text.to_string(),
        }
    }

    /// `text` with the test's registry address written as the page writes it.
    fn paged(&self, text: &str) -> String {
        match &self.registry {
            Some(registry) => text.replace(&registry.host(), PAGE_REGISTRY),
            None => text.to_string(),
        }
    }

    fn base(&self) -> Result<&Path> {
        self.base
            .as_deref()
            .context("the page runs this before it writes its first file")
    }

    fn step(&mut self, step: &Step) -> Result<()> {
        match step {
            Step::File { path, text } => {
                let committed = std::fs::read_to_string(docs().join(path))
                    .with_context(|| format!("the page writes `{path}`: docs/plugins/{path}"))?;
                ensure!(
                    *text == committed,
                    "the page's `{path}` differs from docs/plugins/{path}"
                );
                let base = self.base.get_or_insert_with(|| self.cwd.clone()).clone();
                let at = base.join(path);
                if let Some(parent) = at.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&at, self.local(text))?;
                Ok(())
            }
            Step::Command { line, expected } => {
                for command in line.split(" && ") {
                    self.run(command.trim(), expected)
                        .with_context(|| format!("`$ {line}` in {}", self.cwd.display()))?;
                }
                Ok(())
            }
        }
    }

    fn run(&mut self, command: &str, expected: &[String]) -> Result<()> {
        self.ran.push(command.to_string());
        let expected: Vec<String> = expected.iter().map(|l| self.local(l)).collect();
        if let Some(dir) = command.strip_prefix("cd ") {
            self.cwd = self
                .cwd
                .join(dir)
                .canonicalize()
                .with_context(|| format!("no folder {dir}"))?;
            return Ok(());
        }
        if let Some(config) = command.strip_prefix("docker-registry serve ") {
            // The page's configuration, on a port of the test's choosing.
            let text = std::fs::read_to_string(self.cwd.join(config))
                .with_context(|| format!("no {config} to serve"))?;
            let text = text.replace(PAGE_REGISTRY, "127.0.0.1:0");
            self.registry = Some(Registry::start_as_configured(&self.cwd, &text)?);
            return Ok(());
        }
        if let Some(manifest) = command.strip_prefix("keel run ") {
            return self.keel_run(manifest, &expected);
        }
        if let Some(url) = command.strip_prefix("curl -s ") {
            return self.curl(url, &expected);
        }
        if command.starts_with("cargo ") && !self.cwd.join("target").exists() {
            // The crate's own target/ is the shared one, so that
            // wit-bindgen is compiled once for all of the page's crates.
            std::os::unix::fs::symlink(&self.target, self.cwd.join("target"))?;
        }
        self.shell(command, &expected)
    }

    /// Runs `command` with bash as the reader's shell would: `keel` and
    /// `cargo` on the PATH, cargo offline, keel's cache in the scratch
    /// folder.
    fn shell(&self, command: &str, expected: &[String]) -> Result<()> {
        let keel_dir = keel_bin().parent().context("keel's folder")?.to_path_buf();
        let mut path = vec![keel_dir];
        if let Some(cargo) = std::env::var_os("CARGO").map(PathBuf::from)
            && let Some(dir) = cargo.parent()
        {
            path.push(dir.to_path_buf());
        }
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let output = Command::new("bash")
            .arg("-c")
            .arg(self.local(command))
            .current_dir(&self.cwd)
            .env("PATH", std::env::join_paths(path)?)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env("CARGO_NET_OFFLINE", "true")
            .env("XDG_CACHE_HOME", self.scratch.path().join(".cache"))
            .output()?;
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(output.status.success(), "{}:\n{shown}", output.status);
        tutorial::shows(expected, &shown).map_err(anyhow::Error::msg)
    }

    /// `keel run MANIFEST`: the previous one stops (the reader's Ctrl-C),
    /// and every log line the page shows must come.
    fn keel_run(&mut self, manifest: &str, expected: &[String]) -> Result<()> {
        self.keel = None;
        let cache = self.scratch.path().join(".keel-run-cache");
        let mut keel = KeelProcess::spawn(&self.cwd.join(manifest), &cache, &[])?;
        let addr = keel.http_addr()?;
        for pattern in expected.iter().filter(|p| p.trim() != "...") {
            keel.wait_for_log_line(pattern, |l| tutorial::matches(pattern, l), LOG_TIMEOUT)?;
        }
        self.keel = Some((keel, addr));
        Ok(())
    }

    /// `curl -s 'HOST:PORT/PATH'`: GET PATH from the running keel with
    /// that Host header; the body must be the page's output.
    fn curl(&self, url: &str, expected: &[String]) -> Result<()> {
        let url = url.trim_matches('\'');
        let (host, path) = url
            .split_once('/')
            .map(|(host, path)| (host, format!("/{path}")))
            .with_context(|| format!("no path in {url}"))?;
        let Some((_, addr)) = &self.keel else {
            bail!("curl before any `keel run`");
        };
        let answer = self.runtime.block_on(get(*addr, host, &path))?;
        let want: String = expected.iter().map(|l| format!("{l}\n")).collect();
        ensure!(
            answer.body == want,
            "GET {url} answered {} {:?}, the page shows {want:?}",
            answer.status,
            answer.body
        );
        Ok(())
    }
}

/// `docs/plugins/`: the page's files, committed.
fn docs() -> PathBuf {
    repo_root().join("docs/plugins")
}

/// The files under `dir`, relative to it, leaving out what builds and
/// runs leave behind (`target`, `Cargo.lock`, the registry's storage,
/// dot folders).
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "target"
                || name == "Cargo.lock"
                || name == "registry-data"
                || name.starts_with('.')
            {
                continue;
            }
            if entry.file_type()?.is_dir() {
                pending.push(rel.join(&*name));
            } else {
                out.push(rel.join(&*name));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn the_plugins_tutorial_works_as_written() -> Result<()> {
    let page = std::fs::read_to_string(repo_root().join("docs/plugins.md"))?;
    let steps = tutorial::steps(&page)?;
    let mut reader = Reader::new()?;
    for step in &steps {
        reader.step(step)?;
    }

    // Every part of the path was there to follow.
    for wanted in [
        "keel plugin new greeter ",
        "keel plugin new greeter-quota ",
        "cargo build --target wasm32-wasip2 --release",
        "keel plugin check ",
        "docker-registry serve ",
        "keel push ",
        "keel run composed.toml",
        "keel run shared.toml",
        "keel run layered.toml",
        "keel inspect ",
        "curl -s ",
    ] {
        ensure!(
            reader.ran.iter().any(|c| c.starts_with(wanted)),
            "the page never runs `{wanted}`"
        );
    }

    // The registry ran with the page's configuration: it stored the
    // pushes where registry.yml says.
    let base = reader.base()?.to_path_buf();
    let repositories = base.join("registry-data/docker/registry/v2/repositories/acme");
    for pushed in ["greeter", "greeter-quota", "hello-greeter"] {
        ensure!(
            repositories.join(pushed).is_dir(),
            "nothing pushed to acme/{pushed} under {}",
            repositories.display()
        );
    }

    // The reader ends with exactly the committed crates and files: what
    // `keel plugin new` wrote and the page did not replace is committed
    // as the scaffold wrote it.
    let committed = files(&docs())?;
    let written = files(&base)?;
    ensure!(
        committed == written,
        "the reader's folder and docs/plugins/ differ:\nreader: {written:?}\ncommitted: {committed:?}"
    );
    for file in &committed {
        let theirs = reader.paged(&std::fs::read_to_string(base.join(file))?);
        let ours = std::fs::read_to_string(docs().join(file))?;
        ensure!(
            theirs == ours,
            "{} differs from what the reader has:\n{theirs}",
            file.display()
        );
    }
    Ok(())
}

#[test]
fn the_readme_links_the_plugins_tutorial() -> Result<()> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    ensure!(
        readme.contains("(docs/plugins.md)"),
        "README.md does not link docs/plugins.md"
    );
    Ok(())
}
