#!/usr/bin/env bash
# Audit retention at size: a release build, a keyed SQLite server whose log is filled with N
# audited reads (GET /api/v1/mounts through 8 keep-alive connections), then
# `audit archive --before 0s --vacuum` (the one-time switch to incremental vacuum, one VACUUM),
# more reads, and `audit archive --before 0s` (incremental), then `audit verify --archive`.
# Prints entries, times, rates and the database file's size before and after, and appends them
# to bench/results/history.md.
#   bench/archive.sh [entries]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
cargo build --release -q -p keyward-cli
bin=$PWD/target/release/keyward
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export KEYWARD_MASTER_KEY; KEYWARD_MASTER_KEY=$("$bin" gen key)
port=18298
"$bin" server --database "$work/a.db" --listen 127.0.0.1:$port --rate-limit off --ip-rate-limit off \
  --audit-archive-dir "$work/archive" --request-timeout 10m >"$work/a.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.1; done
export KEYWARD_ADDR=http://127.0.0.1:$port
KEYWARD_TOKEN=$("$bin" operator init --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["root_token"])')
export KEYWARD_TOKEN
fill() {  # entries
  python3 - "$1" <<'PY'
import http.client, os, sys, concurrent.futures as cf
n = int(sys.argv[1]); host, port = os.environ["KEYWARD_ADDR"].split("//")[1].split(":")
def read(count):
    c = http.client.HTTPConnection(host, int(port))
    for _ in range(count):
        c.request("GET", "/api/v1/mounts", headers={"Authorization": "Bearer " + os.environ["KEYWARD_TOKEN"]})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
with cf.ThreadPoolExecutor(8) as ex:
    list(ex.map(read, [n // 8] * 8))
PY
}
size() { du -cb "$work"/a.db* | tail -1 | cut -f1; }
archive() {  # label args…
  local label=$1 t0 t1 out entries
  shift
  local before; before=$(size)
  t0=$(date +%s.%N)
  out=$("$bin" audit archive --before 0s "$@" --format json)
  t1=$(date +%s.%N)
  entries=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"])')
  printf '| %s | %s entries | %.1f s (%.0f entries/s) | database %s MiB -> %s MiB |\n' "$label" "$entries" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$entries / ($t1 - $t0)" | bc -l)" "$((before / 1048576))" "$(($(size) / 1048576))"
}
fill "$n"
rows=$(archive "archive + switch to incremental vacuum (one VACUUM)" --vacuum)
fill "$n"
rows+=$'\n'$(archive "archive, incremental vacuum")
t0=$(date +%s.%N)
"$bin" audit verify --archive >/dev/null
t1=$(date +%s.%N)
segs=$(ls "$work/archive" | wc -l); adir=$(du -sb "$work/archive" | cut -f1)
rows+=$'\n'$(printf '| audit verify --archive | %s segments | %.1f s | archive %s MiB |' "$segs" "$(echo "$t1 - $t0" | bc)" "$((adir / 1048576))")
table=$(printf '| step | entries | time | size |\n|---|---|---|---|\n%s\n' "$rows")
echo "$table"
{
  echo
  echo "## $(date +%F) — audit retention, $n audited reads per round ($(nproc) cores, \`bench/archive.sh $n\`)"
  echo
  echo "$table"
} >>bench/results/history.md
