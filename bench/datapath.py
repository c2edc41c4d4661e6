#!/usr/bin/env python
"""Data path benchmark: ns per packet for each pipeline path, against the
floor (a program that only returns XDP_PASS) measured in the same run.

BPF_PROG_TEST_RUN with repeat > 1 re-runs the program on the packet it
already rewrote (a bounced packet is no longer addressed to this host, a
decapsulated one is no longer Geneve), so it would time some other path.
So the program under test is reached through bench/restore.bpf.c, which
puts the original packet back (head and bytes) before every repetition and
tail-calls it. The wrapper's own cost is measured the same way with the
floor program as target and subtracted:

    path ns = floor + (wrapper -> path) - (wrapper -> floor)

Paths that leave the packet as it was (pass, bypass) are also timed
directly with repeat, as a cross-check. After every timed call the verdict
and the output bytes are checked against the fixture table.

A fixture name "name@world" runs that fixture on another world of the table:
the divider paths with VPC peer routes present ("b_peered") beside the same
paths without them, in the same run. A fixture of another world (the tunnel
peers' of world "tp") runs on its own.

Each figure is the best of --rounds interleaved rounds (the kernel's
average over --repeat repetitions in each): on a shared virtual machine,
other load only ever adds time, so the least is the program's own cost.
The median of the rounds is reported beside it.

    bench/datapath.py            # table
    bench/datapath.py --json     # {"floor_ns": F, "paths": {...}}
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".build"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "datapath"))

import fixtures as F  # noqa: E402
import machine  # noqa: E402
from harness import Harness  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf  # noqa: E402

PATHS = [  # (name in the report, fixture, target: ns above the floor, "+N")
    ("bouncer", "bouncer", "+25"),
    ("divider", "divider", "+35"),
    ("local", "local", "+25"),
    ("bypass", "bypass", None),
    ("pass", "ssh", "+5"),
    ("ecn_local", "ecn_ce_over_ect0", None),   # local delivery that rewrites the inner ECN
    ("untrusted", "untrusted_relay", None),    # dropped by the trusted-source check
    ("outer_len", "outer_totlen_2", None),     # dropped by the outer length check
    ("a_encap", "agent_encap", None),          # agent: encapsulation to a remote bouncer
    ("a_local", "agent_local", None),          # agent: same-host delivery
    ("a_bounce", "agent_self_bouncer", None),  # agent: this host is the bouncer
    ("a_arp", "agent_self_bouncer_arp", None),  # agent: ARP answered as the bouncer
    # VPC peering: the divider paths with peer routes present (world b_peered) against the same
    # fixtures without them, and the crossing itself
    ("div_peered", "divider@b_peered", "+35"),      # a known network, peer routes present: unchanged
    ("no_net", "divider_no_network", None),          # no_network, no peer routes
    ("no_net_peered", "divider_no_network@b_peered", None),  # no_network after the peer lookup
    ("to_peer", "peer", None),                       # crossing a peering: VNI rewritten
    # tunnel peers (world tp): a peer's own endpoint, its inner source checked, bounced; and a peer
    # speaking for another endpoint's address, dropped (tunnel_src)
    ("tp_bounce", "peer_own_endpoint_bounced", None),
    ("tp_src", "peer_src_other_endpoint", None),
]


def fixture(spec):
    """The fixture a PATHS entry names: "name", or "name@world" for that
    fixture run on another world of the table."""
    name, dummy, world = spec.partition("@")
    f = F.BY_NAME[name]
    return f._replace(world=world) if world else f


def _check(f, r):
    if r.retval != f.verdict or r.data != f.output:
        raise SystemExit("%s: wrong verdict %s or output during the benchmark" % (f.name, F.VERDICTS.get(r.retval)))


class Restorer:
    """bench/restore.bpf.c, built as the collection builds its own objects
    (the tests' machine.compile_bpf: bpf/build.py's command and flags) and
    loaded beside the harness."""

    def __init__(self, h):
        out = machine.compile_bpf(os.path.join(HERE, "restore.bpf.c"), tempfile.mkdtemp(prefix="mzr-bench-"))
        self.obj = libbpf.BpfObject(out).load()
        self.prog = self.obj.program("bench_restore")
        self.packet = self.obj.map("bench_packet")
        self.target = self.obj.map("bench_target")
        self.vary = self.obj.map("bench_vary")
        self.h = h

    def close(self):
        self.obj.close()

    def run(self, program, f, repeat, vary=0):
        """Time program on f's packet, restored before every repetition (and,
        with vary, a counter written at that offset: a new flow each time)."""
        self.vary.update(bytes(4), vary.to_bytes(4, "little") + bytes(4))
        data = f.packet
        self.packet.update(bytes(4), len(data).to_bytes(4, "little") + data + bytes(256 - len(data)))
        self.target.update(bytes(4), self.h.programs[program].fd.to_bytes(4, "little"))
        r = self.prog.test_run(data, repeat=repeat, ingress_ifindex=f.ingress)
        return r


def function_harness(stem, prog_name, obj_dir=machine.BPF_OUT):
    """A Harness, its Restorer, and the shipped function stem's object loaded
    beside them (its maps pinned with the harness's): (h, w, obj, prog). The
    objects are the build's, or those of obj_dir (machine.build_at's)."""
    h = Harness(obj_dir)
    w = Restorer(h)
    obj = libbpf.BpfObject(os.path.join(obj_dir, "functions", stem + ".bpf.o"), pin_root=h.pin_dir).load()
    return h, w, obj, obj.program(prog_name)


def measure(rounds, repeat):
    h = Harness()
    w = Restorer(h)
    try:
        bounce = F.BY_NAME["bouncer"]
        floor_fx = bounce._replace(name="floor", verdict=F.XDP_PASS, output=bounce.packet, program="pass")
        floor, wrapped_floor = [], []
        wrapped = dict((name, []) for name, dummy, dummy in PATHS)
        direct = dict((name, []) for name, dummy, dummy in PATHS)
        for dummy in range(rounds):  # interleaved, so drift hits every path alike
            r = h.programs["pass"].test_run(floor_fx.packet, repeat=repeat)
            _check(floor_fx, r)
            floor.append(r.duration_ns)
            r = w.run("pass", floor_fx, repeat)
            _check(floor_fx, r)
            wrapped_floor.append(r.duration_ns)
            for name, fx, dummy in PATHS:
                f = fixture(fx)
                h.load_world(F.WORLDS[f.world])
                r = w.run(f.program, f, repeat)
                _check(f, r)
                wrapped[name].append(r.duration_ns)
                if f.output == f.packet:
                    r = h.programs[f.program].test_run(f.packet, repeat=repeat, ingress_ifindex=f.ingress)
                    _check(f, r)
                    direct[name].append(r.duration_ns)
        floor_ns = min(floor)
        wrapper_ns = min(wrapped_floor) - floor_ns
        wrapper_med = statistics.median(wrapped_floor) - statistics.median(floor)
        paths = {}
        for name, fx, target in PATHS:
            ns = min(wrapped[name]) - wrapper_ns
            paths[name] = {"ns": ns, "above_floor_ns": ns - floor_ns, "verdict": F.VERDICTS[fixture(fx).verdict],
                           "median_ns": statistics.median(wrapped[name]) - wrapper_med,
                           "direct_ns": min(direct[name]) if direct[name] else None,
                           "ratio": round(ns / floor_ns, 2), "target": target, "met": _met(ns, floor_ns, target)}
        return {"floor_ns": floor_ns, "floor_median_ns": statistics.median(floor), "paths": paths,
                "wrapper_ns": wrapper_ns, "rounds": rounds, "repeat": repeat}
    finally:
        w.close()
        h.close()


def _met(ns, floor, target):
    if target is None:
        return None
    return ns <= floor + float(target[1:])


def table(res):
    row = "%-10s %8s %8s %8s %-13s %8s %8s %-7s %s"
    lines = [row % ("path", "ns/pkt", "- floor", "x floor", "verdict", "median", "direct", "target", "met")]
    lines.append(row % ("floor", "%.1f" % res["floor_ns"], "0.0", "1.00", "XDP_PASS", "%.1f" % res["floor_median_ns"],
                        "", "", ""))
    for name, p in res["paths"].items():
        met = "" if p["met"] is None else ("yes" if p["met"] else "NO")
        direct = "" if p["direct_ns"] is None else "%.1f" % p["direct_ns"]
        lines.append(row % (name, "%.1f" % p["ns"], "%.1f" % p["above_floor_ns"], "%.2f" % p["ratio"], p["verdict"],
                            "%.1f" % p["median_ns"], direct, p["target"] or "", met))
    lines.append("(best of %d rounds of %d repetitions; restore wrapper: %.1f ns, subtracted; median: of the "
                 "rounds; direct: plain repeat, for paths that leave the packet unchanged)" % (
                     res["rounds"], res["repeat"], res["wrapper_ns"]))
    return "\n".join(lines)


def cli(doc, measure_fn, table_fn):
    """The command line of a data path benchmark: --json, --repeat, --rounds."""
    ap = argparse.ArgumentParser(description=doc.split("\n", maxsplit=1)[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--repeat", type=int, default=100000, help="in-kernel repetitions per round")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    args = ap.parse_args()
    res = measure_fn(args.rounds, args.repeat)
    print(json.dumps(res, indent=2) if args.json else table_fn(res))


def main():
    cli(__doc__, measure, table)


if __name__ == "__main__":
    main()
