#!/usr/bin/env python3
"""A deliberately wrong general: it decides by the FIRST message it got, not the majority.

The Python stand-in (scripts/python/server.py) with one bug, to show what the test bench
catches (docs/guide/check.md, "Test your own implementation"):
  - finalize_decision answers the first decision stored, whatever the others say;
  - in an OM run (--agreement), a lieutenant decides the commander's value as it reached it,
    without the majority over what the other lieutenants relayed.
`client check` fails the majority row; `client explore --under-test` finds a traitorous
commander that makes two loyal lieutenants disagree. Everything else is the stand-in's, so
it takes the same flags: python3 examples/wrong_first.py --port-base 9100 --agreement
Standard library only.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "python"))
import server  # noqa: E402  (the stand-in, beside this file's repository root)


def finalize_decision(self):
    if self.faulty:
        return "faulty"
    decisions = list(self.messages.values())
    max(decisions)  # nothing stored: the original's ValueError, as it is
    first = decisions[0]  # the bug: the first, not the majority
    print(f"majority is : {first}", flush=True)
    return first


finalize_decision.__qualname__ = "Process.finalize_decision"  # Python's TypeError names it


def decide(self):
    # The bug: the commander's message alone, as it reached this lieutenant.
    return self.received.get((self.commander,), server.RETREAT)


server.Process.finalize_decision = finalize_decision
server.OmRun.decide = decide

if __name__ == "__main__":
    try:
        server.main()
    except KeyboardInterrupt:
        pass
