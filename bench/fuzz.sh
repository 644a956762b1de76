#!/usr/bin/env bash
# Runs every fuzz target (crates/keyward-fuzz, through fuzz/) under libFuzzer for at least
# RUNS executions each (default 1,000,000), growing the committed corpora under fuzz/corpus and
# minimising them afterwards; writes executions, edge coverage and features per target to
# bench/results/fuzz-<date>.md. Needs the nightly toolchain (installs cargo-fuzz when missing).
# A crash stops the run with its input under fuzz/artifacts/<target>/: add it to the corpus,
# fix the parser, and `cargo test -p keyward-fuzz` keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-1000000}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
out="bench/results/fuzz-$(date -u +%Y-%m-%d).md"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
cd fuzz
cargo +nightly fuzz build -O
{
  echo "# Fuzzing run, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, libFuzzer via cargo-fuzz (nightly)"
  echo
  echo "| target | executions | seconds | exec/s | edges (cov) | features (ft) | corpus files |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
} >"../$out"
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  start=$(date +%s)
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -runs="$runs" -max_len=4096 -print_final_stats=1 >"$logs/$t" 2>&1
  secs=$(( $(date +%s) - start ))
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t" | tail -1)
  execs=$(grep -E '^stat::number_of_executed_units:' "$logs/$t" | awk '{print $2}')
  cov=$(echo "$done_line" | sed -E 's/.*cov: ([0-9]+).*/\1/')
  ft=$(echo "$done_line" | sed -E 's/.*ft: ([0-9]+).*/\1/')
  cargo +nightly fuzz cmin -O "$t" "corpus/$t" >/dev/null 2>&1
  files=$(find "corpus/$t" -type f | wc -l)
  echo "| \`$t\` | $execs | $secs | $(( execs / (secs > 0 ? secs : 1) )) | $cov | $ft | $files |" >>"../$out"
  echo "$t: $execs executions in ${secs}s, cov $cov, ft $ft, $files corpus files"
done
echo "wrote $out"
