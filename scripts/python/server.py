#!/usr/bin/env python3
"""Stand-in for the original server.py (standard library only).

Behaves as docs/protocol.md says the original does: nodes P, Q, R, S on localhost ports 8000-8003,
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

Opt-in Byzantine agreement (OM only), following docs/protocol-extensions.md; without
--agreement none of this is used and the server is exactly the stand-in described above:
  --agreement     also serve node_info, om_start, om_order, om_round, om_message, om_decide,
                  trace_events and system.multicall, so a Python node can take part in
                  `client om` runs next to Rust nodes, in the same explicit rounds; each node
                  is then served by a threaded SimpleXMLRPCServer (a round's messages go out
                  in system.multicall batches, one thread per receiver, in the order of their
                  paths). As on a Rust node, only a run's driver drives it: om_order, om_round,
                  om_decide and trace_events must carry the capability given at om_start, and
                  every om_message carries a MAC (HMAC-SHA256 with the key its sender and
                  receiver share, from om_start) that proves its sender; a message that fails
                  it is refused and counted in om_decide's `unauthenticated`. A start, order
                  or round asked again by its driver gets the first answer.
  --behaviour NAME=KIND  how node NAME sends OM messages (repeatable): honest, deny:A,B,
                  silent, flip, two-faced, random, delay:MS, script:PATH>TO=VALUE;..., as the
                  Rust server's flag; a faulty P without one is deny:R,S. send_message keeps
                  the original behaviour.
  --seed N        server seed of the random behaviour (XORed with each run's seed; default 0;
                  the draws hang on the run's label om-SEED, not on its random id)
  --rpc-timeout SECS  longest wait for a peer's answer to one batch of a round (default 10;
                  a batch never waits more than 3/4 of the run's round timeout either)
  --max-runs N    runs a node holds (default 256), as the Rust server's flag: when room is
                  needed the oldest finished run (decided, or expired) is forgotten, else the
                  oldest abandoned one (not advanced by its driver within 5 s of its start, or
                  within its round timeout and 5 s of its last advance); a run still driven is
                  never dropped or replaced, and a start finding none to forget is refused.
  --max-run-messages N  largest run a node takes part in, in messages by OM's formula
                  (default 1000000), as the Rust server's flag

Usage: python3 scripts/python/server.py [--port-base N] [--nodes P,Q,R,S] [--faulty P]
                                       [--cluster-size N]
                                       [--agreement [--behaviour NAME=KIND]... [--seed N]
                                                    [--rpc-timeout SECS] [--max-runs N]
                                                    [--max-run-messages N]]
"""
import argparse
import base64
import collections
import hashlib
import hmac
import re
import socketserver
import threading
import time
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer

PORT_BASE = 8000
GENERATED = {}  # --cluster-size: name -> port offset


def fault_text(e):
    """A failed call as a node's trace records it: the fault string Python's server answers
    for the exception (`<class 'ConnectionRefusedError'>:[Errno 111] Connection refused`,
    `<class 'xmlrpc.client.Fault'>:<Fault 1: '...'>`), cut to 200 bytes as the Rust nodes
    cut every fault (`... [N bytes cut]`), so both record the same text for the same failure."""
    text = f"{type(e)}:{e}"
    raw = text.encode()
    if len(raw) <= 200:
        return text
    marker = lambda n: f"... [{n} bytes cut]"
    keep = 200 - len(marker(len(raw)))
    while keep > 0 and (raw[keep] & 0xC0) == 0x80:
        keep -= 1
    return raw[:keep].decode() + marker(len(raw) - keep)


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


# ---------------------------------------------------------------------------------------------
# Byzantine agreement extension: OM(m) between nodes. OPT-IN (--agreement); without the flag
# nothing below is used. It follows docs/protocol-extensions.md (the contract of the Rust nodes,
# src/agreement/): the same methods, answers, fault strings and message counts, so Python and
# Rust nodes can share a `client om` run. SM (sm_*) is not implemented: those calls get the
# usual `method "sm_start" is not supported` fault.
# ---------------------------------------------------------------------------------------------

ATTACK = "attack"
RETREAT = "retreat"  # also what a missing message and "no strict majority" count as
MAX_RUNS = 256  # runs a node holds (--max-runs); see "The run table" and AgreementProcess._room
# A run is finished once decided here or expired: EXPIRY_MARGIN seconds plus m + 2 round
# timeouts after its start (the Rust engine's `Life`). It is abandoned when its driver has not
# advanced it (om_order, om_round, om_decide with its capability) within START_GRACE of its
# start, or within its round timeout and START_GRACE of its last advance. Only finished, then
# abandoned runs are forgotten, oldest start first, and only when a start needs room; a start
# with the id of an unfinished run is refused unless it carries that run's capability (a retry).
EXPIRY_MARGIN = 60.0
MAX_EXPIRY = 15 * 60.0  # the longest an undecided run holds its place (as the Rust engine)
START_GRACE = 5.0
RUN_NOT_FINISHED = (
    "is not finished on this node (neither decided nor expired): a live run is never replaced"
)
RUNS_FULL = (
    "(server --max-runs): a new run can start when one of them is decided, expires or is left "
    "by its driver; try again in a few seconds"
)
NOT_THE_DRIVER = (
    "is driven by another caller: the capability given is not the one it was started with"
)
NOT_AUTHENTICATED = "message not authenticated:"
# A round asked again waits this long beyond the run's round timeout for the first call's answer.
ROUND_RETRY_SLACK = 5.0
MAX_NODES = 64
MAX_M = 8
MAX_VALUE = 1024  # bytes of a value (an order, a relayed value)
MAX_RUN_MESSAGES = 1_000_000  # largest run taken, by OM's formula (--max-run-messages)
MAX_EVENTS = 10_000  # outgoing calls remembered for trace_events
BATCH = 64  # messages for one receiver in one system.multicall (as the Rust engine)
ORIGINAL_RUN = "original"  # trace_events' run of send_message: no driver, no capability
SECRET_BYTES = 32  # a capability or a pair key
MAC_BYTES = 16  # HMAC-SHA256 cut to its first 16 bytes
MAC_TAG = "generals-mac/1"
U64 = (1 << 64) - 1
_DECIMAL_U64 = re.compile(r"\+?[0-9]+")  # what Rust's u64 parser accepts


