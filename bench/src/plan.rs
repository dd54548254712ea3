//! What is measured against what: the anchors (keel against `wasmtime
//! serve` and the native floor) or two keel builds against each other
//! (`--keel-base`, for before/after runs of a change to keel).

use crate::scenarios::{Argv, IdleTarget, LoadTarget};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths and flags of everything the plan starts.
pub struct Tools {
    /// The keel binary measured.
    pub keel: PathBuf,
    /// An earlier keel to compare with, instead of the anchors.
    pub keel_base: Option<PathBuf>,
    /// Extra arguments to `keel run` (both builds).
    pub keel_args: Vec<String>,
    /// The `wasmtime` CLI.
    pub wasmtime: PathBuf,
    /// Extra arguments to `wasmtime serve`.
    pub wasmtime_args: Vec<String>,
    /// The `hello-floor` binary.
    pub floor: PathBuf,
    /// The hello component.
    pub hello_wasm: PathBuf,
    /// The manifest serving hello.
    pub hello_manifest: PathBuf,
    /// The manifest serving the counter.
    pub counter_manifest: PathBuf,
    /// Scratch space: the compile cache, generated manifests, logs.
    pub work: PathBuf,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Tools {
    fn keel_argv(&self, keel: &Path, manifest: &Path) -> Argv {
        let (keel, manifest, cache) = (s(keel), s(manifest), s(&self.work.join("cache")));
        let extra = self.keel_args.clone();
        Box::new(move |addr| {
            let mut argv = vec![
                keel.clone(),
                "run".into(),
                manifest.clone(),
                "--listen".into(),
                addr.to_string(),
            ];
            argv.extend(["--cache-dir".into(), cache.clone()]);
            argv.extend(extra.iter().cloned());
            argv
        })
    }

    /// A manifest serving hello with 32 warm instances (written into the
    /// scratch folder; the path is where it is, written or not: a failed
    /// write shows as that target's start failing).
    fn warm_hello_manifest(&self) -> PathBuf {
        let path = self.work.join("hello-warm.toml");
        let text = format!(
            "[[workload]]\nnamespace = \"examples\"\nname = \"hello\"\n\n\
             [[workload.component]]\nname = \"hello\"\npath = {:?}\npool_size = 32\n",
            s(&self.hello_wasm)
        );
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("writing {}: {e}", path.display());
        }
        path
    }

    fn wasmtime_argv(&self, file: &Path, precompiled: bool) -> Argv {
        let (wasmtime, file) = (s(&self.wasmtime), s(file));
        let extra = self.wasmtime_args.clone();
        Box::new(move |addr| {
            // `-Scli`: keel's guests, hello included, import `wasi:cli`
            // (environment, exit, stdio), which keel links for every guest
            // and `wasmtime serve` only when asked.
            let mut argv = vec![
                wasmtime.clone(),
                "serve".into(),
                "-Scli".into(),
                "--addr".into(),
                addr.to_string(),
            ];
            if precompiled {
                argv.push("--allow-precompiled".into());
            }
            argv.extend(extra.iter().cloned());
            argv.push(file.clone());
            argv
        })
    }

    /// The builds compared: `(label, binary)`, the one measured last.
    fn keels(&self) -> Vec<(&'static str, PathBuf)> {
        let mut keels = Vec::new();
        if let Some(base) = &self.keel_base {
            keels.push(("base", base.clone()));
        }
        keels.push(("keel", self.keel.clone()));
        keels
    }

