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
    echo "installing Forgeline into $VENV (log: $VENV/install.log)" >&2
    "$VENV/bin/pip" install --upgrade pip >"$VENV/install.log" 2>&1 || true
    if ! "$VENV/bin/pip" install -e "$ROOT${extras:+[$extras]}" >>"$VENV/install.log" 2>&1; then
      tail -n 30 "$VENV/install.log" >&2
      return 1
    fi
    touch "$stamp"
  fi
}
