#!/usr/bin/env bash
# README command 1: installs what is missing, builds the release preset and runs the server
# in the foreground (embedded default: grpc://127.0.0.1:9090). Extra arguments go to the server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
export CCACHE_BASEDIR="$root"
[ -f build/release/build.ninja ] || cmake --preset release >/dev/null
cmake --build --preset release --target flame-object-cache
exec build/release/src/server/flame-object-cache "$@"
