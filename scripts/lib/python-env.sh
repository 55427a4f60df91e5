# shellcheck shell=bash
# Shared by scripts/run and scripts/test: a virtualenv in $ROOT/.venv with Forgeline installed.
#
# The installer is uv (from PyPI): it makes the virtualenv and installs the whole project in
# a few seconds where venv + pip take about forty, which was most of a new user's wait for
# the first answer. uv itself is fetched once into $VENV/.uv with the system's pip; plain
# venv + pip remain the fallback when that cannot be done.
VENV="${FORGELINE_VENV:-$ROOT/.venv}"
UV="$VENV/.uv/bin/uv"
# Trust the machine's certificate store, as pip does (a proxy's CA lives there).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}" UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

_step() { printf 'forgeline: %s\n' "$*" >&2; }

_ensure_uv() {
  # FORGELINE_INSTALLER=pip skips uv (bench/first_run.py compares the two).
  [ "${FORGELINE_INSTALLER:-uv}" = uv ] || return 1
  [ -x "$UV" ] || python3 -m pip install -q --disable-pip-version-check --target "$VENV/.uv" uv >>"$1" 2>&1 || true
  [ -x "$UV" ]
}

_create_venv() {
  local log="$1"
  # --seed puts pip into the virtualenv too, for users who add packages with it.
  if _ensure_uv "$log" && "$UV" venv -q --seed --allow-existing --python "$(command -v python3)" "$VENV" >>"$log" 2>&1; then
    return 0
  fi
  _step "uv is not available; using python3 -m venv and pip (slower)"
  python3 -m venv "$VENV" >>"$log" 2>&1
}

_install_project() {
  local target="$1" log="$2"
  if _ensure_uv "$log" && "$UV" pip install --python "$VENV/bin/python" -e "$target" >>"$log" 2>&1; then
    return 0
  fi
  "$VENV/bin/python" -m pip install -e "$target" >>"$log" 2>&1
}

ensure_venv() {
  local extras="${1:-}"
  local stamp="$VENV/.forgeline-installed${extras:+-$extras}"
  local started=$SECONDS
  local log="$VENV/install.log"
  mkdir -p "$VENV"
  if [ ! -x "$VENV/bin/python" ]; then
    _step "first run: creating $VENV (log: $log)"
    : >"$log"
    _create_venv "$log" || { tail -n 30 "$log" >&2; return 1; }
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    _step "installing Forgeline${extras:+ [$extras]} and its dependencies (log: $log)"
    if ! _install_project "$ROOT${extras:+[$extras]}" "$log"; then
      tail -n 30 "$log" >&2
      return 1
    fi
    touch "$stamp"
    _step "installed in $((SECONDS - started)) s"
  fi
}
