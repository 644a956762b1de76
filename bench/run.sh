#!/usr/bin/env bash
# The benchmark suite: release builds, one machine, one run. Prints one report and appends it,
# with the date and nproc, to bench/results/history.md (BENCHMARKS.md keeps the standing and latest run); renders bench/results/http-<date>-<time>.png (gnuplot).
#   bench/run.sh            full run (HTTP runs of 10 s; scale at 10,000 and 1,000,000 secrets)
#   QUICK=1 bench/run.sh    a shorter run (3 s; scale at 10,000 and 100,000) for trying it out
# Needs: wrk, gnuplot, openssl, python3 (installed from Debian's packages when missing) and, for
# the PostgreSQL rows, KEYWARD_TEST_DATABASE_URL (see scripts/pg-test-db).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10; big=1000000
if [ "${QUICK:-}" = 1 ]; then secs=3; big=100000; fi
need=()
for c in wrk gnuplot openssl; do command -v "$c" >/dev/null || need+=("$c"); done
[ ${#need[@]} -eq 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]/gnuplot/gnuplot-nox}"; }
cargo build --release -q -p keyward-cli -p keyward-bench-tools
bin=target/release/keyward
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
report="$work/report.md"
day=$(date -u +%Y-%m-%d)
mkdir -p bench/results

us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk CONNS URL [wrk args...] -> "rps|p50_us|p99_us|errors"
load() {
  local c=$1 url=$2; shift 2
  local t=2; [ "$c" = 1 ] && t=1
  local res; res=$(wrk -t"$t" -c"$c" -d"${secs}s" --latency "$@" "$url")
  local errs; errs=$(awk '/Non-2xx|Socket errors|Timeout/ {print}' <<<"$res" | tr '\n' ' ' | sed 's/  */ /g')
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$res")|$(us "$(awk '$1=="50%" {print $2}' <<<"$res")")|$(us "$(awk '$1=="99%" {print $2}' <<<"$res")")|${errs:-0}"
}

# Starts a dev server (extra flags allowed); sets $port $token $pid.
start_dev() {
  port=$(free_port)
  local out="$work/dev-$port.out"
  "$bin" server --dev --listen "127.0.0.1:$port" --rate-limit off --ip-rate-limit off --log-format json "$@" >"$out" 2>/dev/null &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 100); do grep -q "export KEYWARD_TOKEN" "$out" && break; sleep 0.05; done
  token=$(sed -n "s/.*export KEYWARD_TOKEN='\(.*\)'/\1/p" "$out")
}

echo "# keyward benchmark suite — $day, $(nproc) cores" >"$report"
{
  echo
  echo "Command: \`${QUICK:+QUICK=1 }bench/run.sh\` ($(uname -m), $(nproc) cores, release builds; HTTP runs: wrk, ${secs}s each)."
} >>"$report"

# --- 1. Crypto --------------------------------------------------------------------------------
cargo bench -q -p keyward-crypto --bench seal -- --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1
est() { python3 -c "import json,sys; print(json.load(open('target/criterion/blob/$1/$2/new/estimates.json'))['mean']['point_estimate'])"; }
ossl() { openssl speed -evp aes-256-gcm -bytes "$1" -seconds 3 2>/dev/null | awk '/^(AES-256-GCM|aes-256-gcm)/ {v=$NF; sub(/k$/, "", v); print v * 1000}'; }
{
  echo; echo "## 1. Crypto (one core)"; echo
  echo "| size | seal (keyward) | open (keyward) | seal (openssl speed) | seal / openssl |"
  echo "|---|---|---|---|---|"
  for size in 64 1024 16384; do
    s=$(est seal "$size"); o=$(est open "$size"); os=$(ossl "$size")
    awk -v n="$size" -v s="$s" -v o="$o" -v os="$os" 'BEGIN {
      ms = n / s * 1e9 / 1e6; mo = n / o * 1e9 / 1e6; mos = os / 1e6;
      printf "| %d B | %.0f MB/s (%.0f ns) | %.0f MB/s (%.0f ns) | %.0f MB/s | %.0f%% |\n", n, ms, s, mo, o, mos, 100 * ms / mos }'
  done
  pair=$(est seal_open 64)
  awk -v p="$pair" 'BEGIN { printf "\nSeal+open pairs of 64 B: **%.2f million/s** on one core (target ≥ 1); at 16 KiB the target is ≥ 70%% of openssl.\n", 1e3 / p }'
} >>"$report"

