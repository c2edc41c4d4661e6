#!/usr/bin/env python
"""Chain benchmark: ns per packet with 0, 1, 2 and 3 functions that let
packets go in the stage a path meets, and with the shipped ACL installed
and idle (a rule set that matches none of the packets), against the floor
and against the objects of the layout before chains (one program per
stage, no bank lookup), all measured in the same run.

Paths: local (delivery: ON_XDP_REDIRECT), bouncer (ON_XDP_TX), pass (host
traffic: ON_XDP_PASS). The function is bench/next.bpf.c, which only calls
mzr_stage_next(): a chain of n of them times what n positions cost. The
method is bench/datapath.py's: the restore wrapper puts the packet back
before each repetition, its cost is subtracted, every result is checked
against the fixture table, and each figure is the best of --rounds
interleaved rounds.

    bench/chains.py            # table
    bench/chains.py --json
"""
import os
import statistics
import tempfile

import datapath as D  # noqa: E402 (bench/datapath.py: paths, fixtures, the restore wrapper)
from datapath import F, HERE, Harness, libbpf, machine  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, fnconfig  # noqa: E402

BEFORE = "32bf127"  # the last commit with one program per stage (it has VPC peering, which landed first)
PATHS = [("local", "local", "on_xdp_redirect"), ("bouncer", "bouncer", "on_xdp_tx"), ("pass", "ssh", "on_xdp_pass")]
CONFIGS = ["before", "empty", "next x1", "next x2", "next x3", "acl idle"]
ACL_IDLE = {"rules": [{"vpc": "other", "src": "0.0.0.0/0", "dst": "10.99.0.0/16", "protocol": "tcp", "port": 22,
                       "action": "drop"}]}


class Functions:
    """The stage functions, loaded against a harness's pinned maps."""

    def __init__(self, h):
        self.h = h
        out = tempfile.mkdtemp(prefix="mzr-bench-")
        self.objs = []
        self.next = self._load(machine.compile_bpf(os.path.join(HERE, "next.bpf.c"), out), "bench_next")
        acl_obj = os.path.join(machine.BPF_OUT, "functions", "acl.bpf.o")
        self.acl = dict((s, self._load(acl_obj, "acl_" + s)) for s in ("on_xdp_redirect", "on_xdp_tx"))
        fnconfig.configurator("acl").converge(h.pin_dir, ACL_IDLE, {"other": 4242})

    def _load(self, path, prog):
        obj = libbpf.BpfObject(path, pin_root=self.h.pin_dir).load()
        self.objs.append(obj)
        return obj.program(prog)

    def chain(self, config, stage):
        if config == "acl idle":
            return [self.acl[stage]] if stage in self.acl else None
        return [self.next] * (int(config[-1]) if config.startswith("next") else 0)

    def install(self, stage, progs):
        """The chain in bank 0 of the stage (the harness's bank words are 0)."""
        number = abi.STAGES[stage]
        for pos in range(abi.CHAIN_MAX):
            key = abi.stage_slot(0, number, pos).to_bytes(4, "little")
            if pos < len(progs):
                self.h.stages.update(key, progs[pos].fd.to_bytes(4, "little"))
            else:
                self.h.stages.delete(key)

    def close(self):
        for o in self.objs:
            o.close()


def measure(rounds, repeat):
    h, old = Harness(), Harness(machine.build_at(BEFORE, tempfile.mkdtemp(prefix="mzr-bench-before-")))
    w, w_old = D.Restorer(h), D.Restorer(old)
    fns = Functions(h)
    try:
        bounce = F.BY_NAME["bouncer"]
        floor_fx = bounce._replace(name="floor", verdict=F.XDP_PASS, output=bounce.packet, program="pass")
        floor, wrapped_floor = [], []
        times = dict(((c, p), []) for c in CONFIGS for p, dummy, dummy in PATHS)
        for dummy in range(rounds):
            r = h.programs["pass"].test_run(floor_fx.packet, repeat=repeat)
            D._check(floor_fx, r)
            floor.append(r.duration_ns)
            r = w.run("pass", floor_fx, repeat)
            D._check(floor_fx, r)
            wrapped_floor.append(r.duration_ns)
            for config in CONFIGS:
                for name, fx, stage in PATHS:
                    chain = [] if config == "before" else fns.chain(config, stage)
                    if chain is None:
                        continue  # the ACL does not run at that stage
                    f = F.BY_NAME[fx]
                    harness, wrapper = (old, w_old) if config == "before" else (h, w)
                    harness.load_world(F.WORLDS[f.world])
                    if config != "before":
                        fns.install(stage, chain)
                    r = wrapper.run(f.program, f, repeat)
                    D._check(f, r)
                    times[(config, name)].append(r.duration_ns)
                    if config != "before":
                        fns.install(stage, [])
        floor_ns = min(floor)
        wrapper_ns = min(wrapped_floor) - floor_ns
        out = {}
        for (config, name), ts in times.items():
            if not ts:
                continue
            ns = min(ts) - wrapper_ns
            out.setdefault(config, {})[name] = {"ns": ns, "above_floor_ns": ns - floor_ns,
                                                "median_ns": statistics.median(ts) - wrapper_ns}
        return {"floor_ns": floor_ns, "wrapper_ns": wrapper_ns, "configs": out, "rounds": rounds, "repeat": repeat}
    finally:
        fns.close()
        w.close()
        w_old.close()
        h.close()
        old.close()


def table(res):
    names = [p for p, dummy, dummy in PATHS]
    row = "%-10s" + " %16s" * len(names)
    lines = [row % tuple(["stage holds"] + ["%s - floor" % n for n in names])]
    empty = res["configs"]["empty"]
    for config in CONFIGS:
        cells = []
        for n in names:
            p = res["configs"][config].get(n)
            if p is None:
                cells.append("n/a")
                continue
            delta = p["ns"] - empty[n]["ns"]
            cells.append("%.1f" % p["above_floor_ns"] if config == "empty" else "%.1f (%+.1f)" % (
                p["above_floor_ns"], delta))
        lines.append(row % tuple([config] + cells))
    lines.append("(floor %.1f ns; best of %d rounds of %d repetitions; restore wrapper %.1f ns, subtracted; "
                 "in brackets: against the empty stage; before: the objects of %s, one program per stage)" % (
                     res["floor_ns"], res["rounds"], res["repeat"], res["wrapper_ns"], BEFORE))
    return "\n".join(lines)


if __name__ == "__main__":
    D.cli(__doc__, measure, table)
