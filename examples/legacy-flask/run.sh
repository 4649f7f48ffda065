#!/usr/bin/env bash
# Starts the legacy Flask app under uWSGI, the development provider (ssokit idp) and ssokit proxy
# in front of the app with CERN's old Shibboleth/ADFS header names, all on 127.0.0.1. Ctrl-C
# stops all three. Ports: APP_PORT (8000), IDP_PORT (4000), PROXY_PORT (4180).
# SSOKIT is the command that runs ssokit (default: npx ssokit, from the repository's install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
APP_PORT=${APP_PORT:-8000}
IDP_PORT=${IDP_PORT:-4000}
PROXY_PORT=${PROXY_PORT:-4180}
read -r -a ssokit <<<"${SSOKIT:-npx --no-install ssokit}"

for need in uwsgi:uwsgi uwsgi_python311:uwsgi-plugin-python3 curl:curl; do
  if ! command -v "${need%%:*}" >/dev/null; then
    echo "run.sh: ${need%%:*} is missing: apt-get install uwsgi uwsgi-plugin-python3 python3-flask curl" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # url name
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "run.sh: $2 did not start ($1)" >&2
  exit 1
}

# The app, as it ran behind Apache + mod_proxy_uwsgi, but with no --buffer-size: the proxy sends
# it short headers, so uWSGI's default 4 KiB buffer is enough.
uwsgi --plugin python3 --http-socket "127.0.0.1:$APP_PORT" --wsgi-file "$here/app.py" \
  --callable app --need-app --master --processes 2 --die-on-term --disable-logging \
  >"$work/uwsgi.log" 2>&1 &
pids+=($!)

"${ssokit[@]}" idp --port "$IDP_PORT" >"$work/idp.log" 2>&1 &
pids+=($!)
issuer="http://127.0.0.1:$IDP_PORT/auth/realms/dev"
wait_for "$issuer/.well-known/openid-configuration" "ssokit idp"
wait_for "http://127.0.0.1:$APP_PORT/" "uWSGI (see $work/uwsgi.log)"

# The development provider's demo client; in production: the file your provider's secret is in.
echo demo-app-secret >"$work/client-secret"
"${ssokit[@]}" proxy --upstream "http://127.0.0.1:$APP_PORT" --issuer "$issuer" \
  --client-id demo-app --client-secret-file "$work/client-secret" \
  --public-url "http://localhost:$PROXY_PORT" --port "$PROXY_PORT" \
  --header-preset shibboleth-adfs &
pids+=($!)
wait_for "http://127.0.0.1:$PROXY_PORT/_ssokit/healthz" "ssokit proxy"

echo
echo "Legacy Flask app behind ssokit proxy: open http://localhost:$PROXY_PORT/"
echo "and sign in as alice / alice (or bob / bob). Press Ctrl-C to stop."
wait
