#!/bin/sh
# ValidateService: the app answers its new version (within 20 s: a busy machine starts
# Python slowly), and /health says ok.
. "$(dirname "$0")/common.sh"
fetch() {
  python3 -c "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=1).read().decode().strip())" "$1" 2>/dev/null
}
want="pipeline-app $(cat "$APP_DIR/VERSION")"
i=0
while [ $i -lt 200 ]; do
  got="$(fetch "http://127.0.0.1:$PIPELINE_APP_PORT/")"
  if [ "$got" = "$want" ]; then
    health="$(fetch "http://127.0.0.1:$PIPELINE_APP_PORT/health")"
    if [ "$health" = "ok" ]; then echo "validated: $got"; exit 0; fi
    echo "unhealthy: /health answered '$health'" >&2
    exit 1
  fi
  i=$((i + 1)); sleep 0.1
done
echo "expected '$want', got '$got'" >&2
exit 1