# --- 2. HTTP ----------------------------------------------------------------------------------
ceil_port=$(free_port)
target/release/ceiling "127.0.0.1:$ceil_port" >/dev/null & pids+=("$!")
sleep 0.3
declare -A R
for c in 1 16 64; do R["ceiling|$c"]=$(load "$c" "http://127.0.0.1:$ceil_port/"); done
floor_port=$(free_port)
target/release/bare-read "127.0.0.1:$floor_port" >"$work/bare-read.out" & pids+=("$!")
for _ in $(seq 1 100); do grep -q "^token " "$work/bare-read.out" && break; sleep 0.05; done
floor_auth=(-H "Authorization: Bearer $(sed -n 's/^token //p' "$work/bare-read.out")")
for c in 1 16 64; do
  R["bare read|$c"]=$(load "$c" "http://127.0.0.1:$floor_port/api/v1/mounts/secret/secrets/bench" "${floor_auth[@]}")
done
idle_rss=""; load_rss=""; start_ms=""
for audit in on off; do
  flags=(); [ "$audit" = off ] && flags=(--no-audit)
  start_dev "${flags[@]}"
  [ "$audit" = on ] && idle_rss=$(rss_kb "$pid")
  export KEYWARD_ADDR="http://127.0.0.1:$port" KEYWARD_TOKEN="$token"
  "$bin" secrets set -p secret -e bench STRIPE_KEY=sk_test_51H8abcdEFGH1234 DATABASE_URL=postgres://u:p@h/db >/dev/null
  "$bin" secrets set -p secret -e write COUNTER=0 >/dev/null
  curl -sf -H "X-Vault-Token: $token" -X POST "$KEYWARD_ADDR/v1/transit/keys/bench" >/dev/null
  auth=(-H "Authorization: Bearer $token")
  for c in 1 16 64; do
    R["masked read|$audit|$c"]=$(load "$c" "$KEYWARD_ADDR/api/v1/mounts/secret/secrets/bench" "${auth[@]}")
    [ "$audit" = on ] && [ "$c" = 16 ] && load_rss=$(rss_kb "$pid")
    R["reveal read|$audit|$c"]=$(load "$c" "$KEYWARD_ADDR/api/v1/mounts/secret/secrets/bench?reveal=true" "${auth[@]}")
    R["vault kv read|$audit|$c"]=$(load "$c" "$KEYWARD_ADDR/v1/secret/data/bench" -H "X-Vault-Token: $token")
    R["kv write|$audit|$c"]=$(load "$c" "$KEYWARD_ADDR/api/v1/mounts/secret/secrets/write" "${auth[@]}" -s bench/lua/kv_write.lua)
    R["transit encrypt 64 B|$audit|$c"]=$(load "$c" "$KEYWARD_ADDR/v1/transit/encrypt/bench" -H "X-Vault-Token: $token" -s bench/lua/transit_encrypt.lua)
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
endpoints=("masked read" "reveal read" "vault kv read" "kv write" "transit encrypt 64 B")
{
  echo; echo "## 2. HTTP (SQLite, loopback)"; echo
  echo "Ceiling: a trivial axum handler with the same stack (bench/tools, bin ceiling). Bare read: the least an"
  echo "authenticated masked read does on that stack — token digest and lookup, blob opened, fields parsed, masked and"
  echo "answered as JSON; no middleware, policy, store or audit (bench/tools, bin bare-read)."; echo
  echo "| endpoint | audit | conns | requests/s | vs ceiling | p50 | p99 | p99 vs ceiling | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for c in 1 16 64; do
    IFS='|' read -r rps p50 p99 e <<<"${R[ceiling|$c]}"
    echo "| ceiling | – | $c | $rps | 100% | ${p50} µs | ${p99} µs | 1.0× | $e |"
  done
  for ep in "bare read" "${endpoints[@]}"; do for audit in on off; do for c in 1 16 64; do
    [ "$ep" = "bare read" ] && [ "$audit" = off ] && continue
    IFS='|' read -r crps _ cp99 _ <<<"${R[ceiling|$c]}"
    key="$ep|$audit|$c" shown=$audit
    [ "$ep" = "bare read" ] && key="bare read|$c" shown="–"
    IFS='|' read -r rps p50 p99 e <<<"${R[$key]}"
    awk -v ep="$ep" -v a="$shown" -v c="$c" -v r="$rps" -v cr="$crps" -v p50="$p50" -v p99="$p99" -v cp="$cp99" -v e="$e" \
      'BEGIN { printf "| %s | %s | %s | %s | %.1f%% | %s µs | %s µs | %.1f× | %s |\n", ep, a, c, r, 100 * r / cr, p50, p99, p99 / cp, e }'
  done; done; done
  echo
  echo "Targets at 16 connections: masked read and Vault KV read ≥ 50% of the ceiling with audit on (≥ 70% off), p99 ≤ 2× the ceiling's, no errors."
} >>"$report"
# Chart data: one file per endpoint and audit mode: conns rps p99. The ceiling and the bare read
# have no audit mode: one line each.
unaudited() { [ "$1" = ceiling ] || [ "$1" = "bare read" ]; }
charted=(ceiling "bare read" "${endpoints[@]}")
for ep in "${charted[@]}"; do for audit in on off; do
  unaudited "$ep" && [ "$audit" = off ] && continue
  f="$work/$(tr ' ' '_' <<<"$ep")-$audit.dat"
  for c in 1 16 64; do
    key="$ep|$audit|$c"; unaudited "$ep" && key="$ep|$c"
    IFS='|' read -r rps _ p99 _ <<<"${R[$key]}"; echo "$c $rps $p99" >>"$f"
  done
