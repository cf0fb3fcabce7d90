#!/usr/bin/env bash
# Style and types of the Python SDK (python/): `ruff check` with the rules of python/pyproject.toml
# and `mypy --strict` on python/flame_object_cache, both pinned in requirements-dev.txt.
# Run by scripts/test.sh next to scripts/check-format.sh; run it alone after scripts/bootstrap.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/python"
status=0
"$root/.venv/bin/ruff" check --no-cache . || status=1
"$root/.venv/bin/mypy" --no-incremental || status=1
if [ "$status" -eq 0 ]; then
  echo "check-python: ruff and mypy --strict clean"
else
  echo "check-python: fix the findings above (config: python/pyproject.toml)" >&2
fi
exit $status
