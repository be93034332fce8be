#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (tests/web/test_browser.py drives it with
# Playwright, pointed at /usr/bin/chromium; Playwright never downloads a browser here).
# Installs the `chromium` package when it is missing; prints the executable's path.
set -euo pipefail
BIN=/usr/bin/chromium
if [ ! -x "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci-chromium: chromium is not installed and this is not root (apt-get install chromium)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -x "$BIN" ]; then
    echo "ci-chromium: chromium installed but $BIN is missing" >&2
    exit 1
fi
echo "$BIN"