done; done
plot_column() { # $1 = column of the data files (2 requests/s, 3 p99)
  local first=1 ep audit f t
  for ep in "${charted[@]}"; do for audit in on off; do
    unaudited "$ep" && [ "$audit" = off ] && continue
    f="$work/$(tr ' ' '_' <<<"$ep")-$audit.dat"; t="$ep"; unaudited "$ep" || t="$ep (audit $audit)"
    [ $first = 1 ] || echo ", \\"; first=0
    printf "  '%s' using 1:%s with linespoints title '%s'" "$f" "$1" "$t"
  done; done
  echo
}
png="bench/results/http-$day-$(date -u +%H%M).png"  # one per run: a second run that day keeps the first
{
  echo "set terminal pngcairo size 1600,800 font ',10'; set output '$png'; set multiplot layout 1,2"
  echo "set logscale x 2; set xrange [0.8:80]; set xtics (1,16,64); set xlabel 'connections'; set key below maxrows 4; set grid"
  echo "set title 'requests/s'; set logscale y; plot \\"
  plot_column 2
  echo "set title 'p99 latency (µs)'; plot \\"
  plot_column 3
  echo "unset multiplot"
} >"$work/plot.gp"
gnuplot "$work/plot.gp" && echo -e "\n![requests/s and p99 against connections]($png)" >>"$report"