def parse_u64(text):
    """A decimal u64 as Rust parses it (digits, optional leading '+'); ValueError otherwise."""
    if not isinstance(text, str) or not _DECIMAL_U64.fullmatch(text) or int(text) > U64:
        raise ValueError(f"not a decimal u64: {text!r}")
    return int(text)


def mix(x):
    """SplitMix64 finaliser, modulo 2^64 (the Rust `behaviour::mix`)."""
    x = (x + 0x9E3779B97F4A7C15) & U64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & U64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & U64
    return x ^ (x >> 31)


def entropy(seed, parts):
    """FNV-1a 64 over each part's UTF-8 bytes and a 0xFF after each, seeded, then mix."""
    h = 0xCBF29CE484222325 ^ seed
    for part in parts:
        for b in part.encode() + b"\xff":
            h = ((h ^ b) * 0x100000001B3) & U64
    return mix(h)


def decode_secret(text, what):
    """A capability or pair key as it travels: base64 (standard alphabet, padded, canonical,
    as Rust's decoder takes it) of exactly SECRET_BYTES bytes; the ValueError fault otherwise."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:  # not ASCII, not the alphabet, bad padding
        raw = None
    if raw is None or len(raw) != SECRET_BYTES or base64.b64encode(raw).decode() != text:
        raise fault("ValueError", f"{what} must be {SECRET_BYTES} bytes in base64 (44 characters)")
    return raw


def mac_bytes(method, run, to, path, value):
    """What a message's MAC covers: netstrings (`LEN:BYTES,`, LEN the UTF-8 byte length) of
    MAC_TAG, the method, the run, the receiver, the value, the number of path names, then each
    name of the path (the Rust `auth::mac_bytes`; SM would add its signatures)."""
    out = bytearray()
    for part in [MAC_TAG, method, run, to, value, str(len(path))] + list(path):
        raw = part.encode()
        out += str(len(raw)).encode() + b":" + raw + b","
    return bytes(out)


def make_mac(key, method, run, to, path, value):
    """base64 of the first MAC_BYTES bytes of HMAC-SHA256(key, mac_bytes(...))."""
    tag = hmac.new(key, mac_bytes(method, run, to, path, value), hashlib.sha256).digest()
    return base64.b64encode(tag[:MAC_BYTES]).decode()


class Behaviour:
    """How a node sends (the Rust `Behaviour`): kind, plus the denied names or the delay."""

    KINDS = ("honest", "silent", "flip", "two-faced", "random")

    def __init__(self, kind, deny=(), delay_ms=0, script=None):
        self.kind = kind
        self.deny = list(deny)
        self.delay_ms = delay_ms
        # script: (path tuple, receiver) -> value, or None for nothing (the Rust `Script`)
        self.script = script or {}

    @classmethod
    def parse(cls, text):
        kind, sep, arg = text.partition(":")
        if not sep and kind in cls.KINDS:
            return cls(kind)
        if sep and kind == "deny":
            names = [n.strip() for n in arg.split(",") if n.strip()]
            if not names:
                raise ValueError("deny needs a list of nodes, e.g. deny:R,S")
            return cls("deny", deny=names)
        if sep and kind == "script":
            return cls("script", script=parse_script(arg))
        if sep and kind == "delay":
            try:
                return cls("delay", delay_ms=parse_u64(arg))
            except ValueError:
                raise ValueError(f"delay needs milliseconds, e.g. delay:500, got {arg!r}")
        raise ValueError(
            f"unknown behaviour {text!r}: use honest, deny:A,B, silent, flip, two-faced, "
            "random, delay:MS or script:PATH>RECEIVER=VALUE;..."
        )

    def __str__(self):
        if self.kind == "deny":
            return "deny:" + ",".join(self.deny)
        if self.kind == "delay":
            return f"delay:{self.delay_ms}"
        if self.kind == "script":
            return "script:" + ";".join(
                ">".join(path + (to,)) + "=" + ("-" if v is None else v)
                for (path, to), v in sorted(self.script.items(), key=lambda e: (list(e[0][0]), e[0][1]))
            )
        return self.kind

    def scripted(self, me, rnd):
        """A scripted traitor's messages of round `rnd`: Relays of the values its script
        sends along paths of that length ending with `me` (nothing else is sent)."""
        out = []
        for (path, to), v in sorted(self.script.items(), key=lambda e: (list(e[0][0]), e[0][1])):
            if v is not None and len(path) == rnd and path[-1] == me:
                out.append(Relay(to, list(path), v, 0, 1))
        return out

    @property
    def traitor(self):
        return self.kind != "honest"  # delay included, as in Rust

    @property
    def delay(self):
        """Seconds to wait before each send and before handling each request."""
        return self.delay_ms / 1000 if self.kind == "delay" else 0

    def outgoing(self, value, receiver, index, count, noise):
        """What to send where an honest node sends `value` to the index-th of `count`
        receivers of a broadcast; None to send nothing. `noise` is the message's entropy."""
        if self.kind in ("honest", "delay"):
            return value
        if self.kind == "deny":
            return None if receiver in self.deny else value
        if self.kind in ("silent", "script"):
            return None  # a script sends only its own messages (see scripted)
        if self.kind == "flip":
            return RETREAT if value == ATTACK else ATTACK
        if self.kind == "two-faced":
            return ATTACK if index < count // 2 else RETREAT
        return ATTACK if mix(noise) & 1 == 0 else RETREAT  # random


