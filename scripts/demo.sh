#!/usr/bin/env bash
# The README's main job: start the bundled sandbox, get a token with each
# client-auth method, call the sample API, show an explained failure, check a message
# with doctor, read the outbound log, stop.
# Run through `make demo` (which sets up the venv and puts oauthcli on PATH).
set -uo pipefail
cd "$(dirname "$0")/.."

demo_dir=$(mktemp -d)
export OAUTHCLI_CACHE_DIR="$demo_dir/cache"   # a fresh token cache, not yours
export OAUTHCLI_LOG_DIR="$demo_dir/log"       # and an outbound log of its own
export OAUTHCLI_REGISTRY="$PWD"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OAUTHCLI_SANDBOX_URL="http://127.0.0.1:$port"

oauthcli sandbox --port "$port" --token-ttl 120 >"$demo_dir/sandbox.out" 2>"$demo_dir/sandbox.log" &
sandbox_pid=$!
cleanup() {
  kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$demo_dir"
}
trap cleanup EXIT

# Wait for the sandbox to answer (quietly: "not yet" is no error), at most 10 s.
ready() {
  python3 - "$OAUTHCLI_SANDBOX_URL" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/.well-known/oauth-authorization-server", timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
up=0
for _ in $(seq 1 100); do
  if ready; then up=1; break; fi
  kill -0 "$sandbox_pid" 2>/dev/null || break  # it exited: waiting longer is pointless
  sleep 0.1
done
if [ "$up" -ne 1 ]; then
  echo "demo: the sandbox did not start on $OAUTHCLI_SANDBOX_URL; its log:"
  cat "$demo_dir/sandbox.log"
  exit 1
fi

failures=0
step() {  # step "title" expected-exit command...
  local title=$1 expected=$2
  shift 2
  printf '\n\033[1m== %s\033[0m\n$ %s\n' "$title" "$*"
  "$@"
  local code=$?
  echo  # a piped body is printed exactly as received, without a final newline
  if [ "$code" -ne "$expected" ]; then
    echo "!! expected exit $expected, got $code"
    failures=$((failures + 1))
  else
    echo "(exit $code, as expected)"
  fi
}

step "Sandbox is up" 0 cat "$demo_dir/sandbox.out"
step "Client secret in an HTTP Basic header" 0 oauthcli get-token sandbox-basic
step "Client secret in the form body" 0 oauthcli get-token sandbox-post
step "Private-key JWT client assertion (RFC 7523)" 0 oauthcli get-token sandbox-jwt
step "Password grant with a refresh token" 0 oauthcli get-token sandbox-password
step "Cached: the second call reuses the token" 0 oauthcli get-token sandbox-basic
step "List incidents" 0 oauthcli send incidents.list
step "Create an incident" 0 oauthcli send incidents.create --var short_description="Printer on fire" --var urgency=1
step "A batch: one call per CSV row, one token, results in row order" 0 oauthcli send incidents.create --each examples/new-incidents.csv --concurrency 3
step "What would be sent, secrets masked, nothing sent" 0 oauthcli send incidents.create --var short_description=x --dry-run
step "A 403 whose reason is in the body" 4 oauthcli send forbidden
step "A token for the wrong audience: 401, explained" 4 oauthcli send wrong-audience
step "The token cache" 0 oauthcli token list
step "One command to say why a message works or not" 0 oauthcli doctor incidents
step "What was sent, and why each token was (or was not) renewed" 0 oauthcli log --last 8

echo
if [ "$failures" -ne 0 ]; then
  echo "demo: $failures step(s) did not go as expected"
  exit 1
fi
echo "demo: every step went as expected"
