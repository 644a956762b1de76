#!/usr/bin/env bash
# Credential-proxy overhead against calling the same loopback upstream directly, in one run on
# one machine: release builds, the trivial upstream (bench/tools, bin ceiling), and wrk (Debian's
# package) at 1 connection (latency) and 16 connections (throughput), audit on and off. Beside
# them, a bare reverse proxy on the same HTTP stack (bench/tools, bin bare-proxy) shows what any
# proxy keeps of the upstream's throughput on these cores, before keyward does any work.
# Prints a table and appends it, with the date and nproc, to bench/results/history.md.
# With a delay, the upstream answers each request after that many milliseconds, like a remote API.
#   bench/proxy-overhead.sh [seconds] [upstream delay in ms, default 0]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
delay=${2:-0}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p keyward-cli -p keyward-bench-tools
bin=target/release/keyward
up_port=18311
kw_port=18312
bare_port=18313

target/release/ceiling 127.0.0.1:$up_port "$delay" >/dev/null &
up_pid=$!
target/release/bare-proxy 127.0.0.1:$bare_port "http://127.0.0.1:$up_port" >/dev/null &
bare_pid=$!
trap 'kill $up_pid $bare_pid 2>/dev/null || true' EXIT

us() { # wrk latency (e.g. 512.00us, 1.20ms, 1.01s) in microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

run_wrk() { # conns url [header]
  local res
  if [ -n "${3:-}" ]; then
    res=$(wrk -t"$([ "$1" = 1 ] && echo 1 || echo 2)" -c"$1" -d"${secs}s" --latency -H "$3" "$2")
  else
    res=$(wrk -t"$([ "$1" = 1 ] && echo 1 || echo 2)" -c"$1" -d"${secs}s" --latency "$2")
  fi
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
  p50=$(awk '$1=="50%" {print $2}' <<<"$res")
  p99=$(awk '$1=="99%" {print $2}' <<<"$res")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$res" | tr '\n' ' ')
  echo "$rps|$p50|$p99|${errors:-none}"
}

rows=()
direct1=$(run_wrk 1 "http://127.0.0.1:$up_port/v1/balance")
direct16=$(run_wrk 16 "http://127.0.0.1:$up_port/v1/balance")
rows+=("direct|1|$direct1" "direct|16|$direct16")
bare1=$(run_wrk 1 "http://127.0.0.1:$bare_port/v1/balance")
bare16=$(run_wrk 16 "http://127.0.0.1:$bare_port/v1/balance")
rows+=("bare proxy (no keyward work)|1|$bare1" "bare proxy (no keyward work)|16|$bare16")

declare -A proxy1 proxy16
for mode in on off; do
  out=$(mktemp)
  flags=(--dev --listen 127.0.0.1:$kw_port --rate-limit off --ip-rate-limit off --proxy-allow-insecure --log-format json)
  [ "$mode" = off ] && flags+=(--no-audit)
  "$bin" server "${flags[@]}" >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do grep -q "export KEYWARD_TOKEN" "$out" && break; sleep 0.1; done
  token=$(sed -n "s/.*export KEYWARD_TOKEN='\(.*\)'/\1/p" "$out")
  export KEYWARD_ADDR=http://127.0.0.1:$kw_port KEYWARD_TOKEN=$token
  "$bin" secrets set -p secret -e stripe api_key=sk_test_51H8benchmarkKey00001234 >/dev/null
  "$bin" proxy create up --upstream "http://127.0.0.1:$up_port" --secret secret/stripe --inject bearer:api_key --allow-insecure >/dev/null
  url="http://127.0.0.1:$kw_port/api/v1/proxy/up/v1/balance"
  proxy1[$mode]=$(run_wrk 1 "$url" "Authorization: Bearer $token")
  proxy16[$mode]=$(run_wrk 16 "$url" "Authorization: Bearer $token")
  rows+=("proxy, audit $mode|1|${proxy1[$mode]}" "proxy, audit $mode|16|${proxy16[$mode]}")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$out"
done

p50_direct=$(us "$(cut -d'|' -f2 <<<"$direct1")")
rps_direct=$(cut -d'|' -f1 <<<"$direct16")
rps_bare=$(cut -d'|' -f1 <<<"$bare16")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
over() { awk -v a="$(us "$(cut -d'|' -f2 <<<"$1")")" -v b="$p50_direct" 'BEGIN { printf "%.0f", a - b }'; }
summary="Bare proxy: p50 overhead at 1 connection **$(over "$bare1") µs**; throughput at 16 connections **$(pct "$rps_bare" "$rps_direct")** of direct."$'\n'
for mode in on off; do
  rps=$(cut -d'|' -f1 <<<"${proxy16[$mode]}")
  summary+="Audit $mode: p50 overhead at 1 connection **$(over "${proxy1[$mode]}") µs** (target ≤ 300 µs); throughput at 16 connections **$(pct "$rps" "$rps_direct")** of direct (target ≥ 60%), $(pct "$rps" "$rps_bare") of the bare proxy's."$'\n'
done

table=$(cat <<TABLE
### Credential proxy overhead — $(date -u +%Y-%m-%d), $(nproc) cores

Command: \`bench/proxy-overhead.sh $secs $delay\` (release builds, SQLite, bearer injection, upstream = bench/tools ceiling on loopback answering after $delay ms, bare proxy = bench/tools bare-proxy, wrk -d${secs}s)

| path | connections | requests/s | p50 | p99 | errors |
|---|---|---|---|---|---|
$(for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done)

$summary
TABLE
)
echo "$table"
{ echo; echo "$table"; } >> bench/results/history.md
