#!/bin/sh
# ApplicationStop: runs from the previous revision; stopping nothing is fine.
. "$(dirname "$0")/common.sh"
if [ -f "$PID_FILE" ]; then
  kill "$(cat "$PID_FILE")" 2>/dev/null || true
  rm -f "$PID_FILE"
fi
echo "stopped hello-service for $DEPLOYMENT_ID"
