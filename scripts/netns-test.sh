#!/usr/bin/env bash
# Real hosts on one machine: one network namespace per general, each with its own address on a
# bridge, one `server` per namespace, and the client in a namespace of its own. Runs the
# original scenario, OM(1) with n=4, then OM with one node cut off (link down) and with one
# node crashed (killed), and OM under netem latency when tc supports it. Every check prints
# PASS/FAIL; the script exits 1 on the first failure. Needs root and iproute2 (installed if
# missing). Cleans up every namespace and process, also on failure or Ctrl-C.
#
# Usage: scripts/netns-test.sh            (builds target/release/{server,client} if needed)
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="gnt$$"                  # unique per run: namespaces gnt<pid>-P ...
SUBNET="10.213.77"              # the test hosts' private subnet, inside our namespaces only
NODES=(P Q R S)
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}-"); do
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
if ! command -v ip >/dev/null 2>&1; then
  echo "== installing iproute2"
  apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
fi
if [ ! -x target/release/server ] || [ ! -x target/release/client ] || [ -n "$(find src Cargo.toml -newer target/release/client 2>/dev/null | head -1)" ]; then
  echo "== building release binaries"
  cargo build --release --quiet --bin server --bin client
fi
SERVER="$PWD/target/release/server"
CLIENT="$PWD/target/release/client"

# A switch namespace holds the bridge; every host (and the client) hangs off it by a veth
# pair. Nothing touches the root namespace's network.
SW="${PREFIX}-sw"
ip netns add "$SW"
ip netns exec "$SW" ip link add br0 type bridge
ip netns exec "$SW" ip link set br0 up
ip netns exec "$SW" ip link set lo up

add_host() { # name index
  local ns="${PREFIX}-$1" ip="${SUBNET}.$2"
  ip netns add "$ns"
  ip link add "v$$-$2" type veth peer name eth0 netns "$ns"
  ip link set "v$$-$2" netns "$SW"
  ip netns exec "$SW" ip link set "v$$-$2" master br0 up
  ip netns exec "$ns" ip addr add "$ip/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set lo up
}

CLUSTER="$WORK/cluster.toml"
: > "$CLUSTER"
for i in "${!NODES[@]}"; do
  n="${NODES[$i]}"
  add_host "$n" $((i + 1))
  {
    echo "[[node]]"
    echo "name = \"$n\""
    echo "url = \"http://${SUBNET}.$((i + 1)):$((8000 + i))/\""
    [ "$n" = P ] && echo "faulty = true"
    echo
  } >> "$CLUSTER"
done
add_host client 100
echo "== cluster file"; cat "$CLUSTER"

start_node() { # name [extra server flags...]
  local name="$1"; shift
  ip netns exec "${PREFIX}-$name" "$SERVER" --cluster "$CLUSTER" --nodes "$name" --quiet \
    --rpc-timeout 2 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  eval "PID_$name=$!"
}
wait_node() { # name index (polls until it accepts, deadline 20 s)
  local deadline=$((SECONDS + 20))
  until ip netns exec "${PREFIX}-client" bash -c "exec 3<>/dev/tcp/${SUBNET}.$2/$((7999 + $2))" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "node $1 not reachable within 20 s"
    sleep 0.05
  done
}
client() { ip netns exec "${PREFIX}-client" "$CLIENT" --cluster "$CLUSTER" --rpc-timeout 2 "$@"; }

for n in "${NODES[@]}"; do start_node "$n"; done
# Poll until every node answers (deadline 20 s).
deadline=$((SECONDS + 20))
for i in "${!NODES[@]}"; do
  until ip netns exec "${PREFIX}-client" bash -c "exec 3<>/dev/tcp/${SUBNET}.$((i + 1))/$((8000 + i))" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "node ${NODES[$i]} not reachable within 20 s: $(cat "$WORK/${NODES[$i]}.err")"
    sleep 0.05
  done
done
pass "4 hosts up: ${SUBNET}.1-4, client at ${SUBNET}.100"

# 1. The original scenario across hosts.
out=$(client --quiet)
expected=$'Process P finalized decision: faulty\nProcess Q finalized decision: attack\nProcess R finalized decision: attack\nProcess S finalized decision: attack'
[ "$out" = "$expected" ] || fail "original scenario printed:\n$out"
# Into a file the server writes its lines at most every 100 ms: poll (deadline 5 s).
deadline=$((SECONDS + 5))
until grep -q "Q received decision 'attack' from P" "$WORK/Q.out"; do
  [ $SECONDS -lt $deadline ] || fail "Q did not print P's message"
  sleep 0.05
done
pass "original scenario across 4 hosts"

