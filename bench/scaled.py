#!/usr/bin/env python
"""Cost per packet of the scaled function (a scaled endpoint's load
balancing) next to the plain bouncer path, in the same run, and the same
rows with the function as it was before its tuning (commit BEFORE).

Every row is the transit program on the bouncer host of tests/datapath's
fixtures (b), through bench/datapath.py's restore wrapper (the original
packet put back before every repetition):

  bouncer .......... the `bouncer` fixture: a packet to a remote endpoint,
                     sent on to its host (ON_XDP_TX empty): the path a
                     packet to a VIP replaces
  established ...... a packet to the VIP whose flow is in the connection
                     table, to a backend on another host: the table and the
                     backend set read, a fresh outer header with the option
  new .............. the same with another flow every repetition (the
                     wrapper writes a counter into the inner UDP ports): the
                     ring read and the flow written to the table
  established_local  a flow to a backend hosted on b: decapsulated to it
  new_local ........ the same, a new flow every repetition
  at_backend ....... at the backend's host (h1): the established row's
                     output, with the option, delivered (decapsulated) to
                     its backend there

The connection table is emptied before every new-flow row, so no row pays
for evictions. Each figure is the best of --rounds interleaved rounds, the
wrapper's own cost subtracted. Beside the ns per packet: "- floor", the ns
above the floor (a program that only returns XDP_PASS, timed in the same
run), and "x bouncer", the ratio of the ns above the floor to the bouncer
path's in the same run. "before" is the same row with the objects of commit
BEFORE (built from git, on a harness of their own), timed in the same
rounds.

    bench/scaled.py            # table
    bench/scaled.py --json
"""
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datapath  # noqa: E402  (bench/datapath.py: paths, the harness, the restore wrapper)
from datapath import F, machine  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev  # noqa: E402

import test_scaled as T  # noqa: E402  (tests/datapath's: the function's packets, configs, expected outputs)

BEFORE = "0d154ec"  # the scaled function before its tuning (issue 10, part 1)
STAGE = "on_xdp_scaled_ep"
PROG = "scaled_on_xdp_scaled_ep"
VNIS = T.VNIS
REMOTE = T.config((5, 1), (6, 1))  # backends on h1 and h2
LOCAL = T.config((7, 1))           # the backend hosted on b
PORTS_AT = T.SPORT_AT              # the inner UDP ports: a new flow when they change


def rows():
    """(name, config or None, fixture, vary offset, verdict, world)."""
    bounce = F.BY_NAME["bouncer"]
    remote = T.client_frame(T.sport_to(REMOTE, "10.0.0.5"))
    local = T.client_frame(T.sport_to(LOCAL, "10.0.0.7"))
    est = bounce._replace(name="established", packet=F.enc(remote),
                          output=T.to_backend_host(remote, "10.0.0.5", "h1"), verdict=F.XDP_TX)
    est_local = bounce._replace(name="established_local", packet=F.enc(local),
                                output=F.decapped(local, F.ep_mac(100, 7)), verdict=F.XDP_REDIRECT)
    at_backend = bounce._replace(name="at_backend", packet=T.to_backend_host(remote, "10.0.0.5", "h1"),
                                 output=T.P.with_dst_mac(remote, F.ep_mac(100, 5)), verdict=F.XDP_REDIRECT)
    return [
        ("bouncer", None, bounce, 0, F.XDP_TX, F.WORLD_B),
        ("established", REMOTE, est, 0, F.XDP_TX, F.WORLD_B),
        ("new", REMOTE, est._replace(name="new", output=None), PORTS_AT, F.XDP_TX, F.WORLD_B),
        ("established_local", LOCAL, est_local, 0, F.XDP_REDIRECT, F.WORLD_B),
        ("new_local", LOCAL, est_local._replace(name="new_local", output=None), PORTS_AT, F.XDP_REDIRECT,
         F.WORLD_B),
        ("at_backend", REMOTE, at_backend, 0, F.XDP_REDIRECT, T.WORLD_H1),
    ]


def _rows_of(times, table, floor_ns, subtract):
    """{row: figures} of one side's times, against its own bouncer row."""
    out, bouncer = {}, None
    for name, dummy, dummy2, vary, verdict, dummy3 in table:
        sub = subtract[bool(vary)]
        ns = min(times[name]) - sub
        bouncer = ns if bouncer is None else bouncer
        out[name] = {"ns": ns, "above_floor_ns": ns - floor_ns, "above_bouncer_ns": ns - bouncer,
                     "ratio": round(ns / floor_ns, 2), "x_bouncer": round(ns / bouncer, 2),
                     "x_bouncer_above_floor": round((ns - floor_ns) / (bouncer - floor_ns), 2),
                     "median_ns": statistics.median(times[name]) - sub, "verdict": F.VERDICTS[verdict]}
    return out


