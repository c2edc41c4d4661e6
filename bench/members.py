#!/usr/bin/env python
"""The agent's direct server return check and its path to a VIP, before
and after the members table, in the same run.

Before: the objects and the control plane of BEFORE (the last commit whose
agent scanned a scaled endpoint's 32-slot backend set, mzr_backends), built
from git and loaded into a harness of their own, their maps written by that
commit's own tables.converge(). After: this checkout's objects, one lookup
in mzr_members. Both hold the same world: h1 of tests/datapath's fixtures,
whose endpoint 10.0.0.5 (the agent on lo) is a backend of

  10.0.0.9 .... first of 32 backends
  10.0.0.11 ... last of 32 backends (the old scan's worst member)
  10.0.0.12 ... not a backend of its 32 (a spoof: the whole scan, then a drop)
  10.0.0.13 ... backend number 4,000 of 4,096 (after only: before allowed 32)

Rows, each the agent on the endpoint's veth through bench/datapath.py's
restore wrapper (its cost subtracted), the verdict and output bytes checked:

  dsr_first, dsr_last, dsr_4000 ... a reply from that VIP: accepted, encapsulated
  spoof ........................... a reply from a VIP it does not serve: agent_spoof
  to_vip .......................... a datagram of the endpoint to a VIP (the path
                                    MTU check keeps 8 bytes for the option)
  encap ........................... the same to a plain endpoint, for reference

Each figure is the best of --rounds interleaved rounds.

    bench/members.py            # table
    bench/members.py --json
"""
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datapath  # noqa: E402  (bench/datapath.py: the harness, the restore wrapper, the command line)
from datapath import F  # noqa: E402
import machine  # noqa: E402
from harness import Harness  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity  # noqa: E402

BEFORE = "0d154ec"  # the last commit with backend sets (ABI 3)
ME = "10.0.0.5"


def _backends(n, at):
    ips = ["10.1.%d.%d" % (i // 250, 1 + i % 250) for i in range(n)]
    if at is not None:
        ips[at] = ME
    return ips


def world(after):
    eps = [F.ep(100, 9, type="scaled", backends=_backends(32, 0)),
           F.ep(100, 11, type="scaled", backends=_backends(32, 31)),
           F.ep(100, 12, type="scaled", backends=_backends(32, None))]
    if after:
        eps.append(F.ep(100, 13, type="scaled", backends=_backends(capacity.MAX_BACKENDS, 3999)))
    return dict(F.WORLD_H1, endpoints=F.WORLD_H1["endpoints"] + eps)


def _frame(src, dst):
    return bytes(Ether(src=F.ep_mac(100, 5), dst=F.GW_MAC) / IP(src=src, dst=dst) / UDP(sport=80, dport=31000)
                 / Raw(b"reply"))


def rows(after):
    """(name, fixture) of the agent."""
    base = F.BY_NAME["agent_encap"]
    out = []
    for name, vip in (("dsr_first", "10.0.0.9"), ("dsr_last", "10.0.0.11")) + (
            (("dsr_4000", "10.0.0.13"),) if after else ()):
        frame = _frame(vip, "10.0.0.6")
        out.append((name, base._replace(name=name, packet=frame, output=F.agent_encap(frame),
                                        verdict=F.XDP_REDIRECT)))
    spoof = _frame("10.0.0.12", "10.0.0.6")
    out.append(("spoof", base._replace(name="spoof", packet=spoof, output=spoof, verdict=F.XDP_DROP)))
    for name, dst in (("to_vip", "10.0.0.9"), ("encap", "10.0.0.6")):
        frame = _frame(ME, dst)
        out.append((name, base._replace(name=name, packet=frame, output=F.agent_encap(frame),
                                        verdict=F.XDP_REDIRECT)))
    return out


def _side(after, tmp):
    """(harness, restorer, rows) of one side, its world in its maps."""
    if after:
        h = Harness()
        h.load_world(world(True))
    else:
        objs = machine.build_at(BEFORE, os.path.join(tmp, "objs"))
        h = Harness(obj_dir=objs)
        machine.converge_at(BEFORE, os.path.join(tmp, "cp"), h.pin_dir, world(False))
    return h, datapath.Restorer(h), rows(after)


def measure(rounds, repeat):
    tmp = tempfile.mkdtemp(prefix="mzr-bench-members-")
    sides = {}
    try:
        for label, after in (("before", False), ("after", True)):
            sides[label] = _side(after, tmp)
        times = {}
        for dummy in range(rounds):  # interleaved: drift hits both sides alike
            for label, (h, w, table) in sides.items():
                floor_fx = F.BY_NAME["bouncer"]._replace(name="floor", verdict=F.XDP_PASS, program="pass")
                floor_fx = floor_fx._replace(output=floor_fx.packet)
                times.setdefault((label, "floor"), []).append(w.run("pass", floor_fx, repeat).duration_ns)
                for name, f in table:
                    r = w.run("agent", f, repeat)
                    if r.retval != f.verdict or r.data != f.output:
                        raise SystemExit("%s %s: wrong verdict %s or output during the benchmark"
                                         % (label, name, F.VERDICTS.get(r.retval)))
                    times.setdefault((label, name), []).append(r.duration_ns)
        out = {"before": BEFORE, "rounds": rounds, "repeat": repeat, "rows": {}}
        names = [name for name, dummy in sides["after"][2]]
        for name in names:
            row = {}
            for label in sides:
                if (label, name) in times:
                    wrapper = min(times[(label, "floor")])
                    row[label] = {"ns": min(times[(label, name)]) - wrapper,
                                  "median_ns": statistics.median(times[(label, name)])
                                  - statistics.median(times[(label, "floor")])}
            out["rows"][name] = row
        return out
    finally:
        for h, w, dummy in sides.values():
            w.close()
            h.close()


def table(res):
    row = "%-10s %12s %12s %10s"
    lines = [row % ("row", "before ns", "after ns", "after-bef")]
    for name, r in res["rows"].items():
        b, a = r.get("before"), r.get("after")
        lines.append(row % (name, "%.1f" % b["ns"] if b else "-", "%.1f" % a["ns"] if a else "-",
                            "%+.1f" % (a["ns"] - b["ns"]) if a and b else ""))
    lines.append("(ns above the restore wrapper's own run of the pass program, best of %d rounds of %d "
                 "repetitions; before: %s)" % (res["rounds"], res["repeat"], res["before"]))
    return "\n".join(lines)


if __name__ == "__main__":
    datapath.cli(__doc__, measure, table)
