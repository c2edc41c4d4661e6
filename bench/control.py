#!/usr/bin/env python
"""Control-plane benchmark: the lab deployed from scratch and re-run, and
100,000 endpoint entries applied to one host's maps and diffed again.

    converge_s        mizar.transit.site on freshly created lab hosts
    noop_s            the same playbook again (it changes nothing)
    apply_100k_s      tables.converge() of 100,000 endpoints into empty maps
    noop_diff_100k_s  the same desired state again, in check mode (a no-op diff)

The lab is created before and removed after (not timed). Every figure is
the median of --rounds runs; the 100k state is checked to read back whole.

    bench/control.py            # table
    bench/control.py --json     # {"converge_s": C, "noop_s": N, "apply_100k_s": A, "noop_diff_100k_s": D}
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".build"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "datapath"))

from harness import Harness  # noqa: E402
import runner  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import tables  # noqa: E402

INVENTORY = os.path.join(ROOT, "inventories", "lab")
TARGETS = {"converge_s": 60.0, "noop_s": 20.0, "apply_100k_s": 1.0, "noop_diff_100k_s": 0.5}


def playbook(name, *extra):
    """(seconds, tasks changed on the lab hosts) of one run on the lab."""
    seconds, changed, dummy = runner.playbook(INVENTORY, name, *extra)
    return seconds, sum(c for h, c in changed.items() if h.startswith("mzh"))


def lab_rounds(rounds):
    converge, noop = [], []
    for dummy in range(rounds):
        playbook("lab", "-e", "mizar_lab_state=present")
        try:
            s, changed = playbook("site")
            if not changed:
                raise SystemExit("the first converge changed nothing: the lab was not fresh")
            converge.append(s)
            s, changed = playbook("site")
            if changed:
                raise SystemExit("the re-run changed %d things: not a no-op" % changed)
            noop.append(s)
        finally:
            playbook("teardown")
            playbook("lab", "-e", "mizar_lab_state=absent")
    return statistics.median(converge), statistics.median(noop)


def state_100k():
    hosts = [{"ip": "10.200.%d.%d" % (i // 250, i % 250 + 1), "mac": "02:00:00:00:%02x:%02x" % (i // 256, i % 256)}
             for i in range(1000)]
    eps = [{"vni": 100 + i % 500, "ip": "10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256), "type": "simple",
            "host_ip": hosts[i % 1000]["ip"], "ifindex": 0,
            "mac": "02:ee:%02x:%02x:%02x:%02x" % (i >> 24, (i >> 16) & 255, (i >> 8) & 255, i & 255),
            "bypass_decap": False, "backends": []}
           for i in range(100000)]
    return {"if_cfg": {"ip": "10.201.0.1", "mac": "02:00:00:00:ff:01", "ifindex": 1}, "substrate": hosts,
            "endpoints": eps, "networks": [], "vpcs": [], "agents": []}


def table_rounds(rounds):
    state = state_100k()
    apply_s, noop_s = [], []
    for dummy in range(rounds):
        h = Harness()
        try:
            t0 = time.monotonic()
            p = tables.converge(h.pin_dir, state)
            apply_s.append(time.monotonic() - t0)
            if len(p.diff["endpoints"]["added"]) != 100000:
                raise SystemExit("apply did not add 100,000 endpoints")
            t0 = time.monotonic()
            p = tables.converge(h.pin_dir, state, check_mode=True)
            noop_s.append(time.monotonic() - t0)
            if p.changed or p.writes():
                raise SystemExit("the second diff was not a no-op")
            if len(tables.read_state(h.pin_dir)["endpoints"]) != 100000:
                raise SystemExit("the maps do not hold the 100,000 endpoints")
        finally:
            h.close()
    return statistics.median(apply_s), statistics.median(noop_s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each measurement (median)")
    ap.add_argument("--lab-rounds", type=int, default=1, help="runs of the lab measurements (median)")
    args = ap.parse_args()
    res = {}
    res["apply_100k_s"], res["noop_diff_100k_s"] = (round(x, 3) for x in table_rounds(args.rounds))
    res["converge_s"], res["noop_s"] = (round(x, 1) for x in lab_rounds(args.lab_rounds))
    if args.json:
        print(json.dumps(res))
        return
    print("%-18s %9s %9s %s" % ("measure", "seconds", "target", "met"))
    for k in ("converge_s", "noop_s", "apply_100k_s", "noop_diff_100k_s"):
        print("%-18s %9.3f %9.1f %s" % (k, res[k], TARGETS[k], "yes" if res[k] <= TARGETS[k] else "NO"))


if __name__ == "__main__":
    main()
