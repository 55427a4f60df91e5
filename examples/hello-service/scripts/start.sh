#!/bin/sh
. "$(dirname "$0")/common.sh"
# Detach fully (no inherited stdout/stderr) or the agent waits on the open pipes.
HELLO_PORT="$HELLO_PORT" nohup python3 "$APP_DIR/server.py" >/dev/null 2>&1 </dev/null &
echo $! > "$PID_FILE"
echo "started hello-service on port $HELLO_PORT"
