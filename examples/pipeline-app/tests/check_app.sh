#!/bin/sh
# The build's tests (POSIX sh, so they run in the smallest build image): the version is
# vN, and the health file is there.
set -e
grep -Eq '^v[0-9]+$' app/VERSION || { echo "app/VERSION must be vN, not '$(cat app/VERSION)'" >&2; exit 1; }
test -s app/HEALTH || { echo "app/HEALTH is missing" >&2; exit 1; }
echo "tests passed for $(cat app/VERSION)"
