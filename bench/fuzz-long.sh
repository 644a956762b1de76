#!/usr/bin/env bash
# The long schema-fuzzing run: scripts/fuzz with SECONDS (default 600) per OpenAPI document,
# instead of the 45 s scripts/test gives each. Any failure is a bug to fix; record the run's
# totals in bench/results/history.md.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${1:-600} scripts/fuzz
