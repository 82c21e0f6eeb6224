#!/usr/bin/env bash
# Debian's PostgreSQL server binaries for the storage tests: tests/postgres_server.py runs initdb + pg_ctl into a
# temporary directory (no system service is started or needed). Installed with apt when missing and this runs as
# root with apt-get; otherwise the PostgreSQL half of the storage tests skips and says why. Never fatal to `make test`.
set -uo pipefail
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v initdb >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ragtune test setup: PostgreSQL's initdb is missing and apt-get as root is not available; the PostgreSQL" \
       "storage tests will skip" >&2
  exit 0
fi
echo "ragtune test setup: installing Debian's postgresql for the storage tests (a minute, once)"
log=$(mktemp)
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
       DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; } >"$log" 2>&1; then
  echo "ragtune test setup: apt-get install postgresql failed; the PostgreSQL storage tests will skip" >&2
  tail -5 "$log" >&2
fi
rm -f "$log"
exit 0
