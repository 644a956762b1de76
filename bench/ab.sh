#!/usr/bin/env bash
# A/B of two revisions on this machine: the masked native read and the native write, each with
# auditing on and off, in interleaved rounds (A B B A A B …) so drift hits both alike. Each
# revision is built in release mode from a git worktree; each measurement starts a fresh dev
# server pinned to CPU 0 and runs wrk pinned to CPU 1 (taskset), 16 connections.
# Prints, per revision and scenario, the median requests/s and p99 with their spread (min–max), and
# appends the table to bench/results/history.md.
#   bench/ab.sh REV_A REV_B [rounds=5] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-5} secs=${4:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
work=$(mktemp -d)
trap 'pkill -f "listen 127.0.0.1:18298" || true; git worktree remove --force "$work/a" 2>/dev/null || true; git worktree remove --force "$work/b" 2>/dev/null || true; rm -rf "$work"' EXIT
for side in a b; do
  rev=${!side}
  git worktree add -q --detach "$work/$side" "$rev"
  (cd "$work/$side" && CARGO_TARGET_DIR="$work/target-$side" cargo build -q --release -p keyward-cli)
  cp "$work/target-$side/release/keyward" "$work/keyward-$side"
done

measure() { # bin audit(on|off) scenario(read|write) -> "rps p99_ms"
  local bin=$1 audit=$2 scenario=$3 out token flags=()
  [ "$audit" = off ] && flags=(--no-audit)
  out=$(mktemp)
  taskset -c 0 "$bin" server --dev --listen 127.0.0.1:18298 --rate-limit off --ip-rate-limit off \
    --log-format json "${flags[@]}" >"$out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "export KEYWARD_TOKEN" "$out" && break; sleep 0.1; done
  token=$(sed -n "s/.*export KEYWARD_TOKEN='\(.*\)'/\1/p" "$out")
  KEYWARD_ADDR=http://127.0.0.1:18298 KEYWARD_TOKEN=$token "$bin" secrets set -p secret -e bench \
    STRIPE_KEY=sk_test_51H8abcdEFGH1234 DATABASE_URL=postgres://u:p@h/db >/dev/null
  local lua=()
  [ "$scenario" = write ] && lua=(-s bench/lua/kv_write.lua)
  local res
  res=$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" --latency -H "Authorization: Bearer $token" "${lua[@]}" \
    "http://127.0.0.1:18298/api/v1/mounts/secret/secrets/bench")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$out"
  local rps p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$res")
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$res")
  [ -z "$errors" ] || { echo "errors in $bin $audit $scenario: $errors" >&2; exit 1; }
  echo "$rps $p99"
}

results=$work/results
for round in $(seq 1 "$rounds"); do
  order="a b"; [ $((round % 2)) -eq 0 ] && order="b a"
  for side in $order; do
    for scenario in read write; do
      for audit in on off; do
        echo "$side $scenario $audit $(measure "$work/keyward-$side" $audit $scenario)" >>"$results"
      done
    done
  done
done

report() {
echo "A = $a ($(git rev-parse --short "$a")), B = $b ($(git rev-parse --short "$b")); $rounds rounds × ${secs}s, wrk -t1 -c16 on CPU 1, server on CPU 0"
echo
echo "| scenario | audit | A req/s median (min–max) | B req/s median (min–max) | B/A | A p99 ms median | B p99 ms median |"
echo "|---|---|---|---|---|---|---|"
for scenario in read write; do
  for audit in on off; do
    python3 - "$results" "$scenario" "$audit" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def pick(side, col):
    return [float(r[col]) for r in rows if r[0] == side and r[1] == sys.argv[2] and r[2] == sys.argv[3]]
ra, rb = pick("a", 3), pick("b", 3)
pa, pb = pick("a", 4), pick("b", 4)
ma, mb = statistics.median(ra), statistics.median(rb)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {ma:,.0f} ({min(ra):,.0f}–{max(ra):,.0f}) | {mb:,.0f} ({min(rb):,.0f}–{max(rb):,.0f}) "
      f"| {mb / ma:.3f} | {statistics.median(pa):.2f} | {statistics.median(pb):.2f} |")
PY
  done
done
}
{ echo; echo "### A/B: $a vs $b — $(date -u +%Y-%m-%d), $(nproc) cores"; echo; report; } | tee -a bench/results/history.md
