#!/usr/bin/env bash
# Install AWS CLI v2 into <repo>/.cache/awscli-v2 (the tests use it for `aws logs tail`,
# which CLI v1 lacks). The CLI v2 is not on PyPI; the npm package @aws-cdk/asset-awscli-v2
# ships AWS's own Linux x86_64 build of it (a self-contained executable with its
# libraries) as a Lambda layer zip, which we unpack.
# Idempotent: does nothing when the pinned version is already installed.
# Prints the path of the `aws` executable last.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.cache/awscli-v2"
PACKAGE_VERSION="2.0.186" # @aws-cdk/asset-awscli-v2; contains aws-cli 2.36.12
BIN="$PREFIX/bin/aws"
STAMP="$PREFIX/.installed-from"

if [ "$(uname -m)" != "x86_64" ]; then
  echo "AWS CLI v2 from @aws-cdk/asset-awscli-v2 is built for x86_64 only" >&2
  exit 1
fi

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$PACKAGE_VERSION" ] \
  && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "@aws-cdk/asset-awscli-v2@$PACKAGE_VERSION" >/dev/null)
tar -xzf "$WORK"/aws-cdk-asset-awscli-v2-*.tgz -C "$WORK" package/lib/layer.zip

# Unpack only the CLI's dist/ directory, keeping file modes (zipfile alone drops them).
rm -rf "$PREFIX"
mkdir -p "$PREFIX/bin"
python3 - "$WORK/package/lib/layer.zip" "$PREFIX/dist" <<'EOF'
import os
import re
import sys
import zipfile

layer, target = sys.argv[1], sys.argv[2]
dist = re.compile(r"awscli/v2/[^/]+/dist/(.+)")
with zipfile.ZipFile(layer) as archive:
    for info in archive.infolist():
        match = dist.fullmatch(info.filename)
        if match is None or info.is_dir():
            continue
        path = os.path.join(target, match.group(1))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = (info.external_attr >> 16) & 0o777
        if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink: the data is its target
            os.symlink(archive.read(info).decode(), path)
            continue
        with archive.open(info) as source, open(path, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        os.chmod(path, mode or 0o644)
EOF
ln -sf ../dist/aws "$BIN"
"$BIN" --version >/dev/null
echo "$PACKAGE_VERSION" >"$STAMP"
echo "$BIN"
