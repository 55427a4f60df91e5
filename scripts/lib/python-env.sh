# shellcheck shell=bash
# Shared by scripts/run and scripts/test: a virtualenv in $ROOT/.venv with Forgeline installed.
VENV="${FORGELINE_VENV:-$ROOT/.venv}"

ensure_venv() {
  local extras="${1:-}"
  local stamp="$VENV/.forgeline-installed${extras:+-$extras}"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/pip" install --quiet --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/pip" install --quiet -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  fi
}
