"""What scripts/bench_driver.py and scripts/soak_driver.py share: free ports, starting and
stopping processes, their memory, and loadgen. Standard library only.

Every process started with `start` is listed in `PROCS`; the drivers kill what is left of them
in a finally block (`kill_all`).
"""
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
PROCS = []


def free_base(size):
    """A port base whose `size` ports are free, between 30000 and 32000 (below ephemeral)."""
    for base in range(30000 + (os.getpid() % 50) * 10, 32000 - size, size + 10):
        ok = True
        for p in range(base, base + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    sys.exit("no free port block")


def wait_ports(ports, limit=30):
    """Poll until every port accepts a connection; exit the script past `limit` seconds."""
    deadline = time.monotonic() + limit
    for p in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"port {p} not ready")
                time.sleep(0.02)


def start(cmd, ports):
    """Start `cmd` (output discarded) and wait until it listens on `ports`."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    wait_ports(ports)
    return p


def stop(p):
    """SIGTERM, then SIGKILL after 10 s."""
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def kill_all():
    """Kill every process `start` started that is still running."""
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()


def memory_kb(p, field):
    """A process's `VmRSS` or `VmHWM` (peak) from /proc, in kB (0 when absent)."""
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def loadgen(port, conns, secs, mix="receive_message", timeout=None, prefix=()):
    """One `loadgen` run: its key=value figures as floats. `prefix` goes before the command
    (e.g. `taskset -c 0`)."""
    cmd = [*prefix, os.path.join(REL, "loadgen"), "--addr", f"127.0.0.1:{port}", "-c", str(conns),
           "-d", str(secs), "--mix", mix]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}
