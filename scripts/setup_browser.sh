#!/usr/bin/env bash
# Debian's Chromium for the real-browser tests (tests/test_browser_*.py drive /usr/bin/chromium through
# Playwright; Playwright's own browser download is never used). Installed with apt when it is missing and
# this runs as root with apt-get; otherwise those tests skip and say why. Never fatal to `make test`.
set -uo pipefail
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ragtune test setup: $CHROMIUM is missing and apt-get as root is not available; the browser tests will skip" >&2
  exit 0
fi
echo "ragtune test setup: installing Debian's chromium for the browser tests (a minute or two, once)"
log=$(mktemp)
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
       DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  echo "ragtune test setup: apt-get install chromium failed; the browser tests will skip" >&2
  tail -5 "$log" >&2
fi
rm -f "$log"
exit 0