# --- 3. Durable writes ------------------------------------------------------------------------
raw_sqlite=$(python3 - "$work/raw.db" "$secs" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
n, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    db.execute("BEGIN"); db.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 200,)); db.execute("COMMIT"); n += 1
print(round(n / float(sys.argv[2])))
PY
)
{
  echo; echo "## 3. Durable writes"; echo
  echo "| engine | keyward acknowledged writes/s (16 / 64 conns, audit on) | raw single-row fsync'd inserts/s | ratio (64 conns) |"
  echo "|---|---|---|---|"
  w16=$(cut -d'|' -f1 <<<"${R[kv write|on|16]}"); w64=$(cut -d'|' -f1 <<<"${R[kv write|on|64]}")
  awk -v a="$w16" -v b="$w64" -v r="$raw_sqlite" 'BEGIN { printf "| SQLite (synchronous=FULL, WAL) | %s / %s | %s | %.1f× |\n", a, b, r, b / r }'
} >>"$report"
if [ -n "${KEYWARD_TEST_DATABASE_URL:-}" ] && command -v pgbench >/dev/null; then
  db="kw_bench_$$"; psql -q "$KEYWARD_TEST_DATABASE_URL" -c "CREATE DATABASE $db"
  url="${KEYWARD_TEST_DATABASE_URL%/*}/$db"
  psql -q "$url" -c "CREATE TABLE raw (id bigserial PRIMARY KEY, v bytea)"
  echo "INSERT INTO raw (v) VALUES ('\\x00');" >"$work/ins.sql"
  raw_pg=$(pgbench -n -c1 -T"$secs" -f "$work/ins.sql" "$url" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
  port=$(free_port)
  KEYWARD_MASTER_KEY=$("$bin" gen key) "$bin" server --database "$url" --listen "127.0.0.1:$port" --rate-limit off --ip-rate-limit off >/dev/null 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.1; done
  token=$(curl -sf -X PUT "http://127.0.0.1:$port/v1/sys/init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
  KEYWARD_ADDR="http://127.0.0.1:$port" KEYWARD_TOKEN=$token "$bin" mounts create secret >/dev/null
  KEYWARD_ADDR="http://127.0.0.1:$port" KEYWARD_TOKEN=$token "$bin" secrets set -p secret -e write COUNTER=0 >/dev/null
  pw=$(load 64 "http://127.0.0.1:$port/api/v1/mounts/secret/secrets/write" -H "Authorization: Bearer $token" -s bench/lua/kv_write.lua | cut -d'|' -f1)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  psql -q "$KEYWARD_TEST_DATABASE_URL" -c "DROP DATABASE $db"
  awk -v b="$pw" -v r="$raw_pg" 'BEGIN { printf "| PostgreSQL 15 (synchronous_commit=on) | – / %s | %s | %.1f× |\n", b, r, b / r }' >>"$report"
fi
echo -e "\nTarget on SQLite: ≥ 2× the raw rate (group commit), zero lost acknowledgements (a write is acknowledged only after its commit)." >>"$report"

# --- 4. Footprint -----------------------------------------------------------------------------
cold=$(python3 - "$bin" <<'PY'
import os, socket, subprocess, sys, tempfile, time, urllib.request
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
t0 = time.monotonic()
p = subprocess.Popen([sys.argv[1], "server", "--dev", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1).status == 200:
            break
    except Exception:
        time.sleep(0.001)
print(round((time.monotonic() - t0) * 1000, 1))
p.terminate(); p.wait()
PY
)
size=$(stat -c %s "$bin")
{
  echo; echo "## 4. Footprint"; echo
  echo "| idle RSS | RSS under load (16 conns) | cold start to first 200 (/v1/sys/health, --dev) | release binary |"
  echo "|---|---|---|---|"
  awk -v i="$idle_rss" -v l="$load_rss" -v c="$cold" -v s="$size" 'BEGIN { printf "| %.1f MB | %.1f MB | %s ms | %.1f MB |\n", i / 1024, l / 1024, c, s / 1048576 }'
  echo; echo "Targets: idle RSS ≤ 20 MB; cold start ≤ 100 ms."
} >>"$report"

# --- 5. Scale ---------------------------------------------------------------------------------
{
  echo; echo "## 5. Scale (SQLite)"; echo
  echo "| secrets stored | list one page (100), p50 | read, p50 | database bytes per secret version | load time |"
  echo "|---|---|---|---|---|"
} >>"$report"
key=$("$bin" gen key)
declare -A S
for n in 10000 "$big"; do
  d="$work/scale-$n"; mkdir -p "$d"
  t0=$(date +%s)
  token=$(KEYWARD_MASTER_KEY=$key target/release/populate "$d/kw.db" "$n" 2>/dev/null)
  loaded=$(( $(date +%s) - t0 ))
  port=$(free_port)
  KEYWARD_MASTER_KEY=$key "$bin" server --database "$d/kw.db" --listen "127.0.0.1:$port" --rate-limit off --ip-rate-limit off >/dev/null 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.1; done
  mid=$(printf "bench/%08d" $(( n / 2 )))
  list=$(load 1 "http://127.0.0.1:$port/api/v1/mounts/secret/secrets?limit=100&after=$mid" -H "Authorization: Bearer $token" | cut -d'|' -f2)
  read=$(load 1 "http://127.0.0.1:$port/api/v1/mounts/secret/secrets/$mid" -H "Authorization: Bearer $token" | cut -d'|' -f2)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  bytes=$(du -cb "$d"/kw.db* | tail -1 | cut -f1)
  S[$n]="$list|$read"
  awk -v n="$n" -v l="$list" -v r="$read" -v b="$bytes" -v t="$loaded" 'BEGIN { printf "| %d | %s µs | %s µs | %.0f | %d s |\n", n, l, r, b / n, t }' >>"$report"
  rm -rf "$d"
done
IFS='|' read -r l1 r1 <<<"${S[10000]}"; IFS='|' read -r l2 r2 <<<"${S[$big]}"
awk -v a="$l1" -v b="$l2" -v c="$r1" -v d="$r2" -v n="$big" 'BEGIN { printf "\n%d vs 10,000 secrets: list page %.2f×, read %.2f× (target within 1.5×).\n", n, b / a, d / c }' >>"$report"

cat "$report"
{ echo; sed 's/^# keyward benchmark suite/### Benchmark suite/' "$report"; } >>bench/results/history.md
