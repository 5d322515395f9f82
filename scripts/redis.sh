#!/usr/bin/env bash
# Debian's redis-server for the Redis token cache's tests (OAUTHCLI_CACHE_URL, SPEC §7).
# The tests start their own server on a free 127.0.0.1 port with persistence off and stop it
# by PID; they never use 6379, where Debian's package may start a service of its own.
# Installed with apt when missing and run as root (CI, a fresh container); otherwise says
# what the tests will do without it.
set -euo pipefail
if command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's redis-server for the Redis cache tests (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d: no service started on 6379 by the package's own scripts (one already
    # there is the machine's own policy and is left alone)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
elif [ -n "${CI:-}" ]; then
    echo "redis-server is missing and this is not root: the Redis cache tests will fail" >&2
else
    echo "note: redis-server is missing (sudo apt-get install redis-server): the Redis cache tests will be skipped" >&2
fi
