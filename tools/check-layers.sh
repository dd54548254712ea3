#!/usr/bin/env bash
# Checks that the keel crate's modules depend one way: a module may use
# modules of its own layer or below, never one above. The layers, lowest
# first, are the table below (also drawn in README's "Architecture").
# Doc comments are skipped: a doc link to a higher module is a reference
# for the reader, not a dependency.
set -euo pipefail
cd "$(dirname "$0")/../host/src"

layer_of() {
  case "$1" in
    policy) echo 0 ;;
    spec) echo 1 ;;
    manifest) echo 2 ;;
    budget|trap|logging|pool) echo 3 ;;
    engine) echo 4 ;;
    cache|oci) echo 5 ;;
    outgoing) echo 6 ;;
    core_api) echo 7 ;;
    store) echo 8 ;;
    plugins) echo 9 ;;
    services) echo 10 ;;
    workload) echo 11 ;;
    http) echo 12 ;;
    error) echo 13 ;;
    host) echo 14 ;;
    fleet) echo 15 ;;
    cli) echo 16 ;;
    testing) echo 17 ;;
    *) echo "" ;;
  esac
}

status=0
for file in $(find . -name '*.rs' | sort); do
  path=${file#./}
  module=${path%%/*}
  module=${module%.rs}
  case "$module" in lib|main) continue ;; esac
  own=$(layer_of "$module")
  if [ -z "$own" ]; then
    echo "tools/check-layers.sh: host/src/$path: module \`$module\` has no layer; add it to the table" >&2
    status=1
    continue
  fi
  # Every `crate::<module>` outside comments, with its line number.
  while IFS=: read -r line used; do
    [ -z "$used" ] && continue
    theirs=$(layer_of "$used")
    if [ -z "$theirs" ]; then
      continue
    fi
    if [ "$theirs" -gt "$own" ]; then
      echo "host/src/$path:$line: \`$module\` (layer $own) uses \`crate::$used\` (layer $theirs), a layer above it" >&2
      status=1
    fi
  done < <(awk '!/^[[:space:]]*\/\// {
      while (match($0, /crate::(\{[^}]*\}|[a-z_]+)/)) {
        m = substr($0, RSTART + 7, RLENGTH - 7); $0 = substr($0, RSTART + RLENGTH)
        gsub(/[{}]/, "", m); n = split(m, parts, /,[[:space:]]*/)
        for (k = 1; k <= n; k++) { sub(/::.*/, "", parts[k]); if (parts[k] != "") print NR ":" parts[k] }
      }
    }' "$file")
done
if [ "$status" -eq 0 ]; then
  echo "module layers: every use points down"
fi
exit "$status"