def measure(rounds, repeat):
    sides = {"after": datapath.function_harness("scaled", PROG)}
    lb = fnconfig.configurator("scaled")
    try:
        sides["before"] = datapath.function_harness(
            "scaled", PROG, machine.build_at(BEFORE, tempfile.mkdtemp(prefix="mzr-bench-before-")))
        for side in sides:
            sides[side][0].set_stage(STAGE, sides[side][3])
        h, w = sides["after"][:2]
        floor_fx = F.BY_NAME["bouncer"]._replace(name="floor", verdict=F.XDP_PASS, program="pass")
        floor_fx = floor_fx._replace(output=floor_fx.packet)
        floor, wrapped_floor, varied_floor = [], [], []
        times = dict((side, {}) for side in sides)
        table = rows()
        for dummy in range(rounds):
            h.load_world(F.WORLD_B)
            floor.append(h.programs["pass"].test_run(floor_fx.packet, repeat=repeat).duration_ns)
            wrapped_floor.append(w.run("pass", floor_fx, repeat).duration_ns)
            varied_floor.append(w.run("pass", floor_fx, repeat, vary=PORTS_AT).duration_ns)
            for side, (sh, sw, dummy2, dummy3) in sides.items():
                for name, cfg, f, vary, verdict, world in table:
                    sh.load_world(world)
                    if cfg is not None:
                        lb.converge(sh.pin_dir, cfg, VNIS)
                    if vary:
                        T.forget_flows(sh)
                    r = sw.run(f.program, f, repeat, vary=vary)
                    if r.retval != verdict or (f.output is not None and r.data != f.output):
                        raise SystemExit("%s (%s): wrong verdict %s or output during the benchmark" % (
                            name, side, F.VERDICTS.get(r.retval)))
                    times[side].setdefault(name, []).append(r.duration_ns)
        floor_ns = min(floor)
        wrapper_ns = min(wrapped_floor) - floor_ns
        varied_ns = min(varied_floor) - floor_ns
        subtract = {False: wrapper_ns, True: varied_ns}
        return {"floor_ns": floor_ns, "wrapper_ns": wrapper_ns, "varied_wrapper_ns": varied_ns, "rounds": rounds,
                "repeat": repeat, "ring_size": {"remote": maglev.endpoint_ring_size([1, 1]),
                                                "local": maglev.endpoint_ring_size([1])},
                "rows": _rows_of(times["after"], table, floor_ns, subtract),
                "before": {"commit": BEFORE, "rows": _rows_of(times["before"], table, floor_ns, subtract)}}
    finally:
        for side in sides:
            h, w, obj = sides[side][:3]
            h.set_stage(STAGE, None)
            lb.converge(h.pin_dir, {"endpoints": []}, VNIS)
            for opened in (obj, w, h):
                opened.close()


def table(res):
    row = "%-18s %8s %8s %9s %9s %8s  %-13s %8s %9s"
    head = [("path", "ns/pkt", "- floor", "x bouncer", "(- floor)", "median", "verdict", "before", "x bouncer"),
            ("floor", "%.1f" % res["floor_ns"], "0.0", "", "", "", "XDP_PASS", "", "")]
    before = res["before"]["rows"]
    lines = [row % cells for cells in head + [
        (name, "%.1f" % p["ns"], "%.1f" % p["above_floor_ns"], "%.2f" % p["x_bouncer"],
         "%.2f" % p["x_bouncer_above_floor"], "%.1f" % p["median_ns"], p["verdict"], "%.1f" % before[name]["ns"],
         "%.2f" % before[name]["x_bouncer"]) for name, p in res["rows"].items()]]
    lines.append("(best of %d rounds of %d repetitions; restore wrapper %.1f ns, with the flow counter %.1f ns, "
                 "subtracted; x bouncer: ns, and ns above the floor, over the bouncer row's; before: the objects "
                 "of %s in the same rounds; rings of %d and %d slots)" % (
                     res["rounds"], res["repeat"], res["wrapper_ns"], res["varied_wrapper_ns"],
                     res["before"]["commit"], res["ring_size"]["remote"], res["ring_size"]["local"]))
    return "\n".join(lines)


if __name__ == "__main__":
    datapath.cli(__doc__, measure, table)
