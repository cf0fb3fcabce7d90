#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (preset `fuzz`: clang, ASan + UBSan) and runs each
# for FOC_FUZZ_SECONDS seconds (default 20) from its committed corpus fuzz/corpus/<target>/.
# New inputs go to a scratch directory (build/fuzz/corpus-new/<target>/), not into the
# repository; a crash stops the run with the reproducer's path (fuzz/README in docs/fuzzing.md).
#   scripts/fuzz.sh                       # every target, 20 s each (scripts/test.sh runs this)
#   FOC_FUZZ_SECONDS=3600 scripts/fuzz.sh fuzz_object_file   # a longer run of one target
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CCACHE_BASEDIR="$root"
seconds="${FOC_FUZZ_SECONDS:-20}"
targets=("$@")
((${#targets[@]})) || targets=(fuzz_key fuzz_object_file fuzz_upload_batch fuzz_config fuzz_flight_data)
[ -f build/fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${FOC_JOBS:-$(nproc)}" --target "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  scratch="build/fuzz/corpus-new/$t"
  artifacts="build/fuzz/artifacts/$t/"
  mkdir -p "$scratch" "$artifacts"
  echo "=== fuzz $t (${seconds} s) ==="
  # -rss_limit_mb: the sanitizers plus Arrow's allocations stay far below; a leak or a
  # runaway allocation is a finding. -timeout: one input taking 10 s is a finding too.
  if ! "build/fuzz/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$scratch" "fuzz/corpus/$t" \
      >"build/fuzz/$t.log" 2>&1; then
    tail -n 60 "build/fuzz/$t.log"
    echo "fuzz $t: FAILED (reproducer in $artifacts, log build/fuzz/$t.log)"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "build/fuzz/$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
