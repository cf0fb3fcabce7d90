#!/usr/bin/env bash
# Installs flame-object-cache from a build tree:
#   <prefix>/bin/flame-object-cache        (RUNPATH $ORIGIN/../lib, via cmake --install)
#   <prefix>/lib/libarrow*.so.<N>          (the Arrow libraries the binary loads from outside
#                                           the system library directories, found with ldd)
#   <prefix>/conf/flame-cluster.yaml       (kept if it exists)
#   <prefix>/data/cache, <prefix>/logs
#   /etc/systemd/system/flame-object-cache.service
#
# Usage: deploy/install.sh [--prefix DIR] [--build-dir DIR] [--destdir DIR] [--user NAME]
#                          [--enable] [--no-systemd]
#   --prefix     install prefix (default /usr/local/flame)
#   --build-dir  configured and built CMake tree (default build/release)
#   --destdir    stage everything under DIR (packaging, tests); implies no user creation and
#                no systemctl calls
#   --user       service account (default flame; created with useradd when missing and root)
#   --enable     systemctl daemon-reload, enable --now, wait until active (needs systemd)
#   --no-systemd do not install the unit
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=/usr/local/flame
build="$root/build/release"
destdir=""
user=flame
enable=0
systemd=1
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --build-dir) build="$(cd "$2" && pwd)"; shift 2 ;;
    --destdir) destdir="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --enable) enable=1; shift ;;
    --no-systemd) systemd=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
binary="$build/src/server/flame-object-cache"
[ -x "$binary" ] || { echo "install.sh: $binary missing: build first (cmake --build --preset release)" >&2; exit 1; }

dest="$destdir$prefix"
echo "install.sh: installing into $dest"
DESTDIR="$destdir" cmake --install "$build" --prefix "$prefix" >/dev/null
install -d -m 0755 "$dest/bin" "$dest/lib" "$dest/conf"
install -d -m 0750 "$dest/data" "$dest/data/cache" "$dest/logs"

# Arrow (and anything else) the binary resolves outside the system library directories.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
  case "$path" in /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) continue ;; esac
  install -m 0644 "$(readlink -f "$path")" "$dest/lib/$soname"
  echo "install.sh: bundled $soname"
done

if [ ! -f "$dest/conf/flame-cluster.yaml" ]; then
  sed "s|@PREFIX@|$prefix|g" "$root/deploy/flame-cluster.yaml" > "$dest/conf/flame-cluster.yaml"
  chmod 0644 "$dest/conf/flame-cluster.yaml"
fi

if ((systemd)); then
  install -d "$destdir/etc/systemd/system"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@USER@|$user|g" "$root/deploy/systemd/flame-object-cache.service" \
    > "$destdir/etc/systemd/system/flame-object-cache.service"
  chmod 0644 "$destdir/etc/systemd/system/flame-object-cache.service"
fi

if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
  if ! id "$user" >/dev/null 2>&1; then
    useradd --system --home-dir "$prefix" --no-create-home --shell /usr/sbin/nologin "$user"
  fi
  chown -R "$user:$user" "$dest/data" "$dest/logs"
fi

"$dest/bin/flame-object-cache" --version >/dev/null   # the installed binary loads its libraries
"$dest/bin/flame-object-cache" --check-config --config "$dest/conf/flame-cluster.yaml" >/dev/null

if ((enable)); then
  if [ -n "$destdir" ] || ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
    echo "install.sh: --enable needs a running systemd and no --destdir" >&2; exit 1
  fi
  systemctl daemon-reload
  systemctl enable --now flame-object-cache.service
  for _ in $(seq 15); do
    systemctl is-active --quiet flame-object-cache.service && { echo "install.sh: flame-object-cache is active"; exit 0; }
    sleep 1
  done
  systemctl status --no-pager flame-object-cache.service || true
  journalctl -u flame-object-cache.service -n 20 --no-pager || true
  exit 1
fi
echo "install.sh: done"
