#!/usr/bin/env python3
"""Stand-in for the original client.py (standard library only).

Makes every node send "attack" to every other node (sleeping 0.1 s after each send, as the
original does), then prints each node's majority decision:

    Process P finalized decision: faulty
    Process Q finalized decision: attack
    ...

Opt-in flags (defaults reproduce the original): --port-base N (port of P, default 8000),
--nodes P,Q,R,S (nodes taking part), --cluster-size N (nodes N0..N{N-1} on consecutive ports
from the port base, all taking part unless --nodes says otherwise), --no-sleep (skip the
0.1 s sleeps; used by benchmarks).

Usage: python3 scripts/python/client.py [--port-base N] [--nodes P,Q,R,S] [--cluster-size N]
                                       [--no-sleep]
"""
import argparse
import time
import xmlrpc.client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=8000, metavar="N",
                        help="port of node P; a node's port is N + ord(name) - ord('P') "
                             "(default 8000)")
    parser.add_argument("--nodes", default=None, metavar="P,Q,R,S",
                        help="the nodes taking part, comma-separated (default P,Q,R,S, or "
                             "every generated node with --cluster-size)")
    parser.add_argument("--cluster-size", type=int, default=0, metavar="N",
                        help="N generated nodes N0..N{N-1} on consecutive ports from the port "
                             "base, all taking part unless --nodes says otherwise")
    parser.add_argument("--no-sleep", action="store_true",
                        help="skip the original's 0.1 s sleep after each send (benchmarks)")
    args = parser.parse_args()
    generated = {f"N{i}": i for i in range(args.cluster_size)}
    default = ",".join(generated) if args.cluster_size else "P,Q,R,S"
    names = [n for n in (args.nodes or default).split(",") if n]

    def port_of(name):
        if name in generated:
            return args.port_base + generated[name]
        return args.port_base + ord(name) - ord("P")

    processes = {name: xmlrpc.client.ServerProxy(f"http://localhost:{port_of(name)}/") for name in names}
    for sender in names:
        for recipient in names:
            if sender != recipient:
                processes[sender].send_message(recipient, "attack")
                if not args.no_sleep:
                    time.sleep(0.1)
    for name in names:
        decision = processes[name].finalize_decision()
        print(f"Process {name} finalized decision: {decision}")


if __name__ == "__main__":
    main()
