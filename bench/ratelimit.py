#!/usr/bin/env python
"""Cost per packet of the ratelimit function at ON_XDP_REDIRECT, next to the
same delivery with the stage empty, in the same run.

The packet is the `local` fixture (a Geneve packet decapsulated and
redirected to an endpoint hosted here), and `a_local` (the agent's
same-host delivery), each timed through bench/datapath.py's restore wrapper
(the original packet put back before every repetition) with:

  empty ......... no program in the stage
  idle .......... ratelimit installed, no limit at all
  other_vpc ..... limits, none of the packet's VPC (one probe, no parsing)
  neighbour ..... a limit on another endpoint of the VPC (the packet is parsed
                  and probed, and goes on untouched)
  limited ....... a limit on the packet's endpoint, far above what the run
                  sends (pps 1e9, bps 1tbit): every packet passes, a CPU
                  takes a batch from the shared clock now and then
  limited_vpc ... the same, and a limit on its VPC too: both pay
  over .......... a limit of 1 packet per second: every packet but the first
                  is dropped (each drop reads the clock once)

Each figure is the best of --rounds interleaved rounds; "+ empty" is the
function's own cost, the ns above the empty stage measured in the same run,
and "x floor" the ratio to the floor (a program that only returns XDP_PASS).

    bench/ratelimit.py            # table
    bench/ratelimit.py --json
"""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datapath  # noqa: E402  (bench/datapath.py: paths, the harness, the restore wrapper)
from datapath import F  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig  # noqa: E402

STAGE = "on_xdp_redirect"
VNIS = {"blue": 100, "red": 200}
FIXTURES = {"local": ("local", "10.0.0.7", "10.0.0.8"), "a_local": ("agent_local", "10.0.0.4", "10.0.0.6")}
HIGH = {"pps": 10 ** 9, "bps": 10 ** 12}


def variants(ip, neighbour):
    """(name, limits or None for the empty stage, the verdict expected)."""
    mine = dict(vpc="blue", ip=ip, burst="10ms", **HIGH)
    return [
        ("empty", None, F.XDP_REDIRECT),
        ("idle", [], F.XDP_REDIRECT),
        ("other_vpc", [dict(vpc="red", burst="10ms", pps=1)], F.XDP_REDIRECT),
        ("neighbour", [dict(mine, ip=neighbour, pps=1)], F.XDP_REDIRECT),
        ("limited", [mine], F.XDP_REDIRECT),
        ("limited_vpc", [mine, dict(vpc="blue", burst="10ms", **HIGH)], F.XDP_REDIRECT),
        ("over", [dict(vpc="blue", ip=ip, burst="1ms", pps=1)], F.XDP_DROP),
    ]


def measure(rounds, repeat):
    h, w, obj, prog = datapath.function_harness("ratelimit", "ratelimit_on_xdp_redirect")
    rl = fnconfig.configurator("ratelimit")
    try:
        floor_fx = F.BY_NAME["bouncer"]._replace(name="floor", verdict=F.XDP_PASS, program="pass")
        floor_fx = floor_fx._replace(output=floor_fx.packet)
        floor, wrapped_floor = [], []
        times = {}
        for dummy in range(rounds):
            r = h.programs["pass"].test_run(floor_fx.packet, repeat=repeat)
            floor.append(r.duration_ns)
            r = w.run("pass", floor_fx, repeat)
            wrapped_floor.append(r.duration_ns)
            for path, (fx, ip, neighbour) in FIXTURES.items():
                f = F.BY_NAME[fx]
                h.load_world(F.WORLDS[f.world])
                for name, limits, verdict in variants(ip, neighbour):
                    rl.converge(h.pin_dir, {"limits": []}, VNIS)
                    rl.converge(h.pin_dir, {"limits": limits or []}, VNIS)
                    h.set_stage(STAGE, None if limits is None else prog)
                    try:
                        r = w.run(f.program, f, repeat)
                    finally:
                        h.set_stage(STAGE, None)
                    if r.retval != verdict or r.data != f.output:
                        raise SystemExit("%s/%s: wrong verdict %s or output during the benchmark" % (
                            path, name, F.VERDICTS.get(r.retval)))
                    times.setdefault((path, name), []).append(r.duration_ns)
        floor_ns = min(floor)
        wrapper_ns = min(wrapped_floor) - floor_ns
        out = {"floor_ns": floor_ns, "wrapper_ns": wrapper_ns, "rounds": rounds, "repeat": repeat, "paths": {}}
        for path in FIXTURES:
            empty = min(times[(path, "empty")]) - wrapper_ns
            rows = out["paths"][path] = {}
            for name, dummy, verdict in variants("", ""):
                ns = min(times[(path, name)]) - wrapper_ns
                rows[name] = {"ns": ns, "above_empty_ns": ns - empty, "ratio": round(ns / floor_ns, 2),
                              "median_ns": statistics.median(times[(path, name)]) - wrapper_ns,
                              "verdict": F.VERDICTS[verdict]}
        return out
    finally:
        rl.converge(h.pin_dir, {"limits": []}, VNIS)
        obj.close()
        w.close()
        h.close()


def table(res):
    row = "%-8s %-12s %8s %8s %8s %8s  %s"
    lines = [row % ("path", "stage", "ns/pkt", "+ empty", "x floor", "median", "verdict"),
             row % ("floor", "", "%.1f" % res["floor_ns"], "", "1.00", "", "XDP_PASS")]
    for path, rows in res["paths"].items():
        for name, p in rows.items():
            lines.append(row % (path, name, "%.1f" % p["ns"], "%+.1f" % p["above_empty_ns"], "%.2f" % p["ratio"],
                                "%.1f" % p["median_ns"], p["verdict"]))
    lines.append("(best of %d rounds of %d repetitions; restore wrapper: %.1f ns, subtracted)" % (
        res["rounds"], res["repeat"], res["wrapper_ns"]))
    return "\n".join(lines)


if __name__ == "__main__":
    datapath.cli(__doc__, measure, table)
