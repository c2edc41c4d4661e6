#!/usr/bin/env python
"""Control-plane benchmark: labs deployed from scratch and re-run, and
100,000 endpoint entries applied to one host's maps and diffed again.

For the shipped lab (inventories/lab, 3 hosts) and generated labs of
--hosts namespace hosts (bench/labgen.py; 10 and 30 by default):

    converge_s        mizar.transit.site on freshly created lab hosts
    noop_s            the same playbook again (it changes nothing)
    noop_per_host_s   noop_s / hosts, to compare how cost grows with hosts
    noop_calls        module calls per host in the no-op run (most of any host),
                      counted by the bench/callback_plugins/mizar_calls callback
    noop_tasks        those calls by task, on the busiest host
    noop_calls_by_host  module calls of each host in the no-op run

and for the table engine:

    apply_100k_s      tables.converge() of 100,000 endpoints into empty maps
    noop_diff_100k_s  the same desired state again, in check mode (a no-op diff)
    apply_scaled_4096_s      one scaled endpoint of 4,096 backends (its members)
                             added to maps holding the 100,000 endpoints
    noop_diff_scaled_4096_s  that state again, in check mode

Labs are created before and removed after (not timed). Every figure is the
median of --rounds (tables) or --lab-rounds (labs) runs; the 100k state is
checked to read back whole.

    bench/control.py                   # table
    bench/control.py --json            # {"labs": {"shipped": {...}, "10": {...}, ...}, "apply_100k_s": ...}
    bench/control.py --hosts ""        # the shipped lab only
    bench/control.py --lab-rounds 0    # the table engine only: no lab
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".build"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "datapath"))

from harness import Harness  # noqa: E402
import labgen  # noqa: E402
import runner  # noqa: E402
from ansible_collections.mizar.transit.plugins.module_utils.bpf import tables  # noqa: E402

INVENTORY = os.path.join(ROOT, "inventories", "lab")
# Targets on the 2-core development machine (issue 9).
TARGETS = {("shipped", "converge_s"): 12.0, ("shipped", "noop_s"): 5.0, ("30", "noop_s"): 30.0,
           "apply_100k_s": 1.0, "noop_diff_100k_s": 0.5, "apply_scaled_4096_s": 1.0, "noop_diff_scaled_4096_s": 0.5}


def playbook(inventory, name, *extra, **kw):
    """(seconds, tasks changed on the lab hosts) of one run on a lab."""
    seconds, changed, dummy = runner.playbook(inventory, name, *extra, **kw)
    return seconds, sum(c for h, c in changed.items() if h.startswith("mzh"))


def calls(path):
    """(module calls of the busiest host, {task: calls} on it, {host: calls})
    from a mizar_calls record."""
    with open(path) as f:
        tasks = json.load(f)["tasks"]
    per_host = Counter()
    for t in tasks:
        if t["host"].startswith("mzh"):
            per_host[t["host"]] += t["calls"]
    if not per_host:
        return 0, {}, {}
    busiest = max(sorted(per_host), key=per_host.get)
    by_task = Counter()
    for t in tasks:
        if t["host"] == busiest and t["calls"]:
            by_task[t["task"]] += t["calls"]
    return per_host[busiest], dict(by_task), dict(per_host)


def lab_rounds(inventory, hosts, rounds):
    """{converge_s, noop_s, noop_per_host_s, noop_calls, noop_tasks} of a lab."""
    converge, noop, record = [], [], os.path.join(tempfile.mkdtemp(prefix="mizar-bench-"), "calls.json")
    for dummy in range(rounds):
        playbook(inventory, "lab", "-e", "mizar_lab_state=present")
        try:
            s, changed = playbook(inventory, "site")
            if not changed:
                raise SystemExit("the first converge changed nothing: the lab was not fresh")
            converge.append(s)
            s, changed = playbook(inventory, "site", calls_out=record)
            if changed:
                raise SystemExit("the re-run changed %d things: not a no-op" % changed)
            noop.append(s)
        finally:
            playbook(inventory, "teardown")
            playbook(inventory, "lab", "-e", "mizar_lab_state=absent")
    n_calls, by_task, by_host = calls(record)
    out = {"hosts": hosts, "converge_s": round(statistics.median(converge), 1),
           "noop_s": round(statistics.median(noop), 1), "noop_calls": n_calls, "noop_tasks": by_task,
           "noop_calls_by_host": by_host}
    out["noop_per_host_s"] = round(out["noop_s"] / hosts, 2)
    return out


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


def with_scaled(state):
    """state and a scaled endpoint of 4,096 backends (its members: 4,096 entries)."""
    vip = {"vni": 100, "ip": "10.250.0.1", "type": "scaled", "mac": "02:ef:00:00:00:01", "bypass_decap": False,
           "backends": ["10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256) for i in range(0, 4096 * 500, 500)]}
    return dict(state, endpoints=state["endpoints"] + [vip])


def table_rounds(rounds):
    """Medians of (apply_100k_s, noop_diff_100k_s, apply_scaled_4096_s, noop_diff_scaled_4096_s)."""
    state = state_100k()
    scaled = with_scaled(state)
    apply_s, noop_s, sc_apply_s, sc_noop_s = [], [], [], []
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
            t0 = time.monotonic()
            p = tables.converge(h.pin_dir, scaled)
            sc_apply_s.append(time.monotonic() - t0)
            if len(p.diff["members"]["added"]) != 4096:
                raise SystemExit("apply did not add 4,096 members")
            t0 = time.monotonic()
            p = tables.converge(h.pin_dir, scaled, check_mode=True)
            sc_noop_s.append(time.monotonic() - t0)
            if p.changed or p.writes():
                raise SystemExit("the scaled endpoint's second diff was not a no-op")
        finally:
            h.close()
    return tuple(statistics.median(x) for x in (apply_s, noop_s, sc_apply_s, sc_noop_s))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each table measurement (median)")
    ap.add_argument("--lab-rounds", type=int, default=1, help="runs of each lab measurement (median); 0: no lab")
    ap.add_argument("--hosts", default="10,30", help="sizes of the generated labs, comma-separated ('' for none)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.hosts.split(",") if x.strip()]
    res = {"labs": {}}
    (res["apply_100k_s"], res["noop_diff_100k_s"], res["apply_scaled_4096_s"],
     res["noop_diff_scaled_4096_s"]) = (round(x, 3) for x in table_rounds(args.rounds))
    if args.lab_rounds < 1:
        sizes = []
    else:
        res["labs"]["shipped"] = lab_rounds(INVENTORY, 3, args.lab_rounds)
    for n in sizes:
        inv = labgen.write(n, tempfile.mkdtemp(prefix="mizar-lab%d-" % n))
        res["labs"][str(n)] = lab_rounds(inv, n, args.lab_rounds)
    if len(sizes) >= 2:
        small, big = res["labs"][str(min(sizes))], res["labs"][str(max(sizes))]
        res["per_host_growth"] = round(big["noop_per_host_s"] / small["noop_per_host_s"], 2)
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return
    if res["labs"]:
        print("%-8s %5s %11s %8s %10s %11s" % ("lab", "hosts", "converge_s", "noop_s", "per_host_s", "calls/host"))
        for name, lab in res["labs"].items():
            print("%-8s %5d %11.1f %8.1f %10.2f %11d" % (name, lab["hosts"], lab["converge_s"], lab["noop_s"],
                                                         lab["noop_per_host_s"], lab["noop_calls"]))
        print()
        by_host = res["labs"]["shipped"]["noop_calls_by_host"]
        print("no-op module calls per host of the shipped lab: %s"
              % ", ".join("%s %d" % (h, by_host[h]) for h in sorted(by_host)))
        print("no-op module calls on the busiest host of the shipped lab:")
        for task, n in sorted(res["labs"]["shipped"]["noop_tasks"].items(), key=lambda kv: -kv[1]):
            print("  %3d  %s" % (n, task))
        print()
    print("%-28s %9s %9s %s" % ("target", "measured", "target", "met"))
    for key, target in TARGETS.items():
        if isinstance(key, tuple):
            lab = res["labs"].get(key[0])
            if lab is None:
                continue
            name, value = "%s lab %s" % key, lab[key[1]]
        else:
            name, value = key, res[key]
        print("%-28s %9.3f %9.1f %s" % (name, value, target, "yes" if value <= target else "NO"))
    if "per_host_growth" in res:
        g = res["per_host_growth"]
        print("%-28s %9.2f %9.1f %s" % ("per-host no-op, big/small", g, 1.0, "yes" if g <= 1.0 else "NO"))


if __name__ == "__main__":
    main()
