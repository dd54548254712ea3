#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds taken from the repository: the
# small text seeds kept in fuzz/seeds/, the example manifests, the manifest
# texts written in the tests, and the built guests (run `make guests` first;
# they are not kept in git). Adds to what earlier runs found; never deletes.
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz")
corpus=$fuzz/corpus
guests=$root/target/guests

for target in manifest subjects names policy bake inspect ingress; do
  mkdir -p "$corpus/$target"
  if [ -d "$fuzz/seeds/$target" ]; then
    cp "$fuzz/seeds/$target"/* "$corpus/$target/"
  fi
done

for app in "$root"/examples/*/app.toml; do
  cp "$app" "$corpus/manifest/example-$(basename "$(dirname "$app")").toml"
done

# Manifest texts from the tests: the Rust string literals that hold a
# manifest table, unescaped (format! placeholders stay as they are).
if command -v python3 >/dev/null 2>&1; then
  python3 - "$root" "$corpus/manifest" <<'PY'
import hashlib, pathlib, re, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
literal = re.compile(r'r#"(.*?)"#|"((?:[^"\\]|\\.)*)"', re.S)
escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}
def unescape(text):
    text = re.sub(r"\\\n\s*", "", text)
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), text)
sources = list((root / "tests").glob("**/*.rs")) + list((root / "host/src/manifest").glob("*.rs"))
for source in sources:
    if "fixtures" in source.parts:
        continue
    for m in literal.finditer(source.read_text()):
        text = m.group(1) if m.group(1) is not None else unescape(m.group(2))
        if "[[workload" in text or "[[plugin" in text or "[nats]" in text:
            digest = hashlib.sha1(text.encode()).hexdigest()[:12]
            (out / f"test-{source.stem}-{digest}.toml").write_text(text)
PY
fi

if [ -d "$guests" ]; then
  # Components of every kind the host reads: workloads, plugins, fixtures.
  for name in hello config messaging logging tally_plugin no-http fetch_plugin stream_plugin; do
    if [ -f "$guests/$name.wasm" ]; then cp "$guests/$name.wasm" "$corpus/inspect/"; fi
  done
  # Plugins that hold a baked-config region.
  for name in config logging; do
    if [ -f "$guests/$name.wasm" ]; then cp "$guests/$name.wasm" "$corpus/bake/"; fi
  done
else
  echo "note: $guests is missing (run \`make guests\`): no component seeds" >&2
fi

# A bare baked-config region: marker, capacity 16, length 0, 16 filler bytes.
printf 'prefixKEEL-BAKED-CONFIG-V1\020\0\0\0\0\0\0\0\245\245\245\245\245\245\245\245\245\245\245\245\245\245\245\245suffix' \
  >"$corpus/bake/region.bin"
