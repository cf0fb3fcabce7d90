#!/usr/bin/env bash
# clang-tidy (Debian's clang-tidy-14) with the checks of .clang-tidy over the server and
# client sources under src/ (not the *_test.cc files), as the release build compiles them
# (build/release/compile_commands.json). Every finding is an error.
#
#   scripts/check-tidy.sh                 every source file under src/
#   scripts/check-tidy.sh src/cache ...   only these folders or files
#   FOC_TIDY_JOBS=N                       parallel clang-tidy processes (default 2)
#
# Cost (docs/benchmarks.md, "Static checks"): each file is parsed in full with Arrow's and
# gRPC's headers, so the whole of src/ takes minutes; scripts/test.sh runs it once per run.
set -euo pipefail
cd "$(dirname "$0")/.."
db=build/release/compile_commands.json
[[ -f "$db" ]] || { echo "check-tidy: $db missing (build the release preset first)" >&2; exit 2; }
command -v run-clang-tidy-14 >/dev/null || { echo "check-tidy: run-clang-tidy-14 missing (apt-get install clang-tidy-14; scripts/bootstrap.sh does)" >&2; exit 2; }
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(src)
mapfile -t files < <(python3 - "$db" "${targets[@]}" <<'PY'
import json, os, sys
db, targets = sys.argv[1], [t.rstrip("/") for t in sys.argv[2:]]
root = os.getcwd()
seen = set()
for e in json.load(open(db)):
    rel = os.path.relpath(e["file"], root)
    if rel in seen or rel.endswith("_test.cc") or not rel.startswith("src/"):
        continue
    if any(rel == t or rel.startswith(t + "/") for t in targets):
        seen.add(rel)
        print(os.path.join(root, rel))
PY
)
[[ ${#files[@]} -gt 0 ]] || { echo "check-tidy: no files under ${targets[*]}" >&2; exit 2; }
start=$(date +%s)
status=0
# run-clang-tidy takes regular expressions: anchor each path.
run-clang-tidy-14 -quiet -p build/release -j "${FOC_TIDY_JOBS:-2}" \
  "${files[@]/#/^}" >/tmp/check-tidy.$$ 2>&1 || status=1
grep -E "(warning|error):" /tmp/check-tidy.$$ | grep -v "^Suppressed" | sort -u || true
rm -f /tmp/check-tidy.$$
echo "check-tidy: ${#files[@]} files, $(( $(date +%s) - start )) s, $([ $status = 0 ] && echo clean || echo FINDINGS)"
exit $status
