#!/usr/bin/env bash
# The soak: MINUTES (default 30) of mixed load at 64 connections — masked reads, reveals, writes,
# transit encryptions, proxied calls, token creations (bench/lua/soak.lua) — against a release
# server on ENGINE (sqlite, or postgres on a fresh database from KEYWARD_TEST_DATABASE_URL),
# sampling the server's RSS and open file descriptors every 10 s. Passes when no request
# failed, RSS after warm-up (the first fifth) stays within ±10% of its median, descriptors stay
# flat, and the audit chain verifies. Writes bench/results/soak-<date>-<engine>.md.
#   bench/soak.sh [MINUTES] [ENGINE]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
engine=${2:-sqlite}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p keyward-cli -p keyward-bench-tools --bin keyward --bin ceiling
bin=target/release/keyward
work=$(mktemp -d)
# The upstream of the proxied calls; one port per engine, so both soaks can run at once.
up_port=$([ "$engine" = postgres ] && echo 18322 || echo 18321)
target/release/ceiling 127.0.0.1:$up_port 0 >/dev/null &
up_pid=$!
db="keyward_soak_$$"
case $engine in
  sqlite) database="$work/keyward.db" ;;
  postgres)
    : "${KEYWARD_TEST_DATABASE_URL:?set it (scripts/pg-test-db)}"
    url=$KEYWARD_TEST_DATABASE_URL; base=${url%%\?*}; query=${url#"$base"}
    psql "$url" -qc "CREATE DATABASE $db"
    database="${base%/*}/$db$query" ;;
  *) echo "ENGINE is sqlite or postgres" >&2; exit 2 ;;
esac
export KEYWARD_MASTER_KEYS="v1:$(head -c 32 /dev/urandom | base64)"
# `audit verify` at the end walks millions of entries in one request: more than the default 30 s.
"$bin" server --database "$database" --listen 127.0.0.1:0 --rate-limit off --ip-rate-limit off \
  --proxy-allow-insecure --log-format json --request-timeout 10m >"$work/out" 2>"$work/err" &
pid=$!
cleanup() {
  kill "$pid" "$up_pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$engine" = postgres ] && psql "$KEYWARD_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
export KEYWARD_ADDR; KEYWARD_ADDR=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/out" | head -1)
export KEYWARD_TOKEN; KEYWARD_TOKEN=$("$bin" operator init --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
"$bin" mounts create secret >/dev/null
"$bin" secrets set -p secret -e soak STRIPE_KEY=sk_test_51H8soakKey00001234 api_key=sk_test_51H8benchmarkKey00001234 >/dev/null
curl -sf -X POST -H "Authorization: Bearer $KEYWARD_TOKEN" -d '{"type":"transit"}' "$KEYWARD_ADDR/v1/sys/mounts/transit" >/dev/null
curl -sf -X POST -H "Authorization: Bearer $KEYWARD_TOKEN" "$KEYWARD_ADDR/v1/transit/keys/soak" >/dev/null
"$bin" proxy create up --upstream "http://127.0.0.1:$up_port" --secret secret/soak --inject bearer:api_key --allow-insecure >/dev/null

samples="$work/samples"
( while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    echo "$(date +%s) $rss $fds" >>"$samples"
    sleep 10
  done ) &
sampler=$!
res=$(wrk -t2 -c64 -d"${minutes}m" --latency -H "Authorization: Bearer $KEYWARD_TOKEN" -s bench/lua/soak.lua "$KEYWARD_ADDR")
kill "$sampler" 2>/dev/null || true
verify=$("$bin" audit verify 2>&1 || true)
requests=$(awk '/requests in/ {print $1}' <<<"$res")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
p99=$(awk '$1=="99%" {print $2}' <<<"$res")
errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$res" | tr '\n' ' ')
summary=$(python3 - "$samples" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
after = rows[len(rows) // 5:]
rss = [r[1] for r in after]; fds = [r[2] for r in after]
med = statistics.median(rss)
spread = max(abs(x - med) / med for x in rss) * 100
print(f"{len(rows)} samples; RSS after warm-up {min(rss)//1024}–{max(rss)//1024} MiB (median {int(med)//1024} MiB, "
      f"±{spread:.1f}%); open descriptors {min(fds)}–{max(fds)}")
print("RSS_OK" if spread <= 10 else "RSS_DRIFT")
# Flat: no growth from the first third after warm-up to the last (pool connections open and
# close, three descriptors each, so the level moves within a band).
third = max(1, len(fds) // 3)
print("FDS_OK" if max(fds[-third:]) - max(fds[:third]) <= 8 else "FDS_DRIFT")
PY
)
ok=true
[ -z "$errors" ] || ok=false
grep -q RSS_OK <<<"$summary" || ok=false
grep -q FDS_OK <<<"$summary" || ok=false
grep -q "intact" <<<"$verify" || ok=false
report="bench/results/soak-$(date -u +%Y-%m-%d)-$engine.md"
cat >"$report" <<REPORT
### Soak — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $engine, ${minutes} min at 64 connections

Command: \`bench/soak.sh $minutes $engine\` (release build; wrk -t2 -c64 with bench/lua/soak.lua: masked read, reveal,
write, transit encrypt, proxied call, token create in turn; RSS and descriptors sampled every 10 s)

- requests: $requests ($rps/s), p99 $p99, errors: ${errors:-none}
- $(head -1 <<<"$summary")
- audit verify: $(head -1 <<<"$verify")
- verdict: $($ok && echo pass || echo FAIL)
REPORT
cat "$report"
$ok
