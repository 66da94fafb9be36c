#!/usr/bin/env python3
"""Replay the golden transcripts of docs/conformance/ against a running cluster.

Standard library only: no binary of this project is needed. Each row's requests are sent as
written (to the node the row names, at the port the port rule gives it from --port-base) and
each answer is compared with the one the contract gives: the XML-RPC value or fault as
CPython's xmlrpc.client reads it (--bytes: the answer's bytes, as CPython's server writes
them), or the HTTP status and body. Rows marked "hangs_the_original" are given 5 s and may
instead not answer (the README's divergences 1 and 2); rows that need a port free or a
silent peer on it get them; steps that are whole agreement runs are skipped (drive them with
`client om`). Start the cluster fresh: the first row needs an empty store.

Usage: python3 docs/conformance/replay.py [--port-base 8000] [--host 127.0.0.1] [--bytes]
                                          [FILE.json ...]   (default: original.json)
Exit 0 when no row fails.
"""
import argparse
import base64
import http.client
import json
import os
import socket
import sys
import threading
import xmlrpc.client

HANG_TIMEOUT = 5.0
CALL_TIMEOUT = 20.0


def answer_of(host, port, request, timeout):
    """(status, body bytes), or None when nothing came within `timeout`."""
    body = request.get("body")
    if body is None and "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
    elif body is not None:
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = dict(request.get("headers", {}))
        headers["Connection"] = "close"
        conn.request(request["method"], request["path"], body=body, headers=headers)
        reply = conn.getresponse()
        data = reply.read()
        if reply.getheader("Content-Encoding", "").lower() == "gzip":
            import gzip

            data = gzip.decompress(data)
        return reply.status, data
    except (socket.timeout, TimeoutError):
        return None
    finally:
        conn.close()


def loads(data):
    """What xmlrpc.client reads of a methodResponse: ('value', v) or ('fault', code, string)."""
    try:
        return ("value", xmlrpc.client.loads(data)[0][0])
    except xmlrpc.client.Fault as f:
        return ("fault", f.faultCode, f.faultString)
    except Exception as e:  # not a methodResponse
        return ("unreadable", repr(e))


def meets(answer, expect, exact):
    if answer is None:
        return False
    status, data = answer
    if status != expect.get("status", 200):
        return False
    if "body" in expect and expect["body"] is not None:
        if exact or status != 200:
            return data == expect["body"].encode()
        return loads(data) == loads(expect["body"].encode())
    got = loads(data)
    if expect.get("any_fault"):
        return got[0] == "fault"
    if expect.get("any_array"):
        return got[0] == "value" and isinstance(got[1], list)
    if "fault_string_starts_with" in expect:
        return got[0] == "fault" and got[1] == expect["fault_code"] and got[2].startswith(
            expect["fault_string_starts_with"]
        )
    if "struct_members" in expect:
        if got[0] != "value" or not isinstance(got[1], dict):
            return False
        kinds = {"string": str, "boolean": bool}
        for m in expect["struct_members"]:
            if m["name"] not in got[1] or not isinstance(got[1][m["name"]], kinds.get(m["type"], object)):
                return False
            if m["value"] is not None and got[1][m["name"]] != m["value"]:
                return False
        return True
    return True  # an HTTP status alone


class SilentPeer:
    """Accepts connections on a port and never answers, until stopped."""

    def __init__(self, host, port):
        self.sock = socket.create_server((host, port))
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


def port_of(cluster, name, base):
    """The node's port, by the transcripts' cluster moved to `base`."""
    first = min(int(n["url"].rsplit(":", 1)[1].strip("/")) for n in cluster)
    for n in cluster:
        if n["name"] == name:
            return base + int(n["url"].rsplit(":", 1)[1].strip("/")) - first
    raise KeyError(name)


def replay(path, host, base, exact):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    first = min(int(n["url"].rsplit(":", 1)[1].strip("/")) for n in doc["cluster"])
    failed = 0
    for row in doc["rows"]:
        timeout = HANG_TIMEOUT if row["hangs_the_original"] else CALL_TIMEOUT
        needs = row.get("needs", {})
        peer = None
        if "nothing_listening_on_port" in needs:
            port = base + needs["nothing_listening_on_port"] - first
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    print(f"SKIP  {row['id']}  something listens on port {port}")
                    continue
        if "silent_peer_on_port" in needs:
            peer = SilentPeer(host, base + needs["silent_peer_on_port"] - first)
        status, why = "PASS", ""
        for step in row["steps"]:
            if "run" in step:
                status, why = "SKIP", "an agreement run: drive it with `client om`"
                continue
            port = port_of(doc["cluster"], step["node"], base)
            answer = answer_of(host, port, step["request"], timeout)
            if meets(answer, step["expect"], exact):
                continue
            documented = row.get("differs_as_documented")
            if documented and documented["instead"] == "no answer" and answer is None:
                status = "DIFF"
                why = f"divergence {documented['divergence']}: {documented['why']}"
            elif documented and documented["instead"] != "no answer" and meets(
                answer, documented["instead"], exact
            ):
                status = "DIFF"
                why = f"divergence {documented['divergence']}: {documented['why']}"
            else:
                status = "FAIL"
                got = "no answer" if answer is None else f"HTTP {answer[0]} {answer[1][:300]!r}"
                why = f"{step['node']}: expected {step['expect']}, got {got}"
                failed += 1
            break
        if peer:
            peer.stop()
        print(f"{status}  {row['id']}  {row['title']}" + (f"\n      {why}" if why else ""))
    return failed


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=8000, help="port of node P")
    parser.add_argument("--host", default="127.0.0.1", help="host of the nodes")
    parser.add_argument("--bytes", action="store_true", help="compare answers byte for byte")
    parser.add_argument("files", nargs="*", help="transcripts (default: original.json)")
    args = parser.parse_args()
    files = args.files or [os.path.join(here, "original.json")]
    failed = sum(replay(f, args.host, args.port_base, args.bytes) for f in files)
    print(f"{failed} row(s) failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
