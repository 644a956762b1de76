#!/usr/bin/env bash
# A PostgreSQL that goes away under load (bench/tools/src/bin/crash.rs --outage): CYCLES
# (default 5) times, the local cluster is stopped for three seconds under a concurrent write
# load and started again. Every request must be answered within the server's request timeout
# (5 s here) — 503 while the database is away, never a hang — the server must serve again
# without a restart, and nothing acknowledged may be lost. Needs KEYWARD_TEST_DATABASE_URL and
# the rights to stop and start the cluster (pg_ctlcluster, as root). Stops the shared cluster:
# run it alone, not beside scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KEYWARD_TEST_DATABASE_URL:?set it (scripts/pg-test-db)}"
cycles=${CYCLES:-5}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p keyward-cli -p keyward-bench-tools --bin keyward --bin crash
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
. bench/lib.sh
db="keyward_outage_$$"
database=$(fresh_pg_db "$db")
trap 'pg_ctlcluster "$version" main start >/dev/null 2>&1 || true; drop_pg_db "$db"' EXIT
"target/$profile/crash" "target/$profile/keyward" --cycles "$cycles" --database "$database" \
  --outage "pg_ctlcluster $version main stop -m fast" "pg_ctlcluster $version main start"
