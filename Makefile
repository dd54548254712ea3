# keel — every common task. `make run` and `make test` set up what they need.
#
#   make run     build the guests and keel, then serve examples/hello on 127.0.0.1:8080
#   make test    set up (wasm target, nats-server) and run the whole test suite
#   make build   leave the release binary at target/release/keel
#   make bench   benchmarks (not part of `make test`): the anchors, then cargo bench
#   make bench-quick    keel against wasmtime serve and a native floor, in minutes
#   make bench-anchors  the same, full length (results in bench/results/)
#   make bench-compare BASE=<git rev>   this tree's keel against BASE's, paired
#   make bench-only ONLY=warm|keep-resident|neighbour|start   one setting of this keel, paired
#   make fuzz    cargo fuzz targets, FUZZ_SECONDS each (not part of `make test`)
#   make lint    rustfmt check and clippy with warnings as errors

CARGO ?= cargo
# One target folder for native and guest builds. CI may point this elsewhere
# to keep a warm build between runs.
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
# Built guest components are collected here, whatever CARGO_TARGET_DIR is:
# manifests and tests find them at a fixed place.
GUESTS := $(CURDIR)/target/guests
GUEST_WORKSPACES := plugins-wasm tests/fixtures examples
WASM_OUT := $(CARGO_TARGET_DIR)/wasm32-wasip2/release
TALLY_V0_3 := $(CARGO_TARGET_DIR)/tally-v0-3/wasm32-wasip2/release/tally_plugin.wasm

.PHONY: all setup wasm-target nats-server redis-server docker-registry guests build run test bench bench-tools wasmtime-cli wrk bench-build bench-quick bench-anchors bench-only bench-compare fuzz fuzz-corpus cargo-fuzz lint clean

all: build

setup: wasm-target nats-server redis-server docker-registry

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# nats-server is needed by the NATS tests. Installed from Debian when missing
# and this user may install packages; otherwise those tests say what is missing.
nats-server:
	@if ! command -v nats-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing nats-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; \
	  else \
	    echo "note: nats-server is not installed and cannot be installed here; NATS tests will fail"; \
	  fi; \
	fi

# redis-server is needed by the tests of the keyvalue-redis plugin (each
# starts its own on a loopback port, without persistence), installed the same way.
redis-server:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "note: redis-server is not installed and cannot be installed here; Redis tests will fail"; \
	  fi; \
	fi

