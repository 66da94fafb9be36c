#!/usr/bin/env bash
# Soak and fault test: a Rust cluster under load for a while, faults injected, one table of
# what it held and what it lost; exits non-zero when any row fails (see RELIABILITY.md).
#
# Usage: scripts/soak.sh [--minutes N] [--quick]
#   --minutes N   how long (default 5), in slices of a minute
#   --quick       about 60 s in slices of 15 s (what scripts/test.sh runs)
# Builds what it needs (cargo build --release), picks free ports, never touches 8000-8003,
# and stops every process it started, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() {
  pkill -P $$ 2>/dev/null || true
}
trap cleanup EXIT INT TERM

command -v python3 >/dev/null || { echo "soak.sh: python3 is required" >&2; exit 1; }
echo "== building (release)" >&2
cargo build --release --bins --quiet
python3 scripts/soak_driver.py "$@"
