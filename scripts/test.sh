#!/usr/bin/env bash
# The whole test suite in one command, the one the README gives and .ci/run runs: formatting,
# clippy, the tests, the browser tests, the network-namespace test (as root) and the quick
# soak. Every part runs even after one fails; each prints one summary line with its wall
# time, and the command exits 1 if any part failed.
#
# Usage: scripts/test.sh [--quick]
#   --quick   formatting, clippy and the tests only, with fewer property-test cases: the
#             inner loop (`cargo test` alone is the quickest: no Chromium, no root needed)
# Environment: PROPTEST_CASES (default 256 for the whole suite, 64 with --quick) sets how many
# cases each property test draws; TEST_THREADS how many tests run at once (default: cargo's,
# one per core).
# Needs: a Rust toolchain with rustfmt and clippy, python3; for the browser tests Debian's
# chromium, for the network test root and iproute2 (.ci/run installs what is missing). A part
# whose tool is missing is reported as skipped, with what it needs.
set -uo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

if $quick; then
  export PROPTEST_CASES="${PROPTEST_CASES:-64}"
else
  export PROPTEST_CASES="${PROPTEST_CASES:-256}"
fi
threads=()
if [ -n "${TEST_THREADS:-}" ]; then
  threads=(--test-threads "$TEST_THREADS")
fi

summary=()
failed=0
started=$(date +%s)

# part NAME COMMAND...: run it, its output as it comes, then one summary line.
part() {
  local name="$1"
  shift
  echo "== $name: $*"
  local t0 code
  t0=$(date +%s)
  "$@"
  code=$?
  local secs=$(( $(date +%s) - t0 ))
  if [ "$code" = 0 ]; then
    summary+=("PASS  $name  (${secs} s)")
  else
    summary+=("FAIL  $name  (${secs} s, exit $code)")
    failed=1
  fi
}

skip() {
  summary+=("SKIP  $1  ($2)")
}

part fmt cargo fmt --all -- --check
part clippy cargo clippy --all-targets -- -D warnings
part tests cargo test -- "${threads[@]}"
if ! $quick; then
  if command -v chromium >/dev/null 2>&1; then
    part browser cargo test -- --ignored --test-threads 1
  else
    skip browser "needs chromium (Debian's package)"
  fi
  # The release binaries the soak and the network test run, built once for both.
  part release cargo build --release --bins --quiet
  if [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1; then
    part netns scripts/netns-test.sh
  else
    skip netns "needs root and iproute2"
  fi
  part soak scripts/soak.sh --quick
fi

echo
echo "== scripts/test.sh: $(( $(date +%s) - started )) s in all"
for line in "${summary[@]}"; do
  echo "$line"
done
exit "$failed"