# docker-registry (Distribution) and htpasswd (apache2-utils) are needed by
# the OCI registry tests, installed the same way.
docker-registry:
	@if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing docker-registry and apache2-utils (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >/dev/null; \
	  else \
	    echo "note: docker-registry or htpasswd is missing and cannot be installed here; registry tests will fail"; \
	  fi; \
	fi

guests: wasm-target
	@for ws in $(GUEST_WORKSPACES); do \
	  $(CARGO) build --release --target wasm32-wasip2 --manifest-path $$ws/Cargo.toml || exit 1; \
	done
	@# The tally plugin once more, built against acme:tally@0.3.0 for the semver
	@# tests, in a target folder of its own so neither build undoes the other.
	@$(CARGO) build --release --target wasm32-wasip2 --manifest-path tests/fixtures/Cargo.toml \
	  -p tally-plugin --features v0-3 --target-dir $(CARGO_TARGET_DIR)/tally-v0-3
	@mkdir -p $(GUESTS)
	@# Copy only what changed: host/build.rs embeds the built-in plugins and
	@# Cargo watches their modification times, so a needless copy would
	@# rebuild the keel crate.
	@for f in $(WASM_OUT)/*.wasm; do \
	  cmp -s "$$f" "$(GUESTS)/$$(basename "$$f")" || cp "$$f" $(GUESTS)/; \
	done
	@cmp -s $(TALLY_V0_3) $(GUESTS)/tally_plugin_v0_3.wasm || cp $(TALLY_V0_3) $(GUESTS)/tally_plugin_v0_3.wasm

build: guests
	$(CARGO) build --release -p keel --bin keel
	@if [ "$(CARGO_TARGET_DIR)" != "$(CURDIR)/target" ]; then \
	  mkdir -p target/release && cp $(CARGO_TARGET_DIR)/release/keel target/release/keel; fi

run: build
	target/release/keel run examples/hello/app.toml --listen 127.0.0.1:8080

test: setup guests
	$(CARGO) fmt --all --check
	tools/check-layers.sh
	$(CARGO) build -p keel --bin keel
	$(CARGO) test --workspace --no-fail-fast
	@# The guest-side libraries' own unit tests, run natively.
	$(CARGO) test --manifest-path plugins-wasm/Cargo.toml -p keel-names -p keel-jetstream -p keyvalue-nats -p keyvalue-redis

bench: guests bench-anchors
	$(CARGO) bench -p keel-tests

# Side-by-side benchmarks (bench/, README "Performance"). What they need is
# installed here and nowhere else, so `make test` never waits for it: the
# wasmtime CLI at keel's own Wasmtime version (from Cargo.lock), built into
# bench/.tools (git-ignored) only when missing, and wrk from Debian.
WASMTIME_VERSION := $(shell sed -n '/^name = "wasmtime"$$/{n;s/^version = "\(.*\)"$$/\1/p;q;}' Cargo.lock)
BENCH_TOOLS := $(CURDIR)/bench/.tools
WASMTIME_CLI := $(BENCH_TOOLS)/bin/wasmtime
BENCH_DRIVER := $(CARGO_TARGET_DIR)/release/keel-bench
BENCH_ARGS ?=
BENCH_FLAGS = --repo $(CURDIR) --keel $(CARGO_TARGET_DIR)/release/keel \
  --floor $(CARGO_TARGET_DIR)/release/hello-floor --wasmtime $(WASMTIME_CLI) $(BENCH_ARGS)

wasmtime-cli:
	@if ! "$(WASMTIME_CLI)" --version 2>/dev/null | grep -q "^wasmtime $(WASMTIME_VERSION) "; then \
	  echo "building the wasmtime CLI $(WASMTIME_VERSION) into bench/.tools (a long build, once)"; \
	  env -u CARGO_TARGET_DIR $(CARGO) install --locked wasmtime-cli --version $(WASMTIME_VERSION) \
	    --root $(BENCH_TOOLS) || exit 1; \
	fi

wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "error: wrk is not installed and cannot be installed here"; exit 1; \
	  fi; \
	fi

bench-tools: wasmtime-cli wrk

bench-build: guests
	$(CARGO) build --release -p keel --bin keel -p keel-bench

bench-quick: bench-tools bench-build
	$(BENCH_DRIVER) --mode quick $(BENCH_FLAGS)

bench-anchors: bench-tools bench-build
	$(BENCH_DRIVER) --mode full $(BENCH_FLAGS)

# One measurement of this keel alone, no anchors needed:
# ONLY=warm (fresh against warm instances), ONLY=keep-resident, or ONLY=neighbour (hello next to
# a workload spinning 100 invocations), or ONLY=start (process start to first 200 against
# wasmtime serve, 10 interleaved starts); BENCH_ARGS="--keel-base <keel binary>" pairs neighbour
# or start with an earlier build (e.g. bench/.tools/keel-base from bench-compare); results in
# bench/results/$(ONLY).md.
ONLY ?= warm
bench-only: wrk bench-build $(if $(filter start,$(ONLY)),wasmtime-cli)
	$(BENCH_DRIVER) --mode quick $(BENCH_FLAGS) --only $(ONLY)

# keel at BASE (any git revision) against this tree, paired round by round:
# BASE is built (its own built-in plugins included) in a worktree under
# bench/.base with the same target folder, so only keel's own crates rebuild,
# and its binary is kept as bench/.tools/keel-base (keel's own crates build
# twice, a few minutes: both trees give them the same artifact names). Both
# builds serve this tree's examples.
# BENCH_MODE=quick for a short run; results in bench/results/compare.{md,json}.
BENCH_MODE ?= full
bench-compare: wrk guests
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=<git rev>"; exit 1; }
	@git worktree remove --force bench/.base 2>/dev/null; rm -rf bench/.base
	git worktree add --detach bench/.base $(BASE)
	$(MAKE) -C bench/.base guests
	cd bench/.base && $(CARGO) build --release -p keel --bin keel
	@mkdir -p $(BENCH_TOOLS) && cp $(CARGO_TARGET_DIR)/release/keel $(BENCH_TOOLS)/keel-base
	@git worktree remove --force bench/.base
	$(CARGO) build --release -p keel --bin keel -p keel-bench
	$(BENCH_DRIVER) --mode $(BENCH_MODE) $(BENCH_FLAGS) --keel-base $(BENCH_TOOLS)/keel-base

# Fuzzing: the cargo-fuzz targets in fuzz/ (a workspace of its own, built in
# fuzz/target, so ordinary builds never see its instrumentation), each run
# for FUZZ_SECONDS; `make fuzz FUZZ_TARGETS=manifest FUZZ_SECONDS=600` picks.
# Corpora grow in fuzz/corpus/<target>, crashes land in fuzz/artifacts/.
#
# Toolchain: this runs on the stable toolchain, no nightly needed. cargo fuzz
# instruments with stable rustc flags only (-Cpasses=sancov-module and
# -Cllvm-args=-sanitizer-coverage-*) as long as no sanitizer is asked for:
# hence `--sanitizer none`. Its default, AddressSanitizer, needs
# `-Zsanitizer=address`, which stable refuses (RUSTC_BOOTSTRAP=1 would
# unlock it, at the price of a second full instrumented build); keel's
# parsers are safe Rust, where a panic or a failed assertion is the finding.
# `--codegen-units 16` keeps the first build (Wasmtime included, about half
# an hour on two cores) bearable; debug assertions and overflow checks stay on.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= manifest subjects names policy bake inspect ingress
FUZZ_BUILD_FLAGS := --sanitizer none --codegen-units 16 --target-dir $(CURDIR)/fuzz/target

cargo-fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz-corpus: guests
	@fuzz/seed-corpus.sh

fuzz: cargo-fuzz fuzz-corpus
	@for t in $(FUZZ_TARGETS); do \
	  dict=""; [ -f fuzz/dict/$$t.dict ] && dict="-dict=$(CURDIR)/fuzz/dict/$$t.dict"; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(CARGO) fuzz run $(FUZZ_BUILD_FLAGS) $$t $(CURDIR)/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict || exit 1; \
	done

lint:
	$(CARGO) fmt --all --check
	tools/check-layers.sh
	$(CARGO) fmt --manifest-path plugins-wasm/Cargo.toml --all --check
	$(CARGO) fmt --manifest-path tests/fixtures/Cargo.toml --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(GUESTS)
