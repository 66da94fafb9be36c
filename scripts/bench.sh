#!/usr/bin/env bash
# Benchmark the Rust server and client against the Python stand-ins, side by side in one run,
# and print one table with ratios (see BENCHMARKS.md for results and how to read them), then the
# Rust server's figures as a share of a bare hyper server (examples/ceiling.rs) in the same run.
#
# Usage: scripts/bench.sh [--duration SECS] [--quick] [--heavy] [--adversary]
#   --duration SECS  length of each load run (default 5)
#   --quick          shorter runs and fewer repetitions (a smoke run, figures are noisier)
#   --heavy          also the long agreement figures: explore n=10 m=3, OM(5) over 16 nodes
#   --adversary      only the adversary's figures (`client explore --adversary`, its targets);
#                    exit 1 when a target is missed
# Builds what it needs (cargo build --release), picks free ports, never touches 8000-8003,
# and stops every process it started, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() {
  # The driver stops its own processes; this catches anything left if it was killed.
  pkill -P $$ 2>/dev/null || true
}
trap cleanup EXIT INT TERM

command -v python3 >/dev/null || { echo "bench.sh: python3 is required" >&2; exit 1; }
echo "== building (release)" >&2
cargo build --release --bins --example ceiling --quiet
python3 scripts/bench_driver.py "$@"
