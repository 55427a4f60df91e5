#!/usr/bin/env bash
# Install the s3rver S3-compatible test server (version 3) into <repo>/.cache/npm.
# Idempotent: does nothing when a version 3 install is already present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.cache/npm"
BIN="$PREFIX/node_modules/.bin/s3rver"
PACKAGE_JSON="$PREFIX/node_modules/s3rver/package.json"

installed_major() {
  [ -f "$PACKAGE_JSON" ] || return 1
  node -p "require(process.argv[1]).version.split('.')[0]" "$PACKAGE_JSON"
}

if [ -x "$BIN" ] && [ "$(installed_major 2>/dev/null || true)" = "3" ]; then
  echo "s3rver already installed: $BIN"
  exit 0
fi

mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund s3rver@3
echo "s3rver installed: $BIN"
