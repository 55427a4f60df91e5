#!/bin/sh
. "$(dirname "$0")/common.sh"
# A copy a failed deployment left running would keep the port (a failed revision's
# ApplicationStop never runs): stop it first.
stop_running_copy
# Detached (no inherited stdout/stderr), or the agent waits on the open pipes.
PIPELINE_APP_PORT="$PIPELINE_APP_PORT" nohup python3 "$APP_DIR/server.py" >/dev/null 2>&1 </dev/null &
echo $! > "$PID_FILE"
echo "started pipeline-app $(cat "$APP_DIR/VERSION") on port $PIPELINE_APP_PORT"
