#!/usr/bin/env bash
# Benchmark the Rust server and client against the Python stand-ins, side by side in one run,
# and print one table with ratios (see BENCHMARKS.md for results and how to read them), then our
# XML-RPC codec against dxr's on the hot paths' bodies (examples/codec_bench.rs), then the
# Rust server's figures as a share of a bare hyper server (examples/ceiling.rs) in the same run.
#
# Usage: scripts/bench.sh [--duration SECS] [--quick] [--heavy] [--adversary] [--baseline REV]
#   --duration SECS  length of each load run (default 5)
#   --quick          shorter runs and fewer repetitions (a smoke run, figures are noisier)
#   --heavy          also the long agreement figures: explore n=10 m=3, OM(5) over 16 nodes
#   --adversary      only the adversary's figures (`client explore --adversary`, its targets);
#                    exit 1 when a target is missed
#   --baseline REV   only the agreement figures (OM(4) over 13 nodes, OM(3) over 10, explore)
#                    and issue 32's targets (the 100-node all-to-all, send_message at 16
#                    connections as a share of half the ceiling; with --heavy, explore n=10
#                    m=3), of this tree and of git revision REV built beside it
#                    (target/baseline/REV), runs alternating in one sitting: the before/after
#                    of a change, with the ratio now/baseline
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
cargo build --release --bins --example ceiling --example codec_bench --quiet

args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--baseline" ]; then
    [ $# -ge 2 ] || { echo "bench.sh: --baseline needs a git revision" >&2; exit 2; }
    rev=$(git rev-parse --short "$2")
    dir="target/baseline/$rev"
    if [ ! -x "$dir/release/client" ]; then
      echo "== building the baseline $rev (release, in $dir)" >&2
      src=$(mktemp -d)
      git worktree add --quiet --detach "$src" "$rev"
      CARGO_TARGET_DIR="$(pwd)/$dir" cargo build --release --bins --quiet --manifest-path "$src/Cargo.toml"
      git worktree remove --force "$src"
    fi
    args+=(--baseline "$dir/release")
    shift 2
  else
    args+=("$1")
    shift
  fi
done
python3 scripts/bench_driver.py "${args[@]}"
