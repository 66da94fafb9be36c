#!/usr/bin/env python3
"""A deliberately wrong general: its OM relays carry what it DECIDED, not what it received.

The Python stand-in (scripts/python/server.py) with one bug, to show what the test bench
catches (docs/guide/check.md, "Test your own implementation"): when a message reaches this lieutenant, the
relays it owes the next round carry its own decision so far (the majority of what it holds,
missing messages counting as retreat) instead of the value that reached it. A loyal general
must pass on exactly what it heard; this one turns an order it has heard once into `retreat`.
The original protocol's three methods are untouched, so `client check` passes it; `client
explore --under-test` finds the traitor that, with this relay, makes a loyal lieutenant
disobey a loyal commander (IC2). It takes the stand-in's flags:
  python3 examples/wrong_relay.py --port-base 9100 --agreement
Standard library only.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "python"))
import server  # noqa: E402  (the stand-in, beside this file's repository root)

_receive = server.OmRun.receive


def receive(self, path, value):
    relays = _receive(self, path, value)
    decided = self.decide()  # the bug: the decision so far, not the value received
    for relay in relays:
        relay.value = decided
    return relays


server.OmRun.receive = receive

if __name__ == "__main__":
    try:
        server.main()
    except KeyboardInterrupt:
        pass
