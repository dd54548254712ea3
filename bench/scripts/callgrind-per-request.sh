#!/usr/bin/env bash
# Instructions one request costs keel, counted by callgrind: repeatable while
# other work runs on the machine, unlike wall time. keel serves WASM (one
# workload, `EXTRA` added to its `[[workload.component]]`, e.g.
# "pool_size = 4") under `valgrind --tool=callgrind` twice, answering FEW
# then MANY sequential GETs on one keep-alive connection; the difference of
# the two totals over MANY - FEW is the cost of one request (start, the
# compile-cache load and exit cancel out). Under valgrind the pooling
# allocator cannot reserve its address space and keel falls back to
# on-demand allocation (it logs so): the figure covers the host's side of a
# request, not the pool's page handling.
#
#   bench/scripts/callgrind-per-request.sh KEEL WASM [FEW] [MANY] [EXTRA]
set -euo pipefail
keel=$1 wasm=$2 few=${3:-50} many=${4:-550} extra=${5:-}
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "work: $work" >&2 || trap 'rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 10000))
cat >"$work/app.toml" <<TOML
[[workload]]
name = "cg"
[workload.limits]
max_instances = 4
[[workload.component]]
path = "$wasm"
$extra
TOML

total() { # requests -> total instructions
  local n=$1 out=$work/cg.$1
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$keel" run "$work/app.toml" --listen "127.0.0.1:$port" --cache-dir "$work/cache" \
    --pool-instances 20 >"$work/log.$n" 2>&1 &
  local pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/log.$n" >&2; exit 1; }
    sleep 0.5
  done
  # Every answer must be a 200, or the count measures something else.
  curl -sf -o /dev/null "http://127.0.0.1:$port/?[1-$n]"
  kill -TERM "$pid"
  wait "$pid" || true
  sed -n 's/^summary: *//p;s/^totals: *//p' "$out" | head -1
}

# One run first so the compile cache is warm for both measured runs.
total 1 >/dev/null
a=$(total "$few")
b=$(total "$many")
echo "$(( (b - a) / (many - few) )) instructions per request ($few: $a, $many: $b)"
