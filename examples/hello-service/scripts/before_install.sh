#!/bin/sh
. "$(dirname "$0")/common.sh"
mkdir -p "$APP_DIR"
echo "installing $APPLICATION_NAME revision into $APP_DIR ($LIFECYCLE_EVENT)"