def parse_script(text):
    """`C>...>SENDER>RECEIVER=VALUE;...` (`-` for nothing), as the Rust `Script`."""
    script = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        names, sep, value = entry.partition("=")
        path = [n.strip() for n in names.split(">")]
        if not sep or len(path) < 2 or any(not n for n in path) or not value:
            raise ValueError(
                f"script entry {entry!r}: expected PATH>RECEIVER=VALUE, e.g. P>Q>R=attack "
                "(Q relays P's order to R) or P>Q=- (nothing)"
            )
        script[(tuple(path[:-1]), path[-1])] = None if value == "-" else value
    return script


def parse_assignment(arg):
    """--behaviour NAME=KIND."""
    name, sep, kind = arg.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=KIND (e.g. Q=two-faced), got {arg!r}")
    try:
        return name, Behaviour.parse(kind)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def original_behaviour(name, faulty):
    """The original's only fault, as the Rust nodes map it: a faulty P is deny:R,S."""
    return Behaviour("deny", deny=["R", "S"]) if faulty and name == "P" else Behaviour("honest")


def fault(cls, message):
    """A fault exactly as a Rust node words it: `<class 'X'>:message`, code 1."""
    return xmlrpc.client.Fault(1, f"<class '{cls}'>:{message}")


def debug(value):
    """Rust's `{:?}` of a string or a list of strings (ASCII and control characters exact;
    other non-printable Unicode, which Rust escapes as \\u{...}, is left as is)."""
    if isinstance(value, list):
        return "[" + ", ".join(debug(v) for v in value) + "]"
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for ch in value:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def unknown_run(run):
    return fault("KeyError", f"unknown run {run!r}")


def now_us():
    return time.time_ns() // 1000


class Args:
    """Typed access to an extension call's params, with the Rust node's faults, checked in
    the same order (arity first, then each param as it is read)."""

    def __init__(self, method, params, *names):
        if len(params) != len(names):
            given = len(params)
            raise fault(
                "TypeError",
                f"{method}({', '.join(names)}) takes {len(names)} "
                f"argument{'' if len(names) == 1 else 's'} but {given} "
                f"{'was' if given == 1 else 'were'} given",
            )
        self.method = method
        self.params = params

    def bad(self, i, want):
        return fault("TypeError", f"{self.method}() argument {i + 1} must be {want}")

    def string(self, i):
        if not isinstance(self.params[i], str):
            raise self.bad(i, "a string")
        return self.params[i]

    def strings(self, i):
        v = self.params[i]
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.bad(i, "an array of strings")
        return list(v)

    def int(self, i):
        v = self.params[i]
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.bad(i, "an integer")
        return v

    def string_map(self, i):
        """A struct whose members are all strings."""
        v = self.params[i]
        if not isinstance(v, dict) or not all(isinstance(s, str) for s in v.values()):
            raise self.bad(i, "a struct of strings")
        return dict(v)

    def capability(self, i):
        """A secret: a string (type fault first), then base64 of 32 bytes."""
        return decode_secret(self.string(i), "capability")


class Relay:
    """One message to send: `value` (before the behaviour) to `to` along `path`, the
    receiver being the index-th of `count` receivers of its broadcast; `key` is the path as
    node indices, the order in which a round sends what it owes."""

    def __init__(self, to, path, value, index, count, key=()):
        self.to, self.path, self.value, self.index, self.count = to, path, value, index, count
        self.key = key


def total_messages(n, m):
    """Messages a whole OM(m) run among n nodes sends: sum over k = 1..m+1 of (n-1)...(n-k)."""
    return sum(_product(max(n - j, 0) for j in range(1, k + 1)) for k in range(1, m + 2))


