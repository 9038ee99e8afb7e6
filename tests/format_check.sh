#!/usr/bin/env bash
# Every C++ file in the tree is as clang-format writes it (.clang-format, Debian 12's
# clang-format 14). First shows the check can fail: a misformatted probe must be flagged.
# To fix the tree: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
  echo "format_check: clang-format is not installed (scripts/install-deps.sh)" >&2
  exit 2
fi
if printf 'int  main( ){return 0 ;}\n' |
    "$fmt" --assume-filename=tests/format_probe.cc --dry-run --Werror 2> /dev/null; then
  echo "format_check: clang-format did not flag a misformatted probe" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
                         -path ./.venv -prune -o \( -name '*.cc' -o -name '*.h' \) -print)
fi
if ! "$fmt" --dry-run --Werror "${files[@]}"; then
  echo "format_check: the files above differ from clang-format's output" >&2
  exit 1
fi
echo "format_check: ${#files[@]} files as clang-format writes them"
