#!/usr/bin/env bash
# Crash durability (bench/tools/src/bin/crash.rs): CYCLES (default 100) cycles of a concurrent
# write load with a re-encryption job, a rewrap and an online backup in flight, the server
# killed with SIGKILL at a random moment, then every acknowledged write read back, `audit verify`,
# `doctor --verify-all` and the key jobs resumed to the end — on SQLite and, when
# KEYWARD_TEST_DATABASE_URL is set, on a fresh PostgreSQL database made for the run.
# PROFILE=debug uses the debug binaries without building (scripts/test runs 5 cycles so).
# SIGKILL proves durability across a process crash, not a power loss (untested: LazyFS is not
# installable here).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${CYCLES:-100}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p keyward-cli -p keyward-bench-tools --bin keyward --bin crash
fi
bin=target/$profile
"$bin/crash" "$bin/keyward" --cycles "$cycles"
if [ -n "${KEYWARD_TEST_DATABASE_URL:-}" ]; then
  . bench/lib.sh
  db="keyward_crash_$$"
  database=$(fresh_pg_db "$db")
  trap 'drop_pg_db "$db"' EXIT
  "$bin/crash" "$bin/keyward" --cycles "$cycles" --database "$database"
fi
