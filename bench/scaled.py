#!/usr/bin/env python
"""Cost per packet of the scaled function (a scaled endpoint's load
balancing) next to the plain bouncer path, in the same run.

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

The connection table is emptied before every new-flow row, so no row pays
for evictions. Each figure is the best of --rounds interleaved rounds;
"+ bouncer" is the ns above the bouncer path measured in the same run, and
"x floor" the ratio to the floor (a program that only returns XDP_PASS).

    bench/scaled.py            # table
    bench/scaled.py --json
"""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import datapath  # noqa: E402  (bench/datapath.py: paths, the harness, the restore wrapper)
from datapath import F  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev  # noqa: E402

import test_scaled as T  # noqa: E402  (tests/datapath's: the function's packets, configs, expected outputs)

STAGE = "on_xdp_scaled_ep"
VNIS = T.VNIS
REMOTE = T.config((5, 1), (6, 1))  # backends on h1 and h2
LOCAL = T.config((7, 1))           # the backend hosted on b
PORTS_AT = T.SPORT_AT              # the inner UDP ports: a new flow when they change


def rows():
    """(name, config or None, fixture, vary offset, verdict)."""
    bounce = F.BY_NAME["bouncer"]
    remote = T.client_frame(T.sport_to(REMOTE, "10.0.0.5"))
    local = T.client_frame(T.sport_to(LOCAL, "10.0.0.7"))
    est = bounce._replace(name="established", packet=F.enc(remote),
                          output=T.to_backend_host(remote, "10.0.0.5", "h1"), verdict=F.XDP_TX)
    est_local = bounce._replace(name="established_local", packet=F.enc(local),
                                output=F.decapped(local, F.ep_mac(100, 7)), verdict=F.XDP_REDIRECT)
    return [
        ("bouncer", None, bounce, 0, F.XDP_TX),
        ("established", REMOTE, est, 0, F.XDP_TX),
        ("new", REMOTE, est._replace(name="new", output=None), PORTS_AT, F.XDP_TX),
        ("established_local", LOCAL, est_local, 0, F.XDP_REDIRECT),
        ("new_local", LOCAL, est_local._replace(name="new_local", output=None), PORTS_AT, F.XDP_REDIRECT),
    ]


def measure(rounds, repeat):
    h, w, obj, prog = datapath.function_harness("scaled", "scaled_on_xdp_scaled_ep")
    lb = fnconfig.configurator("scaled")
    h.set_stage(STAGE, prog)
    try:
        h.load_world(F.WORLD_B)
        floor_fx = F.BY_NAME["bouncer"]._replace(name="floor", verdict=F.XDP_PASS, program="pass")
        floor_fx = floor_fx._replace(output=floor_fx.packet)
        floor, wrapped_floor, varied_floor = [], [], []
        times = {}
        table = rows()
        for dummy in range(rounds):
            floor.append(h.programs["pass"].test_run(floor_fx.packet, repeat=repeat).duration_ns)
            wrapped_floor.append(w.run("pass", floor_fx, repeat).duration_ns)
            varied_floor.append(w.run("pass", floor_fx, repeat, vary=PORTS_AT).duration_ns)
            for name, cfg, f, vary, verdict in table:
                if cfg is not None:
                    lb.converge(h.pin_dir, cfg, VNIS)
                if vary:
                    T.forget_flows(h)
                r = w.run(f.program, f, repeat, vary=vary)
                if r.retval != verdict or (f.output is not None and r.data != f.output):
                    raise SystemExit("%s: wrong verdict %s or output during the benchmark" % (
                        name, F.VERDICTS.get(r.retval)))
                times.setdefault(name, []).append(r.duration_ns)
        floor_ns = min(floor)
        wrapper_ns = min(wrapped_floor) - floor_ns
        varied_ns = min(varied_floor) - floor_ns
        out = {"floor_ns": floor_ns, "wrapper_ns": wrapper_ns, "varied_wrapper_ns": varied_ns, "rounds": rounds,
               "repeat": repeat, "ring_size": {"remote": maglev.endpoint_ring_size([1, 1]),
                                               "local": maglev.endpoint_ring_size([1])}, "rows": {}}
        base = None
        for name, dummy, dummy2, vary, verdict in table:
            sub = varied_ns if vary else wrapper_ns
            ns = min(times[name]) - sub
            base = ns if base is None else base
            out["rows"][name] = {"ns": ns, "above_bouncer_ns": ns - base, "ratio": round(ns / floor_ns, 2),
                                 "median_ns": statistics.median(times[name]) - sub, "verdict": F.VERDICTS[verdict]}
        return out
    finally:
        h.set_stage(STAGE, None)
        lb.converge(h.pin_dir, {"endpoints": []}, VNIS)
        for opened in (obj, w, h):
            opened.close()


def table(res):
    row = "%-18s %8s %10s %8s %8s  %s"
    head = [("path", "ns/pkt", "+ bouncer", "x floor", "median", "verdict"),
            ("floor", "%.1f" % res["floor_ns"], "", "1.00", "", "XDP_PASS")]
    lines = [row % cells for cells in head + [
        (name, "%.1f" % p["ns"], "%+.1f" % p["above_bouncer_ns"], "%.2f" % p["ratio"], "%.1f" % p["median_ns"],
         p["verdict"]) for name, p in res["rows"].items()]]
    lines.append("(best of %d rounds of %d repetitions; restore wrapper %.1f ns, with the flow counter %.1f ns, "
                 "subtracted; rings of %d and %d slots)" % (res["rounds"], res["repeat"], res["wrapper_ns"],
                                                            res["varied_wrapper_ns"], res["ring_size"]["remote"],
                                                            res["ring_size"]["local"]))
    return "\n".join(lines)


if __name__ == "__main__":
    datapath.cli(__doc__, measure, table)
