#!/usr/bin/env bash
# Backup and restore at size: a release build, a keyed SQLite server filled with N secrets
# (5 fields each, through the native API), then `operator backup` while a writer keeps writing,
# and `operator restore` into SQLite and (with KEYWARD_TEST_DATABASE_URL) PostgreSQL. Prints
# sizes, times and the restore's peak memory (GNU time), and appends them to
# bench/results/history.md.
#   bench/backup.sh [secrets]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release -q -p keyward-cli
bin=$PWD/target/release/keyward
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export KEYWARD_MASTER_KEY; KEYWARD_MASTER_KEY=$("$bin" gen key)
port=18297
"$bin" server --database "$work/a.db" --listen 127.0.0.1:$port --rate-limit off --ip-rate-limit off >"$work/a.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.1; done
export KEYWARD_ADDR=http://127.0.0.1:$port
KEYWARD_TOKEN=$("$bin" operator init --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["root_token"])')
export KEYWARD_TOKEN
"$bin" mounts create app >/dev/null
python3 - "$n" <<'PY'
import http.client, json, os, sys, concurrent.futures as cf
n = int(sys.argv[1]); host, port = os.environ["KEYWARD_ADDR"].split("//")[1].split(":")
def write(lo):
    c = http.client.HTTPConnection(host, int(port))
    for i in range(lo, min(lo + 500, n)):
        body = json.dumps({"set": {f"K{j}": f"sk_live_{i:08d}_{j}_" + "x" * 40 for j in range(5)}})
        c.request("PATCH", f"/api/v1/mounts/app/secrets/c/{i}", body,
                  {"Authorization": "Bearer " + os.environ["KEYWARD_TOKEN"], "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
with cf.ThreadPoolExecutor(8) as ex:
    list(ex.map(write, range(0, n, 500)))
PY
# A writer during the backup.
( i=0; while [ ! -e "$work/stop" ]; do i=$((i + 1)); "$bin" secrets set -p app -e live N=$i >/dev/null; done ) &
writer=$!
t0=$(date +%s.%N)
"$bin" operator backup "$work/b.kwb" >/dev/null
t1=$(date +%s.%N)
touch "$work/stop"; wait $writer
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
size=$(stat -c %s "$work/b.kwb"); dbsize=$(du -cb "$work"/a.db* | tail -1 | cut -f1)
restore() {  # label database
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -f %M -o "$work/rss" "$bin" operator restore "$work/b.kwb" --database "$2" >/dev/null
  t1=$(date +%s.%N)
  rss=$(cat "$work/rss")
  printf '| restore into %s | %.1f s | peak RSS %s MiB |\n' "$1" "$(echo "$t1 - $t0" | bc)" "$((rss / 1024))"
}
rows=$(printf '| backup (%s secrets, a writer running) | %.1f s | %s MiB file from a %s MiB database |\n' \
  "$n" "$(echo "$t1 - $t0" | bc)" "$((size / 1048576))" "$((dbsize / 1048576))")
rows+=$'\n'$(restore SQLite "$work/c.db")
if [ -n "${KEYWARD_TEST_DATABASE_URL:-}" ]; then
  db="kw_bench_restore_$$"
  psql -q "$KEYWARD_TEST_DATABASE_URL" -c "CREATE DATABASE $db"
  rows+=$'\n'$(restore PostgreSQL "${KEYWARD_TEST_DATABASE_URL%/*}/$db")
  psql -q "$KEYWARD_TEST_DATABASE_URL" -c "DROP DATABASE $db WITH (FORCE)"
fi
table=$(printf '| step | time | size / memory |\n|---|---|---|\n%s\n' "$rows")
echo "$table"
{
  echo
  echo "## $(date +%F) — backup and restore, $n secrets ($(nproc) cores, \`bench/backup.sh $n\`)"
  echo
  echo "$table"
} >>bench/results/history.md