class OmRun:
    """One node's state in one OM run (the Rust `OmRun` plus the engine's counters and the
    run table's `Life`)."""

    def __init__(self, me, commander, nodes, m, seed, round_timeout, label="", capability=b"",
                 keys=None):
        if commander not in nodes:
            raise fault(
                "ValueError", f"commander {debug(commander)} is not among the nodes {debug(nodes)}"
            )
        if me not in nodes:
            raise fault("ValueError", f"this node ({me}) is not among the nodes {debug(nodes)}")
        if len(set(nodes)) != len(nodes):
            raise fault("ValueError", f"nodes {debug(nodes)} repeat a name")
        if m + 1 >= len(nodes) and m > 0:
            raise fault("ValueError", f"m = {m} needs more than {m + 1} nodes")
        self.me, self.nodes, self.m = me, nodes, m
        self.commander = nodes.index(commander)
        self.received = {}  # path as a tuple of node indices -> value (the first one wins)
        others = max(len(nodes) - 2, 0)
        # Paths a lieutenant receives: [C] then k distinct other lieutenants, k = 0..m.
        self.expected = 0 if self.is_commander else sum(
            _product(max(others - j, 0) for j in range(k)) for k in range(m + 1)
        )
        self.seed = seed  # the run's seed XOR the server's --seed
        self.label = label  # om-SEED (the run's seed as started), for the random behaviour
        self.round_timeout = round_timeout  # seconds: the timeout of each batch sent
        self.capability = capability  # what its driver must show (raw bytes)
        self.keys = keys or {}  # other participant -> the key this node shares with it (bytes)
        self.opened = 0  # highest round opened; rounds before it refuse messages as late
        self.queue = [[] for _ in range(m + 1)]  # relays owed to each round
        # per round: due (before the behaviour), sent, delivered (stored), failed
        self.reports = [{"due": 0, "sent": 0, "delivered": 0, "failed": 0} for _ in range(m + 1)]
        self.answers = [None] * (m + 1)  # each round's answer once its sending ended
        self.late = {}  # sender -> messages refused as late
        self.unauthenticated = 0  # messages refused because their MAC did not prove the sender
        self.order = None  # the commander's order
        self.queued = 0  # the messages that order made
        self.decision = None  # a lieutenant's decision, evaluated once
        self.evaluating = threading.Lock()  # one evaluation at a time, outside the node's lock
        # the run table's Life: started, expiry, last advance by its driver, decided
        self.started = time.monotonic()
        self.expires = self.started + min(round_timeout * (m + 2) + EXPIRY_MARGIN, MAX_EXPIRY)
        self.advanced = None
        self.decided = False
        self.released = None  # messages received, once om_decide let go of them

    def finished(self, now):
        """Decided here, or expired: it may be forgotten, and its id started again."""
        return self.decided or now >= self.expires

    def abandoned(self, now):
        """Unfinished, and left by its driver longer than a driver carrying it through ever
        does: START_GRACE after its start, or its round timeout and START_GRACE after its
        last advance."""
        if self.advanced is None:
            deadline = self.started + START_GRACE
        else:
            deadline = self.advanced + self.round_timeout + START_GRACE
        return not self.finished(now) and now >= deadline

    def driven_by(self, capability):
        return hmac.compare_digest(self.capability, capability)

    def authenticate(self, method, run, path, value, mac):
        """None if `mac` proves that the path's last name sent this message to this node (with
        the key the two share), else the reason."""
        if not path:
            return "the path names no sender"
        sender = path[-1]
        key = self.keys.get(sender)
        if key is None:
            return f"{debug(sender)} shares no key with {self.me} in this run"
        want = make_mac(key, method, run, self.me, path, value)
        if not hmac.compare_digest(want.encode(), mac.encode()):
            return f"its MAC does not prove that {debug(sender)} sent it"
        return None

    def admit(self, path, run):
        """Refuse (and record) a message whose round is closed here (the Rust `Rounds`)."""
        rnd = len(path)
        if rnd < self.opened:
            sender = path[-1] if path else "?"
            self.late[sender] = self.late.get(sender, 0) + 1
            current = min(self.opened, self.m + 1)
            raise fault(
                "ValueError",
                f"late: round {rnd} is closed (this node is in round {current}) in run {run!r}",
            )

    def open(self, rnd):
        if not 1 <= rnd <= self.m + 1:
            raise fault("ValueError", f"round {rnd} is not one of this run's rounds 1..={self.m + 1}")
        if rnd <= self.opened:
            raise fault("ValueError", f"round {rnd} already ran (this node is in round {self.opened})")
        self.opened = rnd
        relays, self.queue[rnd - 1] = self.queue[rnd - 1], []
        return relays

    def close_all(self):
        self.opened = self.m + 2
        self.queue = [[] for _ in range(self.m + 1)]

    @property
    def is_commander(self):
        return self.nodes[self.commander] == self.me

    @property
    def complete(self):
        return len(self.received) >= self.expected

    def command(self, order):
        """Round 1: the order for every other node, in nodes order."""
        receivers = [n for n in self.nodes if n != self.me]
        key = (self.nodes.index(self.me),)
        return [
            Relay(to, [self.me], order, i, len(receivers), key) for i, to in enumerate(receivers)
        ]

    def receive(self, path, value):
        """Store a message; the relays it causes (none for a duplicate or a last-round one)."""
        if self.is_commander:
            raise fault("ValueError", "the commander receives no messages")
        ix = self.path_indices(path)
        if ix in self.received:
            return []
        self.received[ix] = value
        if len(path) > self.m:
            return []
        receivers = [n for i, n in enumerate(self.nodes) if i not in ix and n != self.me]
        key = ix + (self.nodes.index(self.me),)
        return [
            Relay(to, path + [self.me], value, i, len(receivers), key)
            for i, to in enumerate(receivers)
        ]

    def is_duplicate(self, path):
        """Whether a message of `path` (a valid one) was received already."""
        if self.is_commander:
            return False
        try:
            return self.path_indices(path) in self.received
        except xmlrpc.client.Fault:
            return False

    def path_indices(self, path):
        if not path or len(path) > self.m + 1:
            raise fault("ValueError", f"path of length {len(path)} (1..={self.m + 1} allowed)")
        ix = []
        for name in path:
            if name not in self.nodes:
                raise fault("ValueError", f"{debug(name)} takes no part in this run")
            i = self.nodes.index(name)
            if i in ix or name == self.me:
                raise fault(
                    "ValueError", f"path {debug(path)} repeats a node or passes through {self.me}"
                )
            ix.append(i)
        if ix[0] != self.commander:
            raise fault("ValueError", f"path {debug(path)} does not start with the commander")
        return tuple(ix)

    def decide(self):
        """value([C]) by recursive majority; missing messages count as retreat. Only subtrees
        in which something arrived are walked: an empty one is retreat all the way up."""
        reached = {ix[:k] for ix in self.received for k in range(1, len(ix) + 1)}
        return self.value([self.commander], self.nodes.index(self.me), reached)

    def value(self, path, me, reached):
        if tuple(path) not in reached:
            return RETREAT
        direct = self.received.get(tuple(path), RETREAT)
        if len(path) == self.m + 1:
            return direct
        values = [direct]
        for j in range(len(self.nodes)):
            if j != me and j not in path:
                values.append(self.value(path + [j], me, reached))
        return majority(values)


