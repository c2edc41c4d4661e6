"""The mizar.transit datapath end to end, on this machine (run as root,
through scripts/demo-datapath, which bootstraps first).

Builds three hosts as network namespaces on a bridge, two VPCs that both use
10.0.0.0/24, endpoints in their own namespaces, the XDP datapath in native
mode on every veth (one pin directory per host), programs the maps per the
Mizar model, sends real pings, prints what reached what and the datapath's
counters, and tears it all down. Leftovers of an aborted run are removed
first, so it can always be run again.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build"))  # ansible_collections.mizar.transit
sys.path.insert(0, os.path.join(ROOT, "tests"))  # kernel.topology: the namespace lab

from ansible_collections.mizar.transit.plugins.module_utils import abi  # noqa: E402
from kernel.topology import Lab, cleanup  # noqa: E402

PREFIX = "mzdemo"
OBJ_DIR = os.path.join(ROOT, ".build", "bpf")
A, B = 1000, 2000
SHOWN = ("bounce", "arp_reply", "decap", "agent_encap", "agent_local", "tx", "redirect", "pass", "drop")


def build_lab(bouncer):
    lab = Lab(PREFIX, OBJ_DIR)
    lab.vpc(A, bouncers=[bouncer])
    lab.vpc(B, bouncers=[bouncer])
    lab.endpoint("ep1", A, "10.0.0.2", "h1")
    lab.endpoint("ep2", A, "10.0.0.3", "h2")
    lab.endpoint("ep5", A, "10.0.0.4", "h2")
    lab.endpoint("ep3", B, "10.0.0.2", "h1")
    lab.endpoint("ep4", B, "10.0.0.3", "h2")
    return lab


def vpc_name(vni):
    return {A: "A", B: "B"}.get(vni, str(vni))


def describe(lab, bouncer):
    print("Topology (native XDP; transit on each host's eth0, agent on each endpoint's veth)")
    for h, spec in lab.hosts.items():
        eps = ", ".join("%s %s/%s" % (e.name, vpc_name(e.vpc.vni), e.ip) for e in lab.local_endpoints(h))
        role = "  bouncer of A and B" if h == bouncer else ""
        print("  %-3s %-15s %s%s" % (h, spec["ip"], eps or "-", role))
    print("  VPC A = VNI %d, VPC B = VNI %d, both 10.0.0.0/24, gateway 10.0.0.1" % (A, B))
    print()


def check(lab):
    """Run every probe; returns the number of failed expectations."""
    probes = [
        # (from, to ip, expect reach, expected endpoint)
        ("ep1", "10.0.0.3", True, "ep2"),
        ("ep2", "10.0.0.2", True, "ep1"),
        ("ep1", "10.0.0.4", True, "ep5"),
        ("ep3", "10.0.0.3", True, "ep4"),
        ("ep4", "10.0.0.2", True, "ep3"),
        ("ep3", "10.0.0.4", False, None),
    ]
    failed = 0
    print("Reachability (ping from inside the endpoint namespaces)")
    print("  %-22s %-26s %-9s %-8s %s" % ("from", "to", "expect", "got", ""))
    for src, ip, reach, dst in probes:
        e = lab.endpoints[src]
        count = 3 if reach else 1
        sent, received, _out = lab.ping(src, ip, count=count, timeout=2 if reach else 1)
        ok = (received == sent) if reach else (received == 0)
        note = ""
        if reach and dst:
            mac = lab.neighbour_mac(src, ip)
            if mac != lab.endpoints[dst].mac:
                ok = False
                note = "ARP gave %s, %s has %s" % (mac, dst, lab.endpoints[dst].mac)
            else:
                note = "ARP -> %s's MAC" % dst
        elif not reach:
            note = "exists only in VPC A"
        target = "%s %s" % (ip, "(%s, VPC %s)" % (dst, vpc_name(lab.endpoints[dst].vpc.vni)) if dst else "")
        print("  %-22s %-26s %-9s %-8s %s %s" % (
            "%s (VPC %s, %s)" % (src, vpc_name(e.vpc.vni), e.ip), target.strip(),
            "reach" if reach else "isolated", "%d/%d" % (received, sent), "ok  " if ok else "FAIL", note))
        failed += 0 if ok else 1
    print()
    return failed


def show_counters(lab):
    print("Datapath counters (per host, summed over CPUs)")
    print("  %-4s" % "host" + "".join("%12s" % c for c in SHOWN) + "  drop reasons")
    for h in lab.hosts:
        c = lab.counters(h)
        reasons = ", ".join("%s=%d" % (k, v) for k, v in sorted(c.items()) if k in abi.DROP_REASONS and v)
        print("  %-4s" % h + "".join("%12d" % c.get(k, 0) for k in SHOWN) + "  " + (reasons or "-"))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--colocated", action="store_true",
                    help="make h1 (an endpoint host) the bouncer: its agent does the bouncer's work")
    ap.add_argument("--keep", action="store_true", help="leave the lab up (namespaces %s-*)" % PREFIX)
    ap.add_argument("--cleanup", action="store_true", help="only remove what a previous run left")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo-datapath: run as root (XDP, BPF pins and namespaces need it)")

    stale = cleanup(PREFIX, OBJ_DIR)
    if stale:
        sys.exit("demo-datapath: could not remove a previous run's leftovers:\n  " + "\n  ".join(stale))
    if args.cleanup:
        print("demo-datapath: nothing of a previous run is left")
        return 0

    bouncer = "h1" if args.colocated else "h3"
    lab = build_lab(bouncer)
    failed = 1
    t0 = time.monotonic()
    try:
        lab.build()
        print("mizar.transit datapath demo: built in %.1fs\n" % (time.monotonic() - t0))
        describe(lab, bouncer)
        failed = check(lab)
        show_counters(lab)
    finally:
        if args.keep:
            print("Left up: ip netns list | grep %s-; pins under /sys/fs/bpf/%s. "
                  "Remove with scripts/demo-datapath --cleanup" % (PREFIX, PREFIX))
        else:
            errors = lab.destroy()
            if errors:
                print("teardown problems:\n  " + "\n  ".join(errors))
                failed += 1
            else:
                print("Torn down: no namespaces, links or pins left.")
    verdict = "ALL EXPECTATIONS MET" if not failed else "%d EXPECTATION(S) FAILED" % failed
    print("%s (%.1fs)" % (verdict, time.monotonic() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
