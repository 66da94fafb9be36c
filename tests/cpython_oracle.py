#!/usr/bin/env python3
"""CPython as the oracle of the wire (tests/cpython_oracle.rs; standard library only).

Reads one JSON object per line on stdin and answers one per line on stdout:

  {"t": "call", "node": "Q", "faulty": false, "bodies": [B64...], "ours": [B64...]}
      Runs each request body through CPython's own SimpleXMLRPCDispatcher._marshaled_dispatch,
      with the stand-in's Process (scripts/python/server.py, what the original registers) as
      its instance and system.multicall registered (our nodes serve it), on a fresh node.
      Answers {"theirs": [ANSWER...], "ours": [ANSWER...], "printed": [[LINE...]...],
      "state": [V...]}: CPython's answers and ours (the "ours" bodies: the Rust node's answers
      to the same requests), each as xmlrpc.client.loads reads it, what CPython's node printed
      per request, and what it stored after each (its `messages` dict).
  {"t": "reply", "body": B64}
      Reads an answer body with xmlrpc.client.loads, as CPython's client reads a reply.
      Answers {"read": READING, "str": TEXT}: the reading, and what `print()` shows of the value
      ServerProxy returns (one value, or the tuple of several); "str" is null for a fault or an
      error, and for values whose repr has an address (DateTime, Binary inside a container).

ANSWER is {"value": V}, {"fault": [V, V]} (code, string), {"unreadable": "Class: message"} (our
answer, refused by CPython's reader), or {"raised": "Class: message"} (_marshaled_dispatch
itself raised: SimpleXMLRPCRequestHandler answers HTTP 500). READING is {"params": [V...],
"method": NAME or null}, {"fault": [V, V]} or {"error": "Class"}. V is a tagged value that says
its Python type: {"s": str}, {"i": "digits"}, {"b": bool}, {"d": "16 hex digits of the IEEE
bits"}, {"n": null}, {"a": [V...]}, {"m": [[KEY, V]...]} (sorted by key; a key is a str or
{"k": V}), {"bin": "hex"}, {"dt": "text"}, {"dec": "text"}.

Network: a node's send_message calls receive_message on a peer through xmlrpc.client.ServerProxy;
here every such call is marshalled as ServerProxy marshals it and then refused, as a port where
nothing listens refuses it (the Rust node under test is built the same way: every peer refuses).
"""
import base64
import contextlib
import decimal
import importlib.util
import io
import json
import os
import struct
import sys
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCDispatcher

HERE = os.path.dirname(os.path.abspath(__file__))
STAND_IN = os.path.join(HERE, "..", "scripts", "python", "server.py")


def load_stand_in():
    spec = importlib.util.spec_from_file_location("stand_in", STAND_IN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The original runs as a script: its functions are __main__'s, which CPython's messages
    # name (`__main__.Process.receive_message() argument after * must be an iterable, ...`).
    for name in ("send_message", "receive_message", "finalize_decision"):
        getattr(module.Process, name).__module__ = "__main__"
    return module


class RefusingProxy:
    """ServerProxy to a port where nothing listens: the call is marshalled as ServerProxy
    marshals it (its errors come first), then the connection is refused."""

    def __init__(self, uri, *args, **kwargs):
        self._uri = uri

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getattr__(self, name):
        def call(*params):
            xmlrpc.client.dumps(params, name, encoding=None, allow_none=False)
            raise ConnectionRefusedError(111, "Connection refused")

        return call


def tag(v):
    """A value as a tagged JSON object that keeps its Python type."""
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"d": struct.pack(">d", v).hex()}
    if isinstance(v, str):
        return {"s": v}
    if v is None:
        return {"n": None}
    if isinstance(v, (list, tuple)):
        return {"a": [tag(x) for x in v]}
    if isinstance(v, dict):
        items = [[k if isinstance(k, str) else {"k": tag(k)}, tag(x)] for k, x in v.items()]
        items.sort(key=lambda kv: json.dumps(kv[0], sort_keys=True))
        return {"m": items}
    if isinstance(v, xmlrpc.client.Binary):
        return {"bin": v.data.hex()}
    if isinstance(v, xmlrpc.client.DateTime):
        return {"dt": v.value}
    if isinstance(v, decimal.Decimal):
        return {"dec": str(v)}
    return {"other": repr(v)}


def has_address(v):
    """Whether repr() of v (inside a container) shows an object address."""
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (xmlrpc.client.Binary, xmlrpc.client.DateTime)) or has_address(x) for x in v)
    if isinstance(v, dict):
        return has_address(list(v.keys()) + list(v.values()))
    return False


def answer(body):
    """A server's answer body as CPython's client reads it."""
    try:
        params, _ = xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as f:
        return {"fault": [tag(f.faultCode), tag(f.faultString)]}
    except Exception as e:
        return {"unreadable": f"{type(e).__name__}: {e}"}
    if len(params) != 1:
        return {"unreadable": f"{len(params)} values"}
    return {"value": tag(params[0])}


def run_calls(stand_in, case):
    process = stand_in.Process(case["node"], faulty=case["faulty"])
    dispatcher = SimpleXMLRPCDispatcher(allow_none=False, encoding=None, use_builtin_types=False)
    dispatcher.register_instance(process)
    dispatcher.register_multicall_functions()
    theirs, printed, state = [], [], []
    for b64 in case["bodies"]:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                response = dispatcher._marshaled_dispatch(base64.b64decode(b64))
        except Exception as e:
            theirs.append({"raised": f"{type(e).__name__}: {e}"})
        else:
            theirs.append(answer(response))
        printed.append(out.getvalue().splitlines())
        state.append(tag(process.messages))
    ours = [answer(base64.b64decode(b)) for b in case.get("ours", [])]
    return {"theirs": theirs, "ours": ours, "printed": printed, "state": state}


def read_reply(case):
    body = base64.b64decode(case["body"])
    try:
        params, method = xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as f:
        return {"read": {"fault": [tag(f.faultCode), tag(f.faultString)]}, "str": None}
    except Exception as e:
        return {"read": {"error": type(e).__name__}, "str": None}
    value = params[0] if len(params) == 1 else params
    shown = None
    if not has_address(params if len(params) == 1 else [params]):
        shown = str(value)
    return {"read": {"params": [tag(p) for p in params], "method": method}, "str": shown}


def main():
    stand_in = load_stand_in()
    xmlrpc.client.ServerProxy = RefusingProxy
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        if case["t"] == "call":
            result = run_calls(stand_in, case)
        else:
            result = read_reply(case)
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
