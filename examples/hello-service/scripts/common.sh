# Shared by the hooks: where the service lives and listens. HELLO_PORT and
# HELLO_ROOT let several hosts (or several agents on one machine) run their own copy.
HELLO_PORT="${HELLO_PORT:-8080}"
HELLO_ROOT="${HELLO_ROOT:-}"
APP_DIR="$HELLO_ROOT/opt/hello-service"
PID_FILE="$APP_DIR.pid"
