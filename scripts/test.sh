#!/usr/bin/env bash
# README command 2: installs what is missing, builds, and runs every test:
#   0. style: clang-format of every C++ file (scripts/check-format.sh), ruff and mypy --strict on
#      the Python SDK (scripts/check-python.sh); clang's thread-safety analysis of the
#      annotated layers (scripts/check-thread-safety.sh, syntax only) and clang-tidy with
#      .clang-tidy's checks (scripts/check-tidy.sh), both from the release compile commands;
#   1. the C++ unit and integration tests under AddressSanitizer + UBSan (ctest, asan preset);
#   2. the Python tests (pytest) against the release build of the real server binary (a
#      test that hangs fails after 900 s: pytest-timeout, a guard, not a speed check);
#   3. a short run of every libFuzzer target (scripts/fuzz.sh, FOC_FUZZ_SECONDS each,
#      default 20 s: 5 targets ≈ 2 min plus their build; the long run is docs/fuzzing.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
export CCACHE_BASEDIR="$root"
jobs="${FOC_JOBS:-$(nproc)}"

for preset in asan release; do
  [ -f "build/$preset/build.ninja" ] || cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
done

status=0
echo "=== style ==="
scripts/check-format.sh || status=1
scripts/check-python.sh || status=1

echo "=== static checks (clang -Wthread-safety, clang-tidy; release compile commands) ==="
scripts/check-thread-safety.sh || status=1
scripts/check-tidy.sh || status=1

echo "=== ctest (asan preset) ==="
ctest --preset asan -j "$jobs" || status=1

echo "=== pytest (release server binary) ==="
export FOC_SERVER_BINARY="$root/build/release/src/server/flame-object-cache"
.venv/bin/python -m pytest -q -ra --timeout=900 tests/python "$@" || status=1

echo "=== fuzz (libFuzzer, ${FOC_FUZZ_SECONDS:-20} s per target) ==="
scripts/fuzz.sh || status=1
exit $status
