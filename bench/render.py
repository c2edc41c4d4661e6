#!/usr/bin/env python
"""Control-plane benchmark: validate and render a large synthetic inventory.

    .venv/bin/python bench/render.py            # a table
    .venv/bin/python bench/render.py --json     # one JSON object

Default size: 1,000 hosts, 2,000 VPCs, 10,000 networks, 100,000 endpoints.
Each VPC has 3 dividers, each network 1 or 2 bouncers; endpoints are spread
over the hosts at random (seeded), 1 in 10 on an adopted interface, the
rest in namespaces; every tenth network has a scaled endpoint (one of its endpoints) with
4 backends. VPCs reuse CIDRs (10.<v mod 200>.0.0/16). The timed part is what
a play does on the controller: render_inventory(), which validates, then
renders every host.
"entries" counts the map entries rendered (endpoints, networks, vpcs,
substrate, agents of every host); peak RSS is the process's, generation
included.
"""
import argparse
import json
import os
import random
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build"))

from ansible_collections.mizar.transit.plugins.module_utils.model import validate  # noqa: E402

from ansible_collections.mizar.transit.plugins.module_utils.model import render

TARGET_SECONDS = 5.0
TARGET_RSS_MB = 2048


def generate(nhosts, nvpcs, nnets, neps, seed=1):
    rng = random.Random(seed)
    hosts = ["node%04d" % i for i in range(nhosts)]
    inv = {"hosts": dict((h, {"mizar_interface": "eth0",
                              "mizar_underlay_ip": "172.%d.%d.%d" % (16 + i // 65536, (i // 256) % 256, i % 256),
                              "mizar_underlay_mac": "02:00:00:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255, i & 255)})
                         for i, h in enumerate(hosts)),
           "mizar_vpcs": [], "mizar_functions": []}
    nets_per_vpc = max(1, nnets // nvpcs)
    eps_per_net = max(1, neps // (nvpcs * nets_per_vpc))
    ep_id = 0
    for v in range(nvpcs):
        vpc = {"name": "vpc%d" % v, "vni": 1000 + v, "cidr": "10.%d.0.0/16" % (v % 200),
               "dividers": rng.sample(hosts, 3), "networks": []}
        for k in range(nets_per_vpc):
            net = {"name": "net%d" % k, "cidr": "10.%d.%d.0/24" % (v % 200, k),
                   "bouncers": rng.sample(hosts, 1 + (k + v) % 2), "endpoints": []}
            scaled = (v * nets_per_vpc + k) % 10 == 0 and eps_per_net >= 5
            for j in range(eps_per_net - 1 if scaled else eps_per_net):
                ep = {"name": "n%de%d" % (k, j), "ip": "10.%d.%d.%d" % (v % 200, k, 10 + j), "host": rng.choice(hosts)}
                if ep_id % 10 == 0:
                    ep["iface"] = "t%d" % ep_id
                else:
                    ep["netns"] = "n%d" % ep_id
                ep_id += 1
                net["endpoints"].append(ep)
            if scaled:
                net["endpoints"].append({"name": "vip", "ip": "10.%d.%d.250" % (v % 200, k), "type": "scaled",
                                         "backends": ["n%de%d" % (k, j) for j in range(4)]})
            vpc["networks"].append(net)
        inv["mizar_vpcs"].append(vpc)
    inv["mizar_functions"].append({"name": "acl", "stage": "on_xdp_redirect", "program": "acl", "config": {
        "rules": [{"vpc": "vpc0", "dst": "10.0.1.0/24", "protocol": "tcp", "port": 22, "action": "drop"}]}})
    return inv


def run(args):
    t0 = time.perf_counter()
    inv = generate(args.hosts, args.vpcs, args.networks, args.endpoints, args.seed)
    t1 = time.perf_counter()
    errors = validate.validate(inv)  # validation alone, for the table
    t2 = time.perf_counter()
    if errors:
        sys.exit("the synthetic inventory is invalid (%d errors), first: %s" % (len(errors), errors[0]))
    renderings = render.render_inventory(inv)  # what a play runs: validation, then every host rendered
    t3 = time.perf_counter()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    nnets = sum(len(v["networks"]) for v in inv["mizar_vpcs"])
    neps = sum(len(n["endpoints"]) for v in inv["mizar_vpcs"] for n in v["networks"])
    return {
        "hosts": len(inv["hosts"]), "vpcs": len(inv["mizar_vpcs"]), "networks": nnets, "endpoints": neps,
        "entries": render.count_entries(renderings), "seconds": round(t3 - t2, 3), "peak_rss_mb": round(rss_mb, 1),
    }, {"generate": t1 - t0, "validate": t2 - t1}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--vpcs", type=int, default=2000)
    p.add_argument("--networks", type=int, default=10000)
    p.add_argument("--endpoints", type=int, default=100000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    result, phases = run(args)
    if args.json:
        print(json.dumps(result))
        return 0
    ok = result["seconds"] <= TARGET_SECONDS and result["peak_rss_mb"] <= TARGET_RSS_MB
    rows = [
        ("hosts", "%d" % result["hosts"]), ("VPCs", "%d" % result["vpcs"]), ("networks", "%d" % result["networks"]),
        ("endpoints", "%d" % result["endpoints"]), ("map entries rendered", "%d" % result["entries"]),
        ("generate inventory (not timed)", "%.2f s" % phases["generate"]),
        ("validate alone (not timed)", "%.2f s" % phases["validate"]),
        ("validate + render all hosts", "%.2f s  (target <= %.0f s)" % (result["seconds"], TARGET_SECONDS)),
        ("peak RSS", "%.0f MB  (target <= %d MB)" % (result["peak_rss_mb"], TARGET_RSS_MB)),
        ("verdict", "meets target" if ok else "MISSES TARGET"),
    ]
    width = max(len(r[0]) for r in rows)
    print("Control plane: render")
    for name, value in rows:
        print("  %-*s  %s" % (width, name, value))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