def _product(factors):
    p = 1
    for f in factors:
        p *= f
    return p


def majority(values):
    """The value held by more than half of `values`, else retreat."""
    for v in set(values):
        if 2 * values.count(v) > len(values):
            return v
    return RETREAT


class TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport with a socket timeout."""

    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class AgreementProcess(Process):
    """A Process that also takes part in OM runs. The original three methods are inherited
    unchanged (send_message keeps the original denial, whatever --behaviour says). Everything
    added is private (`_x`) except the extension methods, so no other name becomes callable.

    Only a run's driver drives it: om_order, om_round, om_decide and trace_events carry the
    capability the run was started with (checked after "unknown run", with
    hmac.compare_digest); a call without it is refused and changes nothing. Every driver call
    is idempotent for its run: a start with the same capability, the same order, the round
    last opened get the first call's answer; a decide again answers from the one evaluation."""

    def __init__(self, name, faulty, behaviour, seed, rpc_timeout, max_runs=MAX_RUNS,
                 max_run_messages=MAX_RUN_MESSAGES):
        super().__init__(name, faulty=faulty)
        self._max_runs = max_runs
        self._max_run_messages = max_run_messages
        self._behaviour = behaviour
        self._seed = seed
        self._rpc_timeout = rpc_timeout
        self._cond = threading.Condition()  # guards everything below; never held over a call
        self._runs = {}  # run id -> OmRun
        self._started = collections.deque()  # run ids, oldest start first
        self._events = collections.deque(maxlen=MAX_EVENTS)

    # -- extension methods ----------------------------------------------------------------

    def node_info(self, *params):
        Args("node_info", params)
        return {
            "name": self.name,
            "behaviour": str(self._behaviour),
            "traitor": self._behaviour.traitor,
            "public_key": "",  # no SM here
        }

    def om_start(self, *params):
        a = Args("om_start", params, "run", "commander", "nodes", "m", "round_timeout_ms", "seed",
                 "capability", "keys")
        nodes, m, timeout = a.strings(2), a.int(3), a.int(4)
        if len(nodes) > MAX_NODES:
            raise fault("ValueError", f"at most {MAX_NODES} nodes take part in a run")
        if not 0 <= m <= MAX_M:
            raise fault("ValueError", f"m must be 0..={MAX_M}")
        if not 1 <= timeout <= 600_000:
            raise fault("ValueError", "round_timeout_ms must be 1..=600000")
        try:
            seed = parse_u64(a.string(5))
        except ValueError:
            raise fault("ValueError", "seed must be a decimal u64 in a string")
        run, commander = a.string(0), a.string(1)
        capability = a.capability(6)
        keys = {
            name: decode_secret(text, f"the key for {name}")
            for name, text in sorted(a.string_map(7).items())
        }
        count = total_messages(len(nodes), m)
        if count > self._max_run_messages:
            raise fault(
                "ValueError",
                f"a run of {count} messages is over this node's budget of "
                f"{self._max_run_messages} (server --max-run-messages)",
            )
        state = OmRun(self.name, commander, nodes, m, seed ^ self._seed, timeout / 1000,
                      label=f"om-{seed}", capability=capability, keys=keys)
        self._check_keys(nodes, keys)
        with self._cond:
            if self._room(run, capability, time.monotonic()):
                # a fresh run: what an earlier run of that id recorded is not its trace
                if any(e["run"] == run for e in self._events):
                    kept = [e for e in self._events if e["run"] != run]
                    self._events = collections.deque(kept, maxlen=MAX_EVENTS)
                self._runs[run] = state
                self._started.append(run)
            self._cond.notify_all()
        return "ok"

    def _check_keys(self, nodes, keys):
        """A key for every other participant, and none for anyone else."""
        for name in nodes:
            if name != self.name and name not in keys:
                raise fault(
                    "ValueError", f"keys has no key for {name}: every other participant needs one"
                )
        strangers = [k for k in keys if k == self.name or k not in nodes]
        if strangers:
            name = min(strangers)
            why = "this node itself" if name == self.name else "which takes no part in this run"
            raise fault("ValueError", f"keys names {name!r}, {why}")

    def _room(self, run, capability, now):
        """Make room for a start of `run` (under the lock): True for a fresh run, False for a
        retried start (same id, unfinished, same capability: nothing changes). Forgets a
        finished run of that id, then, while the table is full, the oldest finished run, else
        the oldest abandoned one; refuses when none is left to forget."""
        old = self._runs.get(run)
        if old is not None:
            if not old.finished(now):
                if old.driven_by(capability):
                    return False
                raise fault("ValueError", f"run {run!r} {RUN_NOT_FINISHED}")
            self._forget(run)
        while len(self._started) >= self._max_runs:
            victim = next((r for r in self._started if self._runs[r].finished(now)), None)
            if victim is None:
                victim = next((r for r in self._started if self._runs[r].abandoned(now)), None)
            if victim is None:
                raise fault(
                    "ValueError", f"this node holds {len(self._started)} unfinished runs {RUNS_FULL}"
                )
            self._forget(victim)
        return True

    def _forget(self, run):
        self._started.remove(run)
        del self._runs[run]

    def _driven(self, run, capability):
        """The run for a call of its driver (under the lock): unknown run, then not its
        capability, refused before anything changes; otherwise it counts as advanced now."""
        state = self._run(run)
        if not state.driven_by(capability):
            raise fault("PermissionError", f"run {run!r} {NOT_THE_DRIVER}")
        state.advanced = time.monotonic()
        return state

    def om_order(self, *params):
        a = Args("om_order", params, "run", "capability", "order")
        run, capability, order = a.string(0), a.capability(1), a.string(2)
        if len(order.encode()) > MAX_VALUE:
            raise fault("ValueError", f"a value is at most {MAX_VALUE} bytes")
        with self._cond:
            state = self._driven(run, capability)
            if not state.is_commander:
                raise fault("ValueError", f"{self.name} is not the commander of run {run}")
            if state.order is not None:
                if state.order != order:
                    raise fault("ValueError", f"run {run} already has its order")
                return {"queued": state.queued}  # the same order again: a retry
            state.order = order
            relays = state.command(order)
            state.queued = len(relays)
            state.queue[0].extend(relays)
        return {"queued": len(relays)}

    def om_round(self, *params):
        a = Args("om_round", params, "run", "capability", "round")
        run, capability, rnd = a.string(0), a.capability(1), a.int(2)
        rnd = max(rnd, 0)  # Rust reads it as usize: a negative round is round 0
        with self._cond:
            state = self._driven(run, capability)
            if rnd >= 1 and rnd == state.opened:
                # its driver asking again: the first call's answer, once its sending ended
                deadline = time.monotonic() + state.round_timeout + ROUND_RETRY_SLACK
                while state.answers[rnd - 1] is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise fault("TimeoutError", f"round {rnd} is still sending; ask again")
                    self._cond.wait(left)
                    if self._runs.get(run) is not state:
                        raise unknown_run(run)
                return dict(state.answers[rnd - 1])
            relays = state.open(rnd)
            # The same messages in the same order whatever order they arrived in (stable: a
            # path's receivers stay in nodes order), so batches and traces are reproducible.
            relays.sort(key=lambda r: r.key)
            due = len(relays)
            if self._behaviour.kind == "script":
                relays = self._behaviour.scripted(self.name, rnd)  # owed: due; sent: the script
            # a batch must be answered well within the round (as in Rust): a slow receiver
            # makes its messages fail, not this node late; --rpc-timeout caps it too
            timeout = min(state.round_timeout * 0.75, self._rpc_timeout)
        report = self._send_round(run, state, relays, timeout, due)
        answer = dict(report, round=rnd)
        with self._cond:
            r = state.reports[rnd - 1]
            for k in ("due", "sent", "delivered", "failed"):
                r[k] += report[k]
            state.answers[rnd - 1] = answer
            self._cond.notify_all()
        return dict(answer)

    def om_message(self, *params):
        a = Args("om_message", params, "run", "path", "value", "mac")
        run, path, value, mac = a.string(0), a.strings(1), a.string(2), a.string(3)
        if len(value.encode()) > MAX_VALUE:
            raise fault("ValueError", f"a value is at most {MAX_VALUE} bytes")
        with self._cond:
            state = self._run(run)
            # the sender proven before anything else is looked at: no one can make another
            # node's message count as late
            why = state.authenticate("om_message", run, path, value, mac)
            if why is not None:
                state.unauthenticated += 1
                raise fault("PermissionError", f"{NOT_AUTHENTICATED} {why}")
            # a copy of a message already taken (a retried batch, a replay) is answered as
            # stored and nothing more, before the late check: a replay after its round cannot
            # make its sender look late
            if state.is_duplicate(path):
                return str(now_us())
            state.admit(path, run)
            relays = state.receive(path, value)
            if 1 <= len(path) <= state.m:
                state.queue[len(path)].extend(relays)
        return str(now_us())  # when it was stored, for the pictures

    def om_decide(self, *params):
        a = Args("om_decide", params, "run", "capability")
        run, capability = a.string(0), a.capability(1)
        with self._cond:
            state = self._driven(run, capability)
            state.close_all()
            state.decided = True
        # Every round is closed: what it received no longer changes. The evaluation runs once,
        # without the node's lock (its other runs keep answering); a decide again reads it.
        if not state.is_commander:
            with state.evaluating:
                if state.decision is None:
                    state.decision = state.decide()
        with self._cond:
            if self._runs.get(run) is not state:  # its place was needed for a new run
                raise unknown_run(run)
            if state.is_commander:
                role, decision = "commander", state.order or ""
            else:
                role, decision = "lieutenant", state.decision
            reports = state.reports
            # The decision is kept; the messages behind it serve nothing now (every later
            # message is late), and a node keeps up to --max-runs decided runs.
            if state.released is None:
                state.released = len(state.received)
                state.received = {}
            return {
                "role": role,
                "decision": decision,
                "received": state.released,
                "expected": state.expected,
                "sent": [r["delivered"] for r in reports],
                "failed": [r["failed"] for r in reports],
                "withheld": [r["due"] - min(r["sent"], r["due"]) for r in reports],
                "late": dict(state.late),
                "unauthenticated": state.unauthenticated,
            }

    def trace_events(self, *params):
        # Every parameter is read before the run is looked up, as for every method.
        a = Args("trace_events", params, "run", "capability", "since_us")
        run = a.string(0)
        capability = None
        if run == ORIGINAL_RUN:  # no driver: any string is taken
            a.string(1)
        else:
            capability = a.capability(1)
        try:
            since = parse_u64(a.string(2))
        except ValueError:
            raise fault("ValueError", "since_us must be a decimal u64 in a string")
        if capability is not None:
            with self._cond:
                state = self._run(run)
                if not state.driven_by(capability):
                    raise fault("PermissionError", f"run {run!r} {NOT_THE_DRIVER}")
        with self._cond:
            events = [e for e in self._events if e["run"] == run and e["start_us"] >= since]
        # Times travel as decimal strings (XML-RPC integers are 32-bit), as in Rust.
        return [dict(e, start_us=str(e["start_us"]), end_us=str(e["end_us"])) for e in events]

    # -- sending --------------------------------------------------------------------------

    def _run(self, run):
        state = self._runs.get(run)
        if state is None:
            raise unknown_run(run)
        return state

    def _send_round(self, run, state, relays, timeout, due):
        """Send a round's relays (in the order given) through the behaviour: one thread per
        receiver, its messages in system.multicall batches of BATCH, each with its MAC;
        returns the round's report."""
        by_receiver = collections.OrderedDict()
        for relay in relays:
            # the random behaviour draws by the run's label (om-SEED), not its random id
            noise = entropy(state.seed, [state.label] + relay.path + [relay.to])
            if self._behaviour.kind == "script":
                value = relay.value
            else:
                value = self._behaviour.outgoing(relay.value, relay.to, relay.index, relay.count, noise)
            if value is not None:
                by_receiver.setdefault(relay.to, []).append((relay, value))
        if self._behaviour.delay:
            time.sleep(self._behaviour.delay)
        counts = {"due": due, "sent": 0, "delivered": 0, "failed": 0, "failed_to": {}}
        lock = threading.Lock()

        def send(to, messages):
            for i in range(0, len(messages), BATCH):
                batch = messages[i:i + BATCH]
                delivered = self._call_batch(run, to, batch, timeout, state.keys.get(to))
                with lock:
                    counts["sent"] += len(batch)
                    counts["delivered"] += delivered
                    counts["failed"] += len(batch) - delivered
                    if delivered < len(batch):
                        failed_to = counts["failed_to"]
                        failed_to[to] = failed_to.get(to, 0) + len(batch) - delivered

        threads = [threading.Thread(target=send, args=(to, msgs), daemon=True)
                   for to, msgs in by_receiver.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return counts

    def _call_batch(self, run, to, batch, timeout, key):
        """om_message for each (relay, value) of `batch` on node `to`, in one system.multicall,
        each with its MAC under `key` (the one this node shares with `to`; every participant
        has one, checked at the start: without one the message goes unproven and is refused);
        how many were stored. Every message is recorded for trace_events, its MAC included."""
        calls = [
            [run, relay.path, value,
             "" if key is None else make_mac(key, "om_message", run, to, relay.path, value)]
            for relay, value in batch
        ]
        start = now_us()
        outcomes = []  # per message: ("result", value) or ("fault", text)
        try:
            port = port_of(to)
            fault = None
        except (TypeError, ValueError) as e:
            port, fault = None, e  # no address under the port rule: nothing sent
        if port is not None:
            try:
                transport = TimeoutTransport(timeout)
                url = f"http://localhost:{port}/"
                with xmlrpc.client.ServerProxy(url, transport=transport) as proxy:
                    multi = xmlrpc.client.MultiCall(proxy)
                    for args in calls:
                        multi.om_message(*args)
                    for item in multi().results:
                        if isinstance(item, dict):
                            f = xmlrpc.client.Fault(item["faultCode"], item["faultString"])
                            outcomes.append(("fault", fault_text(f)))
                        else:
                            outcomes.append(("result", item[0]))
            except Exception as e:  # the whole batch failed: nothing delivered
                outcomes = [("fault", fault_text(e))] * len(batch)
        else:
            outcomes = [("fault", fault_text(fault))] * len(batch)
        end = now_us()
        with self._cond:
            for args, (kind, what) in zip(calls, outcomes):
                event = {"run": run, "from": self.name, "to": to, "method": "om_message",
                         "args": args, "start_us": start, "end_us": end, kind: what}
                self._events.append(event)
        return sum(1 for kind, _ in outcomes if kind == "result")


class ThreadingXMLRPCServer(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """One thread per request, so om_decide can wait while messages keep coming in."""

    daemon_threads = True
    request_queue_size = 128  # a whole cluster may connect at once

    def __init__(self, addr, delay=0):
        self.delay = delay
        super().__init__(addr)

    def _marshaled_dispatch(self, data, dispatch_method=None, path=None):
        if self.delay:  # a delay:MS node handles every request MS late, as in Rust
            time.sleep(self.delay)
        return super()._marshaled_dispatch(data, dispatch_method, path)


def run_agreement_server(process, port, ready):
    server = ThreadingXMLRPCServer(("localhost", port), delay=process._behaviour.delay)
    server.register_instance(process)
    server.register_multicall_functions()  # system.multicall: a round's batches
    print(f"Process {process.name} running on port {port}...", flush=True)
    ready.release()
    server.serve_forever()


def main():
    global PORT_BASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=8000, metavar="N",
                        help="port of node P; a node's port is N + ord(name) - ord('P') "
                             "(default 8000)")
    parser.add_argument("--nodes", default=None, metavar="P,Q",
                        help="the nodes this process hosts, comma-separated (default P,Q,R,S, "
                             "or every generated node with --cluster-size)")
    parser.add_argument("--faulty", default="P", metavar="P",
                        help="the faulty nodes, comma-separated ('' for none; default P, which "
                             "denies R and S)")
    parser.add_argument("--cluster-size", type=int, default=0, metavar="N",
                        help="N generated nodes N0..N{N-1} on consecutive ports from the port "
                             "base (for clusters larger than P..S)")
    parser.add_argument("--agreement", action="store_true",
                        help="also serve the agreement extension (OM only: node_info, om_*, "
                             "trace_events, system.multicall), so the node can take part in "
                             "`client om` runs")
    parser.add_argument("--behaviour", action="append", type=parse_assignment, default=None,
                        metavar="NAME=KIND",
                        help="how node NAME sends OM messages (repeatable; with --agreement): "
                             "honest, deny:A,B, silent, flip, two-faced, random, delay:MS, "
                             "script:PATH>TO=VALUE;...")
    parser.add_argument("--seed", type=parse_u64, default=None, metavar="N",
                        help="server seed of the random behaviour, XORed with each run's seed "
                             "(default 0; with --agreement)")
    parser.add_argument("--rpc-timeout", type=float, default=None, metavar="SECS",
                        help="longest wait for a peer's answer to one batch of a round "
                             "(default 10; with --agreement)")
    parser.add_argument("--max-runs", type=int, default=None, metavar="N",
                        help="runs a node holds, 1..4096 (default 256; with --agreement)")
    parser.add_argument("--max-run-messages", type=parse_u64, default=None, metavar="N",
                        help="largest run a node takes part in, in messages by OM's formula "
                             "(default 1000000; with --agreement)")
    args = parser.parse_args()
    given = (
        args.behaviour
        or args.seed is not None
        or args.rpc_timeout is not None
        or args.max_runs is not None
        or args.max_run_messages is not None
    )
    if given and not args.agreement:
        parser.error(
            "--behaviour, --seed, --rpc-timeout, --max-runs and --max-run-messages need "
            "--agreement"
        )
    if args.max_runs is not None and not 1 <= args.max_runs <= 4096:
        parser.error("--max-runs must be 1..4096")
    if args.rpc_timeout is not None and not args.rpc_timeout > 0:
        parser.error("--rpc-timeout must be a positive number of seconds")
    PORT_BASE = args.port_base
    GENERATED.update({f"N{i}": i for i in range(args.cluster_size)})
    default = ",".join(GENERATED) if args.cluster_size else "P,Q,R,S"
    names = [n for n in (args.nodes or default).split(",") if n]
    faulty = {n for n in args.faulty.split(",") if n}
    ready = threading.Semaphore(0)
    threads = []
    behaviours = dict(args.behaviour or [])  # a later flag for the same node wins
    for name in names:
        if args.agreement:
            behaviour = behaviours.get(name) or original_behaviour(name, name in faulty)
            process = AgreementProcess(
                name,
                name in faulty,
                behaviour,
                args.seed or 0,
                args.rpc_timeout or 10.0,
                args.max_runs or MAX_RUNS,
                MAX_RUN_MESSAGES if args.max_run_messages is None else args.max_run_messages,
            )
            serve = run_agreement_server
        else:
            process = Process(name, faulty=name in faulty)
            serve = run_server
        port = port_of(name)
        t = threading.Thread(target=serve, args=(process, port, ready), daemon=True)
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
