#!/bin/sh
# The worker container starts as root only for what needs root, then runs as `forgeline`
# (uid 10001, the owner of /data) with the Docker socket's group added, whatever gid the
# host gave that socket.
set -eu

if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi

case "$*" in
    # Image builds stay root: `images build standard` runs debootstrap, which needs root,
    # and the Docker socket grants root on the host anyway.
    "forgeline images"*) exec "$@" ;;
esac

# Docker creates a missing bind-mount source root-owned; the worker writes builds there.
build_dir="${FORGELINE_BUILD_DIR:-/var/lib/forgeline-builds}"
mkdir -p "$build_dir"
chown forgeline:forgeline "$build_dir"

groups=forgeline
if [ -S /var/run/docker.sock ]; then
    groups="$groups,$(stat -c %g /var/run/docker.sock)"
fi
export HOME=/home/forgeline USER=forgeline
exec setpriv --reuid=forgeline --regid=forgeline --groups="$groups" -- "$@"