    /// Servers under HTTP load. Anchors: the hyper floor, keel hello,
    /// `wasmtime serve` hello, keel counter. Against a base: hello and
    /// counter on each build.
    pub fn load_targets(&self) -> Vec<LoadTarget> {
        let mut targets = Vec::new();
        if self.keel_base.is_none() {
            let floor = s(&self.floor);
            targets.push(LoadTarget {
                label: "hyper floor".into(),
                argv: Box::new(move |addr| {
                    vec![floor.clone(), "--listen".into(), addr.to_string()]
                }),
            });
        }
        for (label, keel) in self.keels() {
            targets.push(LoadTarget {
                label: format!("{label} hello"),
                argv: self.keel_argv(&keel, &self.hello_manifest),
            });
        }
        if self.keel_base.is_none() {
            targets.push(LoadTarget {
                label: "wasmtime serve hello".into(),
                argv: self.wasmtime_argv(&self.hello_wasm, false),
            });
            // Warm instances opted in (`pool_size`): the same hello, its
            // instances kept between requests.
            targets.push(LoadTarget {
                label: "keel hello (warm instances)".into(),
                argv: self.keel_argv(&self.keel, &self.warm_hello_manifest()),
            });
        }
        for (label, keel) in self.keels() {
            targets.push(LoadTarget {
                label: format!("{label} counter"),
                argv: self.keel_argv(&keel, &self.counter_manifest),
            });
        }
        targets
    }

    /// Servers timed from start to first 200: keel with a warm cache against
    /// `wasmtime serve --allow-precompiled` on a `wasmtime compile`d file
    /// (compiled here), or the two keel builds.
    pub fn start_targets(&self) -> Result<Vec<LoadTarget>> {
        self.start_targets_of(self.keel_base.is_none())
    }

    /// Starts measured for `--only start`: every keel build, and `wasmtime
    /// serve --allow-precompiled` even against a base.
    pub fn start_targets_with_anchor(&self) -> Result<Vec<LoadTarget>> {
        self.start_targets_of(true)
    }

    fn start_targets_of(&self, anchor: bool) -> Result<Vec<LoadTarget>> {
        let mut targets: Vec<LoadTarget> = self
            .keels()
            .into_iter()
            .map(|(label, keel)| LoadTarget {
                label: format!("{label} (warm cache)"),
                argv: self.keel_argv(&keel, &self.hello_manifest),
            })
            .collect();
        if anchor {
            let cwasm = self.work.join("hello.cwasm");
            let status = Command::new(&self.wasmtime)
                .arg("compile")
                .arg(&self.hello_wasm)
                .arg("-o")
                .arg(&cwasm)
                .status()
                .context("running wasmtime compile")?;
            anyhow::ensure!(status.success(), "wasmtime compile failed: {status}");
            targets.push(LoadTarget {
                label: "wasmtime serve --allow-precompiled".into(),
                argv: self.wasmtime_argv(&cwasm, true),
            });
        }
        Ok(targets)
    }

    /// keel hosts with 1, 100, 1,000 … idle hello workloads, from manifests
    /// written to the scratch folder.
    pub fn idle_targets(&self, counts: &[usize]) -> Result<Vec<IdleTarget>> {
        for &n in counts {
            let path = self.idle_manifest(n);
            std::fs::write(&path, idle_manifest(&self.hello_wasm, n))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let mut targets = Vec::new();
        for (label, keel) in self.keels() {
            let (keel, cache) = (s(&keel), s(&self.work.join("cache")));
            let work = self.work.clone();
            let extra = self.keel_args.clone();
            targets.push(IdleTarget {
                label: label.to_string(),
                argv: Box::new(move |addr, n| {
                    let manifest = s(&work.join(format!("idle-{n}.toml")));
                    let mut argv = vec![
                        keel.clone(),
                        "run".into(),
                        manifest,
                        "--listen".into(),
                        addr.to_string(),
                    ];
                    argv.extend(["--cache-dir".into(), cache.clone()]);
                    argv.extend(extra.iter().cloned());
                    argv
                }),
            });
        }
        Ok(targets)
    }

    fn idle_manifest(&self, n: usize) -> PathBuf {
        self.work.join(format!("idle-{n}.toml"))
    }
}

/// `n` hello workloads, each serving its own host name `w{i}.bench.local`.
fn idle_manifest(hello: &Path, n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "[[workload]]\nnamespace = \"bench\"\nname = \"w{i}\"\n\n[workload.http]\nhost = \"w{i}.bench.local\"\n\n\
             [[workload.component]]\nname = \"hello\"\npath = {:?}\n\n",
            s(hello)
        );
    }
    text
}
