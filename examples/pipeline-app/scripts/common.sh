# Shared by the hooks: where the app lives and listens. PIPELINE_APP_ROOT and
# PIPELINE_APP_PORT let several agents on one machine run their own copy.
PIPELINE_APP_PORT="${PIPELINE_APP_PORT:-8080}"
PIPELINE_APP_ROOT="${PIPELINE_APP_ROOT:-}"
APP_DIR="$PIPELINE_APP_ROOT/opt/pipeline-app"
PID_FILE="$APP_DIR.pid"

stop_running_copy() {
  if [ -f "$PID_FILE" ]; then
    old="$(cat "$PID_FILE")"
    kill "$old" 2>/dev/null || true
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
    rm -f "$PID_FILE"
  fi
}
