#!/usr/bin/env python3
"""Writes the agreement seeds of fuzz/seeds/dispatch/ (om_*, sm_*, trace_events and the
system.multicall batches of whole runs) as Python's xmlrpc.client writes the calls, with the
parameters of docs/protocol-extensions.md: a capability and pair keys (32 zero bytes), and
MACs that check, so the fuzzer starts from messages a node takes.

Usage: python3 fuzz/seeds/make_agreement_seeds.py   (from anywhere; standard library only)
"""
import base64
import hashlib
import hmac
import os
import xmlrpc.client

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dispatch")
SECRET = base64.b64encode(bytes(32)).decode()
NODES = ["P", "Q", "R", "S"]


def netstrings(parts):
    return b"".join(str(len(p.encode())).encode() + b":" + p.encode() + b"," for p in parts)


def mac(method, run, to, path, value, sigs=()):
    body = netstrings(["generals-mac/1", method, run, to, value, str(len(path))] + list(path) + list(sigs))
    return base64.b64encode(hmac.new(bytes(32), body, hashlib.sha256).digest()[:16]).decode()


def keys(me, nodes=NODES):
    return {n: SECRET for n in nodes if n != me}


def start(run, commander, m=1, sm=False, node="Q"):
    params = [run, commander, NODES, m, 50, "0", SECRET, keys(node)]
    if sm:
        params.append({n: "" for n in NODES})
    return params


def body(method, params):
    return xmlrpc.client.dumps(tuple(params), method).encode()


def batch(calls):
    return body("system.multicall", [[{"methodName": m, "params": p} for m, p in calls]])


def write(name, selector, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(selector + data)


def main():
    om_msg = ["r1", ["P"], "attack", mac("om_message", "r1", "Q", ["P"], "attack")]
    sm_msg = ["r2", ["P"], "attack", ["c2lnbmF0dXJl"], mac("sm_message", "r2", "Q", ["P"], "attack", ["c2lnbmF0dXJl"])]
    seeds = {
        "om_start": ("om_start", start("r1", "Q")),
        "om_start_bad_m": ("om_start", start("r1", "Q", m=9)),
        "om_order": ("om_order", ["r1", SECRET, "attack"]),
        "om_round": ("om_round", ["r1", SECRET, 1]),
        "om_message": ("om_message", om_msg),
        "om_decide": ("om_decide", ["r1", SECRET]),
        "sm_start_commander": ("sm_start", start("r2", "Q", sm=True)),
        "sm_start_lieutenant": ("sm_start", start("r2", "P", sm=True)),
        "sm_order": ("sm_order", ["r2", SECRET, "attack"]),
        "sm_round": ("sm_round", ["r2", SECRET, 1]),
        "sm_message": ("sm_message", sm_msg),
        "sm_decide": ("sm_decide", ["r2", SECRET]),
        "trace_events": ("trace_events", ["r1", SECRET, "0"]),
    }
    for name, (method, params) in seeds.items():
        write(name, b"0", body(method, params))
    om_run = [
        ("om_start", start("r1", "Q")),
        ("om_order", ["r1", SECRET, "attack"]),
        ("om_round", ["r1", SECRET, 1]),
        ("om_round", ["r1", SECRET, 2]),
        ("om_decide", ["r1", SECRET]),
        ("trace_events", ["r1", SECRET, "0"]),
    ]
    write("multicall_om_run", b"0", batch(om_run))
    write("dxr_multicall_om_run", b"2", batch(om_run[:3] + om_run[4:5]))
    write("multicall_sm_run", b"0", batch([
        ("sm_start", start("r2", "Q", sm=True)),
        ("sm_order", ["r2", SECRET, "attack"]),
        ("sm_round", ["r2", SECRET, 1]),
        ("sm_decide", ["r2", SECRET]),
    ]))
    write("multicall_lieutenant", b"0", batch([
        ("om_start", start("r3", "P")),
        ("om_message", ["r3", ["P"], "attack", mac("om_message", "r3", "Q", ["P"], "attack")]),
        ("om_round", ["r3", SECRET, 1]),
        ("om_round", ["r3", SECRET, 2]),
        ("om_decide", ["r3", SECRET]),
    ]))


if __name__ == "__main__":
    main()
