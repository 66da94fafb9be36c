#!/usr/bin/env bash
# Usage: scripts/interop-libraries.sh [--perl]
#
# Our server and CPython's, called by XML-RPC clients nobody here wrote: CPython's
# xmlrpc.client, npm's `xmlrpc` 1.3.2 (Node.js; installed into a temporary folder from the npm
# registry), and with --perl Perl's RPC::XML::Client (Debian's librpc-xml-perl, installed with
# apt-get if missing). Each client makes the same calls against a fresh cluster of our
# `server` (release build) and a fresh cluster of the stand-in (CPython's SimpleXMLRPCServer
# with the original's Process; --agreement, so it serves system.multicall as ours does), each
# on a free port block: sends that forward and that are denied, a store, a majority, an unknown
# method, a wrong arity, markup and non-ASCII in a value, and a system.multicall batch. For
# every client, every answer as that client reads it (value, or fault code and string) must be
# the same from our server as from CPython's. Prints one line per call and client and a
# summary table; exit 0 when all agree, 1 otherwise. docs/protocol.md ("Other clients")
# records the last result.
set -euo pipefail
cd "$(dirname "$0")/.."

perl_too=0
[ "${1:-}" = "--perl" ] && perl_too=1

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --bin server
(cd "$work" && npm install --silent --no-audit --no-fund --no-save xmlrpc@1.3.2 >/dev/null)
if [ "$perl_too" = 1 ] && ! perl -MRPC::XML::Client -e1 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librpc-xml-perl >/dev/null
fi

# A free block of 8 ports between 20000 and 32000 (P, Q, R, S and neighbours).
free_base() {
  python3 - <<'EOF'
import random, socket
for _ in range(200):
    base, socks = random.randrange(20000, 32000 - 8), []
    try:
        for p in range(base, base + 8):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}

# Wait until P..S accept on the port block from $1.
wait_ports() {
  python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.time() + 15
for port in range(int(sys.argv[1]), int(sys.argv[1]) + 4):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close(); break
        except OSError:
            if time.time() > deadline: sys.exit(f"port {port} not ready")
            time.sleep(0.05)
EOF
}

# Start a fresh cluster of $1 (rust: our server; python: CPython's SimpleXMLRPCServer, the
# stand-in with --agreement, which also registers system.multicall); sets $base.
start() {
  [ -n "$server_pid" ] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  base=$(free_base)
  case "$1" in
    rust) target/release/server --port-base "$base" --quiet >"$work/server.out" 2>&1 & ;;
    python) python3 scripts/python/server.py --agreement --port-base "$base" >"$work/server.out" 2>&1 & ;;
  esac
  server_pid=$!
  wait_ports "$base"
}

# The calls: (node, method, params). Every client makes them in this order on a fresh server,
# so the state each sees is the same; the server is restarted between clients.
cat >"$work/calls.json" <<'EOF'
[
  ["P", "send_message", ["Q", "attack"]],
  ["P", "send_message", ["R", "attack"]],
  ["Q", "receive_message", ["X", "retreat"]],
  ["Q", "receive_message", ["Y", "<&>'\"\u00e9 \u8a9e"]],
  ["Q", "finalize_decision", []],
  ["Q", "nope", []],
  ["Q", "receive_message", ["only one"]],
  ["R", "send_message", ["", "attack"]],
  ["Q", "system.multicall", [[{"methodName": "receive_message", "params": ["Z", "attack"]},
                              {"methodName": "nope", "params": []}]]],
  ["Q", "finalize_decision", []]
]
EOF

cat >"$work/python_client.py" <<'EOF'
import json, sys, xmlrpc.client
base, calls = int(sys.argv[1]), json.load(open(sys.argv[2]))
for node, method, params in calls:
    proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{base + ord(node) - ord('P')}/")
    try:
        print(json.dumps({"value": getattr(proxy, method)(*params)}, ensure_ascii=False))
    except xmlrpc.client.Fault as f:
        print(json.dumps({"fault": [f.faultCode, f.faultString]}, ensure_ascii=False))
EOF

