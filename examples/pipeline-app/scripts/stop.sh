#!/bin/sh
# ApplicationStop: runs the previous revision's copy of this script; nothing to stop is fine.
. "$(dirname "$0")/common.sh"
stop_running_copy
echo "stopped pipeline-app for $DEPLOYMENT_ID"
