#!/usr/bin/env bash
# The files a pull request changes (BASE...HEAD: since the merge base), NUL-separated on stdout,
# safe for any file name (read them with `xargs -0`). Renames count as the old name deleted and the
# new one added, so a renamed-and-edited file is always listed under its new name.
#   changed_submissions.sh yamls BASE   submission YAMLs added, modified or renamed (not deleted)
#   changed_submissions.sh others BASE  every changed path outside submissions/, deleted ones too
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 yamls|others BASE" >&2; exit 2; }
case $1 in
  yamls) git diff -z --name-only --no-renames --diff-filter=d "$2...HEAD" -- 'submissions/*.yaml' ;;
  others) git diff -z --name-only --no-renames "$2...HEAD" -- . ':(exclude)submissions/' ;;
  *) echo "usage: $0 yamls|others BASE" >&2; exit 2 ;;
esac
