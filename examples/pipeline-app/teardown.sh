#!/usr/bin/env bash
# Stops what setup.sh started: the agents and the app copies they run.
#   examples/pipeline-app/teardown.sh [WORK_DIR]
set -uo pipefail
work="${1:-pipeline-demo}"
for pid_file in "$work"/agent*/host/opt/pipeline-app.pid; do
  [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
done
[ -f "$work/agents.pids" ] && xargs -r kill < "$work/agents.pids" 2>/dev/null
exit 0
