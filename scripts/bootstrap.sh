#!/usr/bin/env bash
# Installs everything the build and the tests need; idempotent and quick when all is present.
#   * Debian packages (apt-get) for the C++ toolchain and libraries;
#   * ./.venv with the pinned Python packages of requirements-dev.txt (pyarrow carries Arrow C++).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

debs=(build-essential cmake ninja-build pkg-config python3-venv
      libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libbson-dev
      libgtest-dev libgmock-dev openssl
      libcpp-httplib-dev systemd ccache libxxhash-dev libssl-dev
      nlohmann-json3-dev libgrpc++-dev)
# Only the tests, checks and fuzzing need these (promtool, etcd, headless Chromium for the
# status page, clang for fuzz/ and the thread-safety check, clang-format, clang-tidy).
# libgrpc++-dev (above) is the server's: src/transport/ serves Flight on its callback API.
# FOC_SKIP_TEST_TOOLS=1 (the container build, deploy/Dockerfile) leaves them and versitygw out.
if [ "${FOC_SKIP_TEST_TOOLS:-0}" != 1 ]; then
  debs+=(prometheus etcd-server chromium clang clang-format clang-tidy-14
         libclang-rt-14-dev)
fi
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.requirements-dev.sha256
want="$({ cat requirements-dev.txt; cat python/pyproject.toml 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing pinned Python packages"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  if [ -f python/pyproject.toml ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e ./python
  fi
  echo "$want" > "$stamp"
fi

# Versity S3 Gateway (github.com/versity/versitygw, Apache-2.0): the S3-compatible server the
# tests and bench/ run the s3:// storage engine against (POSIX backend in a temp directory).
# Built once with the Go toolchain into a version-keyed project-local directory and reused;
# the Go module and build caches stay under .tools/ too. FOC_SKIP_VERSITYGW=1 skips it.
versitygw_version=v1.8.0
versitygw_dir="$root/.tools/versitygw-$versitygw_version"
if [ "${FOC_SKIP_VERSITYGW:-0}" != 1 ] && [ "${FOC_SKIP_TEST_TOOLS:-0}" != 1 ] &&
   [ ! -x "$versitygw_dir/bin/versitygw" ]; then
  go_bin="$(command -v go || true)"
  [ -n "$go_bin" ] || [ ! -x /usr/local/go/bin/go ] || go_bin=/usr/local/go/bin/go
  if [ -z "$go_bin" ]; then
    echo "bootstrap: installing golang-go (to build versitygw)"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends golang-go
    go_bin="$(command -v go)"
  fi
  echo "bootstrap: building versitygw $versitygw_version into $versitygw_dir"
  GOPATH="$root/.tools/go" GOMODCACHE="$root/.tools/go/pkg/mod" GOCACHE="$root/.tools/go/cache" \
    GOBIN="$versitygw_dir/bin" GOFLAGS=-buildvcs=false \
    "$go_bin" install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version"
fi
