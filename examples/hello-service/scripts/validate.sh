#!/bin/sh
# ValidateService: the service must answer with the version this revision installed.
. "$(dirname "$0")/common.sh"
want="hello-service $(cat "$APP_DIR/VERSION")"
i=0
while [ $i -lt 50 ]; do
  got="$(python3 -c "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:$HELLO_PORT/',timeout=1).read().decode().strip())" 2>/dev/null)"
  if [ "$got" = "$want" ]; then echo "validated: $got"; exit 0; fi
  i=$((i + 1)); sleep 0.1
done
echo "expected '$want', got '$got'" >&2
exit 1