cat >"$work/node_client.js" <<'EOF'
const xmlrpc = require(process.argv[4] + "/node_modules/xmlrpc");
const fs = require("fs");
const base = Number(process.argv[2]);
const calls = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
(async () => {
  for (const [node, method, params] of calls) {
    const port = base + node.charCodeAt(0) - "P".charCodeAt(0);
    const client = xmlrpc.createClient({ host: "127.0.0.1", port, path: "/" });
    const line = await new Promise((resolve) => {
      client.methodCall(method, params, (err, value) => {
        if (err && err.faultCode !== undefined) resolve({ fault: [err.faultCode, err.faultString] });
        else if (err) resolve({ error: String(err) });
        else resolve({ value });
      });
    });
    console.log(JSON.stringify(line));
  }
})();
EOF

cat >"$work/perl_client.pl" <<'EOF'
use strict; use warnings; use utf8;
use JSON::PP; use RPC::XML; use RPC::XML::Client;
binmode STDOUT, ':encoding(UTF-8)';
my ($base, $file) = @ARGV;
open my $fh, '<:encoding(UTF-8)', $file or die; local $/; my $calls = JSON::PP->new->decode(<$fh>);
my $json = JSON::PP->new->canonical->allow_nonref;
sub arg { my $v = shift; return RPC::XML::string->new($v) unless ref $v;
  return RPC::XML::array->new(map { arg($_) } @$v) if ref $v eq 'ARRAY';
  return RPC::XML::struct->new(map { ($_ => arg($v->{$_})) } keys %$v); }
# A fault struct's code as the number it is (Perl holds it as a string).
sub numify { my $v = shift;
  if (ref $v eq 'HASH') { $v->{faultCode} += 0 if exists $v->{faultCode}; numify($_) for values %$v }
  elsif (ref $v eq 'ARRAY') { numify($_) for @$v }
  return $v; }
for my $c (@$calls) {
  my ($node, $method, $params) = @$c;
  my $client = RPC::XML::Client->new("http://127.0.0.1:" . ($base + ord($node) - ord('P')) . "/");
  my $r = $client->send_request($method, map { arg($_) } @$params);
  if (!ref $r) { print $json->encode({error => $r}), "\n" }
  elsif ($r->is_fault) { print $json->encode({fault => [$r->code + 0, $r->string]}), "\n" }
  else { print $json->encode({value => numify($r->value)}), "\n" }
}
EOF

clients=(cpython npm-xmlrpc)
[ "$perl_too" = 1 ] && clients+=(perl-rpc-xml)
for client in "${clients[@]}"; do
  for side in python rust; do
    start "$side"
    case "$client" in
      cpython) python3 "$work/python_client.py" "$base" "$work/calls.json" ;;
      npm-xmlrpc) node "$work/node_client.js" "$base" "$work/calls.json" "$work" ;;
      perl-rpc-xml) perl "$work/perl_client.pl" "$base" "$work/calls.json" ;;
    esac >"$work/$client.$side.out"
  done
done

python3 - "$work" "${clients[@]}" <<'EOF'
import json, sys
work, clients = sys.argv[1], sys.argv[2:]
calls = json.load(open(f"{work}/calls.json"))
def read(c, side):
    return [json.loads(l) for l in open(f"{work}/{c}.{side}.out", encoding="utf-8")]
ok = True
summary = []
for c in clients:
    theirs, ours = read(c, "python"), read(c, "rust")
    agree = 0
    for i, (node, method, params) in enumerate(calls):
        t = theirs[i] if i < len(theirs) else {"error": "no answer"}
        o = ours[i] if i < len(ours) else {"error": "no answer"}
        same = t == o
        agree += same
        ok &= same
        shown = json.dumps(o, ensure_ascii=False)
        print(f"{'ok  ' if same else 'DIFF'} {c:13} {node}.{method}: {shown[:100]}")
        if not same:
            print(f"     {'':13} CPython's server: {json.dumps(t, ensure_ascii=False)[:100]}")
    summary.append((c, len(calls), agree))
print()
print(f"{'client':13} {'calls':>5} {'same answer from our server as from CPython':>44}")
for c, n, agree in summary:
    print(f"{c:13} {n:5} {agree:44}")
sys.exit(0 if ok else 1)
EOF
