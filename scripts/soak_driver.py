#!/usr/bin/env python3
"""The body of scripts/soak.sh: hold a Rust cluster under load for a while, inject faults, and
print one table of what it held, what it went through and what it lost (nothing, or FAIL).

Usage: python3 scripts/soak_driver.py [--minutes N] [--quick]   (soak.sh builds first)
Standard library only. Every process it starts is stopped in a finally block.

The cluster: nodes N0..N6 (OM(2) needs 7), N0-N5 in one `server` process ("main"), N6 alone in
another ("victim"), so N6 can be stalled and killed while the rest keeps serving. All the
while:
- load: `loadgen`, 16 connections of `receive_message` on N1 and 16 of `send_message` on N2
  (N2 calls N3), figures per slice (a minute; 15 s with --quick);
- agreement: `client om -m 2` over the seven nodes every 3 s: each run holds or is void
  (N6 stalled or down is a loyal node lost), never violated;
- ledgers: one writer per node N4 (main) and N6 (victim) sends `receive_message` with 200
  keys in turn and remembers the last value each key was acknowledged with; at the end
  `get_messages` must show exactly those (N6 starts empty when restarted, as the original
  does: its ledger starts again at the restart);
- faults, once each: N6 stalled (SIGSTOP) beyond --rpc-timeout and resumed, N6 killed
  (SIGKILL) and restarted, a client that sends and never reads, 500 idle connections opened
  and dropped, hostile bodies (malformed, DOCTYPE, deep, oversized, gzip bomb, and issue 13's
  value over the cap, forbidden character, names outside the cluster), and an
  oversized agreement run every 5 s;
- memory: the main process's RSS at the end of each slice; what it keeps 3 s after the load
  stops may exceed its RSS after the warm-up (the first minute; 30 s with --quick) by at most
  10%;
- a clean stop: SIGTERM, exit 0 within --request-timeout.
Side by side: the same receive_message load on the Python stand-in and on N1, 10 s each (5 s with
--quick).
"""
import argparse
import base64
import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client

from harness import REL, ROOT, free_base, kill_all, loadgen, memory_kb, start

SERVER, CLIENT = (os.path.join(REL, b) for b in ("server", "client"))
PY_SERVER = os.path.join(ROOT, "scripts", "python", "server.py")
RPC_TIMEOUT = 2
REQUEST_TIMEOUT = 5
NODES = 7


def rss_kb(p):
    return memory_kb(p, "VmRSS")


