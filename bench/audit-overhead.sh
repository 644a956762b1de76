#!/usr/bin/env bash
# Reads/s with auditing on vs off, in one run on one machine: a release build, a dev server each
# way, and wrk (Debian's package) at 16 connections for 10 s against a masked native read.
# Prints a table and appends it, with the date and nproc, to bench/results/history.md.
#   bench/audit-overhead.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p keyward-cli
bin=target/release/keyward
port=18299

measure() { # $1 = label, rest = extra server flags
  local label=$1; shift
  local out; out=$(mktemp)
  "$bin" server --dev --listen 127.0.0.1:$port --rate-limit off --ip-rate-limit off --log-format json "$@" >"$out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "export KEYWARD_TOKEN" "$out" && break; sleep 0.1; done
  local token; token=$(sed -n "s/.*export KEYWARD_TOKEN='\(.*\)'/\1/p" "$out")
  KEYWARD_ADDR=http://127.0.0.1:$port KEYWARD_TOKEN=$token "$bin" secrets set -p secret -e bench \
    STRIPE_KEY=sk_test_51H8abcdEFGH1234 DATABASE_URL=postgres://u:p@h/db >/dev/null
  local res; res=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/mounts/secret/secrets/bench")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
  p50=$(awk '$1=="50%" {print $2}' <<<"$res")
  p99=$(awk '$1=="99%" {print $2}' <<<"$res")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$res" | tr '\n' ' ')
  echo "$label|$rps|$p50|$p99|${errors:-none}"
}

on=$(measure "audit on" )
off=$(measure "audit off" --no-audit)
rps_on=$(cut -d'|' -f2 <<<"$on"); rps_off=$(cut -d'|' -f2 <<<"$off")
ratio=$(awk -v a="$rps_on" -v b="$rps_off" 'BEGIN { printf "%.0f%%", 100 * a / b }')

table=$(cat <<TABLE
### Audit overhead — $(date -u +%Y-%m-%d), $(nproc) cores

Command: \`bench/audit-overhead.sh $secs $conns\` (release build, SQLite, wrk -t2 -c$conns -d${secs}s, masked native read)

| mode | requests/s | p50 | p99 | errors |
|---|---|---|---|---|
| $(tr '|' '\n' <<<"$on" | paste -sd'|' | sed 's/|/ | /g') |
| $(tr '|' '\n' <<<"$off" | paste -sd'|' | sed 's/|/ | /g') |

Audit on / audit off: **$ratio** of the reads/s (target ≥ 70%).
TABLE
)
echo "$table"
{ echo; echo "$table"; } >> bench/results/history.md
