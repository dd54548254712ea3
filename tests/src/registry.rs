//! A real OCI registry for tests: Debian's `docker-registry` (Distribution),
//! one per test, on a loopback port it picks itself, with its storage and
//! configuration in a folder of its own; optionally behind htpasswd basic
//! auth. `make test` installs the package (and `htpasswd`).

use crate::{guest, test_engine};
use anyhow::{Context, Result, bail};
use keel::oci::{OciOptions, PullPolicy, Pushed, Registry as KeelRegistry};
use keel::spec::{ImageRef, RegistrySpec};
use keel::{Host, WorkloadId, WorkloadSpec};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a registry may take to listen and answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running registry; stopped when dropped.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Result<Registry> {
        Registry::spawn(None)
    }

    /// A registry that wants basic auth as `user`/`password` (htpasswd,
    /// bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Result<Registry> {
        Registry::spawn(Some((user, password)))
    }

    fn spawn(auth: Option<(&str, &str)>) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:0\n",
            data.display()
        );
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .context("running htpasswd (apache2-utils; `make test` installs it)")?;
            anyhow::ensure!(output.status.success(), "htpasswd failed");
            std::fs::write(&htpasswd, &output.stdout)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: keel-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        Registry::serve(dir, &config_path, None)
    }

    /// A registry run as a reader would run it: `docker-registry serve
    /// CONFIG` in folder `cwd` (relative storage paths are resolved there),
    /// with `config`'s text except that it must listen on `127.0.0.1:0`.
    pub fn start_as_configured(cwd: &Path, config: &str) -> Result<Registry> {
        anyhow::ensure!(
            config.contains("addr: 127.0.0.1:0"),
            "the configuration must listen on 127.0.0.1:0:\n{config}"
        );
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        Registry::serve(dir, &config_path, Some(cwd))
    }

    /// Starts `docker-registry serve CONFIG` (in `cwd`, if given) and waits
    /// until it answers.
    fn serve(dir: tempfile::TempDir, config_path: &Path, cwd: Option<&Path>) -> Result<Registry> {
        let mut command = Command::new("docker-registry");
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .arg("serve")
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting docker-registry (is it installed? `make test` installs it)")?;
        let stderr = child.stderr.take().context("docker-registry's log")?;
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        match wait_ready(&lines) {
            Ok(port) => Ok(Registry { child, port, dir }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// `127.0.0.1:PORT`, as references write it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:PORT/<repository_and_tag>`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://{}/{repository_and_tag}", self.host())
    }

    /// Where the registry keeps blobs: `sha256:HEX` → its `data` file.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the registry: nothing answers on its port any more.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// keel's settings for this registry: plain HTTP.
    pub fn insecure(&self) -> RegistrySpec {
        RegistrySpec::new(self.host()).with_insecure(true)
    }

    /// Pushes guest `file` to `repo_tag` with keel's library.
    pub async fn push_guest(&self, file: &str, repo_tag: &str) -> Result<Pushed> {
        let client = KeelRegistry::new(OciOptions::default().with_registry(self.insecure()))?;
        let bytes = std::fs::read(guest(file))?;
        client
            .push(&ImageRef::parse(&self.reference(repo_tag))?, &bytes)
            .await
    }
}

/// OCI options with the store in `store`, under `policy`.
pub fn store_options(
    store: &Path,
    policy: PullPolicy,
    registries: Vec<RegistrySpec>,
) -> OciOptions {
    let mut options = OciOptions::default()
        .with_store_dir(store)
        .with_policy(policy);
    options.registries = registries;
    options
}

/// A host serving HTTP on a loopback port, pulling under `oci`.
pub async fn oci_host(oci: OciOptions) -> Result<Host> {
    Host::builder()
        .http_listen("127.0.0.1:0".parse()?)
        .engine_options(test_engine())
        .oci(oci)
        .start()
        .await
}

/// The pull error of a start that must have failed to pull.
pub fn pull_failure(result: Result<WorkloadId, keel::Error>) -> keel::oci::PullError {
    match result {
        Err(keel::Error::Pull(e)) => e,
        other => panic!("expected a pull error, got {other:?}"),
    }
}

/// A one-component workload `oci/NAME` whose component is `reference`.
pub fn from_reference(name: &str, reference: &str) -> Result<WorkloadSpec> {
    let mut spec = WorkloadSpec::single(WorkloadId::new("oci", name), "unused.wasm");
    spec.components[0].source = ImageRef::parse(reference)?.into();
    Ok(spec)
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the log for "listening on 127.0.0.1:PORT", then waits until
/// `GET /v2/` is answered (200, or 401 behind auth).
fn wait_ready(lines: &mpsc::Receiver<String>) -> Result<u16> {
    const LISTENING: &str = "listening on 127.0.0.1:";
    let until = Instant::now() + READY_TIMEOUT;
    let mut log = Vec::new();
    let port = loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => bail!(
                "docker-registry did not listen within {READY_TIMEOUT:?}; log:\n{}",
                log.join("\n")
            ),
        };
        if let Some((_, rest)) = line.split_once(LISTENING) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits
                .parse::<u16>()
                .with_context(|| format!("no port in {line:?}"))?;
        }
        log.push(line);
    };
    let left = until.saturating_duration_since(Instant::now());
    let status = v2_status(port, left)?;
    anyhow::ensure!(status == 200 || status == 401, "GET /v2/ answered {status}");
    Ok(port)
}

/// The status of `GET /v2/` on the registry (a blocking HTTP/1.0 request).
pub fn v2_status(port: u16, timeout: Duration) -> Result<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the registry on port {port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {answer:?}"))?;
    Ok(status)
}

/// A plain-HTTP `oci-client` client, as another tool would push and pull
/// with it (reqwest under it needs the process's TLS provider set first).
pub fn plain_http_client() -> oci_client::Client {
    keel::testing::install_tls_provider();
    oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    })
}