class Ledger(threading.Thread):
    """Sequential receive_message calls to one node; remembers the last acknowledged value of
    each key. `restart()` (under the lock) forgets everything: the node starts empty."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.lock = threading.Lock()
        self.acked = {}
        self.calls = self.failed = 0

    def run(self):
        i = 0
        proxy = None
        while not self.stop.is_set():
            key, value = f"k{i % 200}", f"v{i}"
            i += 1
            with self.lock:
                try:
                    if proxy is None:
                        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/")
                    proxy.receive_message(key, value)
                    self.acked[key] = value
                    self.calls += 1
                except Exception:
                    self.failed += 1
                    proxy = None
            time.sleep(0.002)

    def restart(self):
        self.acked = {}

    def check(self):
        got = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/").get_messages()
        missing = [k for k, v in self.acked.items() if got.get(k) != v]
        return missing


def raw(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    if not read:
        return s
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf and b"Connection: close" not in buf and len(buf) > 20:
                head, _, body = buf.partition(b"\r\n\r\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    except socket.timeout:
        pass
    s.close()
    return buf


def post(body, extra=b""):
    return (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def hostile(port):
    """Hostile bodies: each must get an HTTP 4xx or an XML-RPC fault, never a hang or a crash."""
    call = lambda inner: (b"<?xml version='1.0'?><methodCall><methodName>receive_message"
                          b"</methodName><params>" + inner + b"</params></methodCall>")
    deep = b"<param>" + b"<value><array><data>" * 100 + b"</data></array></value>" * 100 + b"</param>"
    bomb = gzip.compress(b"\0" * (100 << 20))
    cases = {
        "malformed": post(b"garbage<"),
        "DOCTYPE": post(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + call(b"")),
        "deep": post(call(deep)),
        "oversized": post(b"x" * (2 << 20)),
        "gzip bomb": post(bomb, b"Content-Encoding: gzip\r\n"),
        # Issue 13's attacks: a value past --max-value, a character XML 1.0 forbids, and
        # names outside the cluster (one wraps around to a member's port in the original).
        "value over the cap": post(xmlrpc.client.dumps(("S", "v" * 70_000), "receive_message").encode()),
        "forbidden character": post(call(b"<param><value>a&#x1b;b</value></param>"
                                         b"<param><value>attack</value></param>")),
        "name outside the cluster": post(xmlrpc.client.dumps(("Z", "x"), "send_message").encode()),
        "wrapped name": post(xmlrpc.client.dumps((chr(ord("P") + 65536), "x"), "send_message")
                             .encode()),
    }
    bad = []
    for name, req in cases.items():
        answer = raw(port, req)
        status = answer[9:12]
        if not (status.startswith(b"4") or (status == b"200" and b"<fault>" in answer)):
            bad.append(f"{name}: {answer[:60]!r}")
    return bad


def main():
    # No call of this script may hang: a stalled node answers late, not never.
    socket.setdefaulttimeout(10)
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--quick", action="store_true", help="about 60 s, slices of 15 s (for CI)")
    args = ap.parse_args()
    slice_s = 15 if args.quick else 60
    total = 60 if args.quick else max(1, int(args.minutes * 60))
    slices = max(2, total // slice_s)
    total = slices * slice_s

    base = free_base(NODES + 2)
    ports = [base + i for i in range(NODES)]
    # --trace-events 1000, --max-runs 8: the bounded tables (traces, a few MB at the default
    # 10,000 events; remembered runs, 256 by default, about 4 KB per node and run here) fill
    # within the warm-up, so the memory row sees leaks, not a bounded table filling up.
    common = ["--port-base", str(base), "--cluster-size", str(NODES), "--faulty", "", "--quiet",
              "--rpc-timeout", str(RPC_TIMEOUT), "--request-timeout", str(REQUEST_TIMEOUT),
              "--trace-events", "1000", "--max-runs", "8"]
    main_nodes = ",".join(f"N{i}" for i in range(NODES - 1))
    rows, fails = [], []

    def row(name, figure, ok=True):
        rows.append((name, figure, "PASS" if ok else "FAIL"))
        if not ok:
            fails.append(name)

    try:
        main_p = start([SERVER, *common, "--nodes", main_nodes], ports[:-1])
        victim = [start([SERVER, *common, "--nodes", f"N{NODES - 1}"], ports[-1:])]
        stop = threading.Event()
        ledgers = {"N4 (main)": Ledger(ports[4], stop), "N6 (victim)": Ledger(ports[6], stop)}
        for l in ledgers.values():
            l.start()

        outcomes = {"holds": 0, "void": 0, "violated": 0, "other": 0}

        def agreement():
            while not stop.is_set():
                r = subprocess.run(
                    [CLIENT, "--port-base", str(base), "--cluster-size", str(NODES), "--rpc-timeout",
                     "3", "om", "-m", "2", "--json"], capture_output=True, text=True)
                kind = {0: "holds", 3: "void", 1: "violated"}.get(r.returncode, "other")
                outcomes[kind] += 1
                stop.wait(3)

        refusals = {"refused": 0, "other": []}

        def trickle():
            names = [chr(ord("P") + i) for i in range(64)]
            # A start with well-formed secrets (docs/protocol-extensions.md): what the node
            # refuses is the run's size, its budget.
            secret = base64.b64encode(bytes(32)).decode()
            keys = {n: secret for n in names if n != "Q"}
            while not stop.is_set():
                try:
                    xmlrpc.client.ServerProxy(f"http://127.0.0.1:{ports[1]}/").om_start(
                        "huge", "P", names, 8, 1, "1", secret, keys)
                    refusals["other"].append("accepted")
                except xmlrpc.client.Fault as f:
                    if "budget" in f.faultString:
                        refusals["refused"] += 1
                    else:
                        refusals["other"].append(f.faultString[:80])
                except Exception as e:
                    refusals["other"].append(repr(e)[:80])
                stop.wait(5)

        helpers = [threading.Thread(target=agreement, daemon=True),
                   threading.Thread(target=trickle, daemon=True)]
        for h in helpers:
            h.start()

        def stall():
            os.kill(victim[0].pid, signal.SIGSTOP)
            time.sleep(RPC_TIMEOUT + 1)
            os.kill(victim[0].pid, signal.SIGCONT)
            return "N6 stopped for 3 s (beyond --rpc-timeout 2), resumed"

        def kill_restart():
            l = ledgers["N6 (victim)"]
            with l.lock:
                victim[0].kill()
                victim[0].wait()
                l.restart()
                victim[0] = start([SERVER, *common, "--nodes", f"N{NODES - 1}"], ports[-1:])
            return "N6 killed (SIGKILL) and restarted"

        def no_reader():
            s = raw(ports[1], post(xmlrpc.client.dumps((), "get_messages").encode()) * 200,
                    read=False)
            time.sleep(5)
            s.close()
            return "200 requests sent on one connection, nothing read for 5 s"

        def idle():
            socks = [socket.create_connection(("127.0.0.1", ports[1])) for _ in range(500)]
            time.sleep(2)
            for s in socks:
                s.close()
            return "500 idle connections opened, held 2 s, dropped"

        def hostile_bodies():
            bad = hostile(ports[1])
            if bad:
                raise RuntimeError("; ".join(bad))
            return ("malformed, DOCTYPE, deep, oversized, gzip bomb, value over the cap, forbidden "
                    "character, names outside the cluster: each a 4xx or a fault")

        faults = [(0.2, "peer stalled", stall), (0.35, "node killed", kill_restart),
                  (0.5, "client never reads", no_reader), (0.65, "idle connections", idle),
                  (0.8, "hostile bodies", hostile_bodies)]
        fault_rows = []

        def injector():
            t0 = time.monotonic()
            for at, name, f in faults:
                delay = t0 + at * total - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                try:
                    figure = f()
                    # The node still answers right after.
                    xmlrpc.client.ServerProxy(f"http://127.0.0.1:{ports[1]}/").get_messages()
                    fault_rows.append((name, figure, True))
                except Exception as e:
                    fault_rows.append((name, repr(e)[:100], False))

        inj = threading.Thread(target=injector, daemon=True)
        inj.start()

        per_slice = []
        for k in range(slices):
            res = {}
            t = [threading.Thread(target=lambda: res.__setitem__(
                     "recv", loadgen(ports[1], 16, slice_s, "receive_message", timeout=5))),
                 threading.Thread(target=lambda: res.__setitem__(
                     "send", loadgen(ports[2], 16, slice_s, "send_message=N3", timeout=5)))]
            for x in t:
                x.start()
            for x in t:
                x.join()
            per_slice.append((res["recv"], res["send"], rss_kb(main_p)))
        stop.set()
        inj.join(30)
        for h in helpers:
            h.join(60)
        for l in ledgers.values():
            l.join(30)
        # What the process keeps once the load has stopped (transient buffers returned).
        time.sleep(3)
        settled = rss_kb(main_p)

        for k, (recv, send, rss) in enumerate(per_slice):
            calls = recv["calls_per_sec"] + send["calls_per_sec"]
            errors = recv["errors"] + send["errors"]
            p99 = max(recv["p99_us"], send["p99_us"])
            row(f"load, slice {k + 1} ({slice_s} s, 32 conns)",
                f"{calls:,.0f} calls/s, {errors:.0f} errors, p99 {p99 / 1000:.1f} ms, RSS {rss / 1024:.1f} MB",
                errors == 0)
        # The first minute is warm-up (--quick: its first 30 s, two slices): bounded tables
        # (remembered runs, traces, connections) fill. What the process keeps at the end, 3 s
        # after the load stopped, may exceed what it held then by at most 10%: more is a leak.
        # (The per-slice figures above include each moment's buffers and in-flight work.)
        warm = 2 if args.quick else 1
        first = per_slice[warm - 1][2]
        row(f"memory kept after the first {warm * slice_s} s",
            f"{first / 1024:.1f} MB then, {settled / 1024:.1f} MB at the end "
            f"({(settled / first - 1) * 100:+.1f}%)", settled <= first * 1.10)
        row("agreement under load (OM(2), 7 nodes, every 3 s)",
            f"{outcomes['holds']} hold, {outcomes['void']} void, {outcomes['violated']} violated, "
            f"{outcomes['other']} other", outcomes["violated"] == 0 and outcomes["other"] == 0
            and outcomes["holds"] > 0)
        row("oversized agreement runs (64 nodes, m = 8, every 5 s)",
            f"{refusals['refused']} refused by the budget" +
            (f"; otherwise: {refusals['other'][:2]}" if refusals["other"] else ""),
            not refusals["other"] and refusals["refused"] > 0)
        for name, figure, ok in fault_rows:
            row(f"fault: {name}", figure, ok)
        if len(fault_rows) < len(faults):
            row("faults injected", f"{len(fault_rows)} of {len(faults)}", False)
        for name, l in ledgers.items():
            missing = l.check()
            row(f"nothing lost: {name}", f"{l.calls:,} acknowledged writes, last value of "
                f"{len(l.acked)} keys checked by get_messages, {len(missing)} missing",
                not missing and l.calls > 0)

        # Python side by side: the same receive_message load, one slice.
        pbase = free_base(4)
        py = start([sys.executable, PY_SERVER, "--port-base", str(pbase)],
                   [pbase + i for i in range(4)])
        side = 5 if args.quick else 10
        py_res = loadgen(pbase + 1, 32, side, timeout=5)
        rs_res = loadgen(ports[1], 32, side, timeout=5)
        py.terminate()
        py.wait(10)
        row("side by side: receive_message, 32 conns, Python stand-in vs Rust",
            f"{py_res['calls_per_sec']:,.0f} vs {rs_res['calls_per_sec']:,.0f} calls/s "
            f"({rs_res['calls_per_sec'] / max(py_res['calls_per_sec'], 1):.1f}x)", True)

        t = time.monotonic()
        main_p.send_signal(signal.SIGTERM)
        try:
            code = main_p.wait(REQUEST_TIMEOUT + 2)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - t
        row("clean stop (SIGTERM)", f"exit {code} in {took:.2f} s (limit {REQUEST_TIMEOUT} s)",
            code == 0 and took <= REQUEST_TIMEOUT)
    finally:
        kill_all()

    width = max(len(r[0]) for r in rows) + 2
    print(f"soak: {total} s, slices of {slice_s} s, cluster N0..N6 on ports {base}-{base + NODES - 1}")
    for name, figure, status in rows:
        print(f"{status}  {name:<{width}}{figure}")
    if fails:
        print(f"soak: {len(fails)} row(s) failed: {', '.join(fails)}", file=sys.stderr)
        sys.exit(1)
    print("soak: every row passed")


if __name__ == "__main__":
    main()
