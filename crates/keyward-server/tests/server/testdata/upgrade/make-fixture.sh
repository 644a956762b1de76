#!/usr/bin/env bash
# Regenerates the upgrade fixture: a database written by keyward before rows carried MACs (the
# commit in fixture.json), dumped from SQLite (`sqlite3 .dump`) and PostgreSQL (`pg_dump
# --inserts`), which tests/server/upgrade.rs loads and starts the current binary on.
#   make-fixture.sh KEYWARD_BINARY ITS_COMMIT POSTGRES_ADMIN_URL
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 commit=$2 admin=$3
export KEYWARD_MASTER_KEYS=$(cat "$here/master-key.txt")
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
run() { # database -> facts JSON on stdout
  "$bin" server --database "$1" --listen 127.0.0.1:18311 --log-format json --max-token-ttl 36500d >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18311/v1/sys/health?uninitcode=200 >/dev/null && break; sleep 0.1; done
  python3 "$here/populate.py" http://127.0.0.1:18311
  kill $pid; wait $pid 2>/dev/null || true
}
run "$work/kw.db" >"$work/sqlite.json"
sqlite3 "$work/kw.db" .dump >"$here/sqlite.sql"
db=kw_fixture_$$
psql "$admin" -qc "CREATE DATABASE $db"
base=${admin%/*}
run "$base/$db" >"$work/postgres.json"
pg_dump --inserts --no-owner --no-privileges --no-comments "$base/$db" | grep -v -e '^SELECT pg_catalog.set_config' -e '^\\' >"$here/postgres.sql"
psql "$admin" -qc "DROP DATABASE $db"
python3 - "$work/sqlite.json" "$work/postgres.json" "$commit" >"$here/fixture.json" <<'PY'
import json, sys
print(json.dumps({"commit": sys.argv[3], "sqlite": json.load(open(sys.argv[1])),
                  "postgres": json.load(open(sys.argv[2]))}, indent=2))
PY
