#!/usr/bin/env bash
# Regenerates the golden wire samples of tests/wire/ from our encoders (protocol/): builds
# wire_samples_test (release preset) and runs it in write mode. Run it only when a wire
# encoding changes on purpose, and say why in the commit: the samples exist so that such a
# change is never silent (src/protocol/wire_samples_test.cc, tests/python/test_wire_samples.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"
[ -f build/release/build.ninja ] || cmake --preset release >/dev/null
cmake --build --preset release -j "${FOC_JOBS:-2}" --target wire_samples_test
FOC_WIRE_WRITE=1 build/release/src/protocol/wire_samples_test \
  --gtest_filter=WireSamplesTest.EncodersProduceTheCommittedBytes
ls -l tests/wire
