#!/bin/sh
. "$(dirname "$0")/common.sh"
# A copy left running by a deployment that failed would keep the port: a failed revision's
# ApplicationStop never runs (the agent runs the last successful revision's). Stop it first.
if [ -f "$PID_FILE" ]; then
  old="$(cat "$PID_FILE")"
  kill "$old" 2>/dev/null || true
  i=0
  while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
fi
# Detach fully (no inherited stdout/stderr) or the agent waits on the open pipes.
HELLO_PORT="$HELLO_PORT" nohup python3 "$APP_DIR/server.py" >/dev/null 2>&1 </dev/null &
echo $! > "$PID_FILE"
echo "started hello-service on port $HELLO_PORT"
