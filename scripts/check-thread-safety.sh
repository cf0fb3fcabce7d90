#!/usr/bin/env bash
# Clang's thread-safety analysis over the layers whose locks are annotated
# (src/base/mutex.h: foc::Mutex, FOC_GUARDED_BY, FOC_REQUIRES; docs/architecture.md).
#
# Cheapest form that still checks everything: the translation units of those layers, as
# the release build compiles them (build/release/compile_commands.json), parsed again by
# clang++ with -fsyntax-only -Wthread-safety -Werror: no code generation, no objects, no
# link, no second build tree. Header-only templates (cache/lru_cache.h) are checked where
# they are instantiated, which includes their own tests.
#
# Usage: scripts/check-thread-safety.sh [compile_commands.json]  (after a release build)
# Layers are added here as they are annotated; every layer of src/ with locks now is.
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-build/release/compile_commands.json}"
[[ -f "$db" ]] || { echo "check-thread-safety: $db missing (build the release preset first)" >&2; exit 2; }
layers=(src/base src/cache src/client src/flight src/metrics src/config src/cluster src/storage src/store
        src/transport)
exec python3 - "$db" "${layers[@]}" <<'PY'
import concurrent.futures, json, os, shlex, subprocess, sys, time

db, layers = sys.argv[1], sys.argv[2:]
root = os.getcwd()
units = []
for entry in json.load(open(db)):
    rel = os.path.relpath(entry["file"], root)
    if not any(rel.startswith(layer + "/") for layer in layers):
        continue
    # Tests cannot touch guarded (private) members; they matter only where they
    # instantiate an annotated template (src/cache).
    if rel.endswith("_test.cc") and not rel.startswith("src/cache/"):
        continue
    args = shlex.split(entry["command"])
    out, skip = ["clang++"], False
    for a in args[1:]:
        if skip:
            skip = False
        elif a == "-o":
            skip = True
        elif a != "-c":
            out.append(a)
    out += ["-fsyntax-only", "-Wthread-safety", "-Werror"]
    units.append((rel, entry["directory"], out))
# One unit per file (the client library and its static twin compile the same sources).
units = list({rel: (rel, d, a) for rel, d, a in units}.values())

def check(unit):
    rel, directory, args = unit
    p = subprocess.run(args, cwd=directory, capture_output=True, text=True)
    return rel, p.returncode, p.stderr

start, failed = time.time(), 0
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for rel, rc, err in pool.map(check, sorted(units)):
        if rc != 0:
            failed += 1
            sys.stderr.write(f"--- {rel}\n{err}")
print(f"check-thread-safety: {len(units)} files in {' '.join(layers)}, {failed} failed, "
      f"{time.time() - start:.0f} s")
sys.exit(1 if failed else 0)
PY
