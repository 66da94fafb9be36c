#!/usr/bin/env python3
"""Stand-in for the original server.py (standard library only).

Behaves as PROTOCOL.md says the original does: nodes P, Q, R, S on localhost ports 8000-8003,
one single-threaded SimpleXMLRPCServer per node, P faulty (it denies R and S). The tests use it
where a user would run their own server.py.

Differences from the original, all opt-in or invisible on the default run:
  --port-base N   port of node P (default 8000); a node's port is N + ord(name) - ord('P')
  --nodes P,Q     which nodes this process hosts (default P,Q,R,S)
  --faulty P      which nodes are faulty (default P; '' for none)
  --cluster-size N  N generated nodes N0..N{N-1} on consecutive ports from the port base
                  (for clusters larger than P..S); without --nodes, all of them are hosted
  finalize_decision breaks ties by the smallest value (the Rust rule), where the original's
  pick depends on string hash randomisation.
Output is flushed line by line so a parent process sees it as it happens.

Usage: python3 scripts/python/server.py [--port-base N] [--nodes P,Q,R,S] [--faulty P]
                                       [--cluster-size N]
"""
import argparse
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer

PORT_BASE = 8000
GENERATED = {}  # --cluster-size: name -> port offset


def port_of(name):
    """The original rule, port = base + ord(name) - ord('P'), unless the name is generated."""
    if isinstance(name, str) and name in GENERATED:  # never raises for unhashable names
        return PORT_BASE + GENERATED[name]
    return PORT_BASE + ord(name) - ord("P")


class Process:
    def __init__(self, name, faulty=False):
        self.name = name
        self.faulty = faulty
        self.messages = {}

    def send_message(self, recipient_name, decision):
        if self.faulty and self.name == "P" and recipient_name in ["R", "S"]:
            print(f"Process {self.name} is denying communication to {recipient_name}", flush=True)
            return f"{self.name} denied communication to {recipient_name}"
        recipient_port = port_of(recipient_name)
        print(f"{self.name} sent decision '{decision}' to {recipient_name}", flush=True)
        with xmlrpc.client.ServerProxy(f"http://localhost:{recipient_port}/") as proxy:
            proxy.receive_message(self.name, decision)
        return f"{self.name} sent decision '{decision}' to {recipient_name}"

    def receive_message(self, sender, decision):
        if self.faulty:
            return f"{self.name} (faulty) ignored message from {sender}"
        self.messages[sender] = decision
        print(f"{self.name} received decision '{decision}' from {sender}", flush=True)
        return f"{self.name} received decision '{decision}' from {sender}"

    def finalize_decision(self):
        if self.faulty:
            return "faulty"
        decisions = list(self.messages.values())
        # The original: max(set(decisions), key=decisions.count). Same majority; a tie goes to
        # the smallest tied value (max keeps the first maximum it meets) so runs are reproducible.
        majority = max(sorted(set(decisions)), key=decisions.count)
        print(f"majority is : {majority}", flush=True)
        return majority


def run_server(process, port, ready):
    server = SimpleXMLRPCServer(("localhost", port))
    server.register_instance(process)
    print(f"Process {process.name} running on port {port}...", flush=True)
    ready.release()
    server.serve_forever()


def main():
    global PORT_BASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=8000)
    parser.add_argument("--nodes", default=None)
    parser.add_argument("--faulty", default="P")
    parser.add_argument("--cluster-size", type=int, default=0)
    args = parser.parse_args()
    PORT_BASE = args.port_base
    GENERATED.update({f"N{i}": i for i in range(args.cluster_size)})
    default = ",".join(GENERATED) if args.cluster_size else "P,Q,R,S"
    names = [n for n in (args.nodes or default).split(",") if n]
    faulty = {n for n in args.faulty.split(",") if n}
    ready = threading.Semaphore(0)
    threads = []
    for name in names:
        process = Process(name, faulty=name in faulty)
        port = port_of(name)
        t = threading.Thread(target=run_server, args=(process, port, ready), daemon=True)
        t.start()
        threads.append(t)
        ready.acquire()
    for t in threads:
        t.join()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
