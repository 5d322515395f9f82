#!/usr/bin/env bash
# Debian's chromium for the e2e sign-in tests (playwright-core drives /usr/bin/chromium and
# never downloads a browser of its own). Installed with apt when missing and run as root
# (CI, a fresh container); otherwise says what the tests will do without it.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser sign-in tests (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
elif [ -n "${CI:-}" ]; then
    echo "/usr/bin/chromium is missing and this is not root: the browser tests will fail" >&2
else
    echo "note: /usr/bin/chromium is missing (sudo apt-get install chromium): the browser sign-in tests will be skipped" >&2
fi