# 2. OM(1), n = 4 (P is the original faulty P, deny:R,S, so a traitorous commander: use Q).
json=$(client om -m 1 --commander Q --round-timeout-ms 300 --json) || fail "OM(1) failed: $json"
echo "$json" | grep -q '"ic1":true' || fail "OM(1): $json"
echo "$json" | grep -q '"messages_per_round":\[3,4\]' || fail "OM(1) message count (P denies R and S, so 3 + 4): $json"
pass "OM(1) n=4 across hosts: IC1 and IC2 hold, 3 + 4 messages (the faulty P denies R and S)"

# 3. Partition: S's link goes down before the run. With the faulty P that makes two faulty
#    nodes for m = 1: the run is void (exit 3), not blamed on OM, and the client names S.
ip netns exec "$SW" ip link set "v$$-4" down
set +e
json=$(client om -m 1 --commander Q --round-timeout-ms 300 --json 2>"$WORK/partition.err")
code=$?
set -e
[ "$code" = 3 ] || fail "partition: exit $code, not 3 (void): $json"
echo "$json" | grep -q '"verdict":"void"' || fail "partition: not void: $json"
echo "$json" | grep -q 'more than m = 1' || fail "partition: void without its reason: $json"
# The void report names each cause once, with its nodes (issue 31): S is among them.
echo "$json" | grep -q '"causes":\[.*"nodes":\[[^]]*"S"' || fail "partition: S not named in the causes: $json $(cat "$WORK/partition.err")"
pass "partition (S cut off, P faulty): void run (2 faulty > m = 1), its causes name S"
ip netns exec "$SW" ip link set "v$$-4" up

# 3b. Partition in the middle of a run: S answers 700 ms late (delay:700, a traitor), so its
#     messages are still on their way when its link goes down 300 ms into the run. What it
#     had not delivered counts as missing; messages to it failing do not void the run (it is
#     a traitor). With P and S both traitors (2 > m = 1) OM(1) guarantees nothing: only IC1
#     (a single loyal lieutenant, R) is checked.
kill "$PID_S"; wait "$PID_S" 2>/dev/null || true
start_node S --behaviour S=delay:700
wait_node S 4
set +e
client om -m 1 --commander Q --json >"$WORK/midrun.json" 2>"$WORK/midrun.err" &
run_pid=$!
# Fault injection at a point inside the run, not a readiness wait: S answers node_info and
# om_start 700 ms late each, so by 1.6 s the run has started everywhere and round 1 is on.
sleep 1.6
ip netns exec "$SW" ip link set "v$$-4" down
wait "$run_pid"
set -e
json=$(cat "$WORK/midrun.json")
echo "$json" | grep -q '"ic1":true' || fail "mid-run partition: IC1 violated: $json $(cat "$WORK/midrun.err")"
echo "$json" | grep -q '"S"' || fail "mid-run partition: S not among the traitors: $json"
echo "$json" | grep -q '"verdict":"void"' && fail "mid-run partition: a traitor's failure voided the run: $json"
echo "$json" | grep -q '"messages_per_round":\[[0-9]' || fail "mid-run partition: the run did not start: $json"
pass "partition during a run (S cut off 1.6 s in): IC1 holds; $(grep -o '"messages_per_round":\[[0-9,]*\]' <<<"$json")"
ip netns exec "$SW" ip link set "v$$-4" up
kill "$PID_S"; wait "$PID_S" 2>/dev/null || true
start_node S
wait_node S 4

# 4. Crash: kill R before the run. Again two faulty nodes (P, R) for m = 1: void, exit 3.
kill "$PID_R"; wait "$PID_R" 2>/dev/null || true
set +e
json=$(client om -m 1 --commander Q --round-timeout-ms 300 --json 2>"$WORK/crash.err")
code=$?
set -e
[ "$code" = 3 ] || fail "crash: exit $code, not 3 (void): $json"
echo "$json" | grep -q '"verdict":"void"' || fail "crash: not void: $json"
echo "$json" | grep -q '"causes":\[.*"nodes":\[[^]]*"R"' || fail "crash: R not named in the causes: $json $(cat "$WORK/crash.err")"
pass "crash (R killed, P faulty): void run, its causes name R"
start_node R
wait_node R 3

# 5. Latency and loss with netem, when the kernel has it.
if ip netns exec "${PREFIX}-S" tc qdisc add dev eth0 root netem delay 30ms 10ms loss 0% 2>/dev/null; then
  json=$(client om -m 1 --commander Q --round-timeout-ms 500 --json) || fail "netem: $json"
  echo "$json" | grep -q '"ic1":true' || fail "netem: $json"
  pass "OM(1) with 30 ms +- 10 ms latency on S: IC1 and IC2 hold"
else
  echo "SKIP: tc netem not available in this kernel"
fi

echo "netns test: all checks passed"
