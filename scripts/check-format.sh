#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what the repository's .clang-format makes of it.
# The formatter is Debian bookworm's clang-format 14 (installed by scripts/bootstrap.sh): other
# versions format some constructs differently, so the check runs only with that major version.
# Fix a failure with:  git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
want=14
have="$(clang-format --version | sed -E 's/.*version ([0-9]+).*/\1/')"
if [ "$have" != "$want" ]; then
  echo "check-format: clang-format $have found, the tree is formatted with $want" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cc' '*.h')
if ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "check-format: the files above are not formatted (git ls-files '*.cc' '*.h' | xargs clang-format -i)" >&2
  exit 1
fi
echo "check-format: ${#files[@]} C++ files formatted"
