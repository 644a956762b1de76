#!/usr/bin/env bash
# The audited tail: a masked native read at CONNS connections for SECS seconds against a release
# dev server (a fresh SQLite database) (pinned to CPU 0; the load generator, bench/tools `tail`, on
# CPU 1), latency recorded per second (p50, p99, p99.9, max) beside the write-ahead log's size.
# ROUNDS interleaved rounds of audit on and off (on off off on on off …); prints each run's
# whole-run percentiles, the medians with their spread, and the worst seconds of the audited runs,
# and keeps the per-second tables in bench/results/tail-<date>/. With BASELINE=path/to/keyward
# (an earlier build), each round also measures that binary audited (mode `base`), so a change's
# effect on the audited read is compared in the same interleaved run.
#   [BASELINE=bin] bench/tail.sh [SECS=60] [ROUNDS=5] [CONNS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60} rounds=${2:-5} conns=${3:-64}
cargo build --release -q -p keyward-cli -p keyward-bench-tools --bin keyward --bin tail
bin=target/release/keyward
out_dir=bench/results/tail-$(date -u +%Y-%m-%d)
mkdir -p "$out_dir"
work=$(mktemp -d)
port=18401
trap 'pkill -f "listen 127.0.0.1:$port" || true; rm -rf "$work"' EXIT

measure() { # mode(on|off|base) run-number -> the run's summary line
  local audit=$1 n=$2 flags=() pid token wal bin=$bin
  [ "$audit" = off ] && flags=(--no-audit)
  [ "$audit" = base ] && bin=$BASELINE
  rm -rf "$work/db" && mkdir -p "$work/db"
  # A dev server (a fresh SQLite database under $work/db): --no-audit is refused without --dev.
  TMPDIR="$work/db" taskset -c 0 "$bin" server --dev --listen 127.0.0.1:$port --rate-limit off \
    --ip-rate-limit off --log-format json "${flags[@]}" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 100); do grep -q "export KEYWARD_TOKEN" "$work/out" && break; sleep 0.1; done
  token=$(sed -n "s/.*export KEYWARD_TOKEN='\(.*\)'/\1/p" "$work/out")
  wal=$(ls "$work"/db/keyward-dev-*/*-wal | head -1)
  KEYWARD_ADDR=http://127.0.0.1:$port KEYWARD_TOKEN=$token "$bin" secrets set -p secret -e bench \
    STRIPE_KEY=sk_test_51H8abcdEFGH1234 DATABASE_URL=postgres://u:p@h/db >/dev/null
  taskset -c 1 target/release/tail "http://127.0.0.1:$port/api/v1/mounts/secret/secrets/bench" "$token" "$conns" \
    "$secs" "$wal" >"$out_dir/$audit-$n.csv"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  tail -1 "$out_dir/$audit-$n.csv"
}

for round in $(seq 1 "$rounds"); do
  order="on off${BASELINE:+ base}"
  [ $((round % 2)) -eq 0 ] && order=$(tr ' ' '\n' <<<"$order" | tac | paste -sd' ')
  for audit in $order; do
    echo "$audit $round $(measure "$audit" "$round")"
  done
done | tee "$work/summary"

python3 - "$work/summary" "$out_dir" "$secs" "$conns" <<'PY' | tee -a bench/results/history.md
import re, statistics, sys, glob
summary, out_dir, secs, conns = sys.argv[1:5]
runs = {"on": [], "off": [], "base": []}
for line in open(summary):
    m = re.match(r"(on|off|base) (\d+) # total (\d+) requests in ([\d.]+)s \((\d+)/s\), errors (\d+); p50 (\d+) µs, p99 (\d+) µs, p99.9 (\d+) µs, max (\d+) µs", line)
    if m:
        runs[m[1]].append(dict(rps=int(m[5]), errors=int(m[6]), p50=int(m[7]), p99=int(m[8]), p999=int(m[9]), max=int(m[10])))
def cell(mode, key, scale=1.0, fmt="{:,.2f}"):
    v = [r[key] / scale for r in runs[mode]]
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
print(f"\n### The audited tail — {len(runs['on'])} interleaved rounds × {secs}s, {conns} connections, server on CPU 0, load on CPU 1\n")
print("| audit | requests/s median (min–max) | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
print("|---|---|---|---|---|---|---|")
for mode in [m for m in ("on", "off", "base") if runs[m]]:
    print(f"| {mode} | {cell(mode, 'rps', fmt='{:,.0f}')} | {cell(mode, 'p50', 1000)} | {cell(mode, 'p99', 1000)} "
          f"| {cell(mode, 'p999', 1000)} | {cell(mode, 'max', 1000)} | {sum(r['errors'] for r in runs[mode])} |")
med = lambda mode, k: statistics.median(r[k] for r in runs[mode])
print(f"\nAudited / unaudited medians: p99 **{med('on','p99')/med('off','p99'):.2f}×**, p99.9 **{med('on','p999')/med('off','p999'):.2f}×** "
      f"(target ≤ 3×), throughput {med('on','rps')/med('off','rps'):.2f}×.")
if runs["base"]:
    print(f"Audited against the baseline build (audited): throughput {med('on','rps')/med('base','rps'):.3f}×, "
          f"p99 {med('on','p99')/med('base','p99'):.2f}×, p99.9 {med('on','p999')/med('base','p999'):.2f}×.")
worst = []
for f in glob.glob(f"{out_dir}/on-*.csv") + glob.glob(f"{out_dir}/base-*.csv"):
    for line in open(f):
        if line[0].isdigit():
            s, n, p50, p99, p999, mx, wal = line.strip().split(",")
            worst.append((int(p99), f.split("/")[-1], int(s), int(mx), int(wal)))
worst.sort(reverse=True)
for prefix in ("on", "base"):
    mine = [w for w in worst if w[1].startswith(prefix + "-")]
    if mine:
        print(f"\nWorst seconds ({prefix}, p99): " + "; ".join(f"{w[1]} s{w[2]} p99 {w[0]/1000:.1f} ms, max {w[3]/1000:.1f} ms" for w in mine[:5]))
PY
