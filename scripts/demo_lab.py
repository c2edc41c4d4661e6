"""The README's main command, after scripts/bootstrap: the shipped lab
(inventories/lab) created, deployed with mizar.transit.site, and shown to
carry traffic and keep tenants apart. A second run changes nothing and says
so. `--destroy` tears the overlay and the lab down.

    scripts/demo            # create and deploy the lab, show what it does
    scripts/demo --destroy  # remove everything
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".build")  # the collection, as scripts/bootstrap links it
INVENTORY = os.path.join(ROOT, "inventories", "lab")
CHECKS = os.path.join(ROOT, "molecule", "default", "vars", "checks.yml")
TRAFFIC = [sys.executable, os.path.join(ROOT, "scripts", "traffic.py")]
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def env():
    e = dict(os.environ)
    e["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".build")
    e["ANSIBLE_FORCE_COLOR"] = "0"
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


def inventory_data(path=INVENTORY):
    """The inventory data of the model (model/inventory.py) of an inventory
    directory, as Ansible reads it (ansible-inventory --list)."""
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.mizar.transit.plugins.filter.mizar import inventory_from_hostvars
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", path, "--list"],
                         env=env(), capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return inventory_from_hostvars(data["_meta"]["hostvars"], data.get("mizar_hosts", {}).get("hosts", []))


def tenant_summary(path=INVENTORY):
    """The tenants of an inventory, for people, from the model
    (model/diagram.py's summary): nothing here is written by hand."""
    inventory = inventory_data(path)
    from ansible_collections.mizar.transit.plugins.module_utils.model.diagram import summary
    return "\n".join("  " + line for line in summary(inventory))


def playbook(name, *extra):
    """Run an ansible-playbook of the collection; returns ({host: changed}, seconds, output)."""
    t0 = time.time()
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           "mizar.transit." + name] + list(extra)
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, check=False)
    seconds = time.time() - t0
    recap = dict((m[0], int(m[2])) for m in RECAP.findall(r.stdout))
    failed = [m[0] for m in RECAP.findall(r.stdout) if int(m[3]) or int(m[4])]
    if r.returncode or failed:
        sys.stdout.write(r.stdout[-6000:] + r.stderr[-3000:])
        raise SystemExit("mizar.transit.%s failed (see above)" % name)
    return recap, seconds, r.stdout


def traffic(*args):
    r = subprocess.run(TRAFFIC + list(args), capture_output=True, text=True, check=False)
    return r.returncode, r.stdout.strip()


def show_checks():
    checks = yaml.safe_load(open(CHECKS))["mizar_lab_checks"]
    servers = sorted(set(c["from"] for c in checks))
    for ns in servers:
        rc, out = traffic("serve", ns, ns)
        if rc:
            raise SystemExit("could not start a server in %s: %s" % (ns, out))
    bad = 0
    try:
        print("\nTraffic (every endpoint runs a server that answers with its own name)")
        print("  %-8s %-10s %-5s %-8s %-8s %s" % ("from", "to", "icmp", "tcp", "udp", "path"))
        for c in checks:
            cells = []
            for proto in ("icmp", "tcp", "udp"):
                want = c.get(proto, c["expect"])
                rc, out = traffic("probe", c["from"], c["to"], proto)
                reply = json.loads(out).get("reply") if out else None
                got = "none" if rc else (reply or "reply")
                ok = (got == "none") if want == "none" else (rc == 0 and (proto == "icmp" or reply == want))
                bad += not ok
                shown = got if proto != "icmp" or got == "none" else "pong"
                cells.append(("%s" if ok else "%s!") % shown)
            print("  %-8s %-10s %-5s %-8s %-8s %s" % (c["from"], c["to"], cells[0], cells[1], cells[2], c["what"]))
        bad += show_rates()
        bad += show_vips()
        bad += show_flowlogs()
    finally:
        for ns in servers:
            traffic("stop", ns)
    return bad


def show_rates():
    """The floods of mizar_lab_rates: what a rate limit lets through, next
    to an unlimited endpoint. Returns how many were not as expected (the
    bounds molecule's verify asserts)."""
    rates = yaml.safe_load(open(CHECKS))["mizar_lab_rates"]
    bad = 0
    print("\nRate limits (UDP at a fixed rate; the server answers every datagram it gets)")
    for r in rates:
        dummy, out = traffic("flood", r["from"], r["to"], str(r["pps"]), str(r["seconds"]))
        got = json.loads(out) if out else {"sent": 0, "answered": 0, "seconds": r["seconds"]}
        if "limit" in r:
            allowed = r["limit"] * (got["seconds"] + 0.2)
            ok = 0.75 * allowed <= got["answered"] <= 1.25 * allowed
            verdict = "limit %d pps: about %d" % (r["limit"], allowed)
        else:
            ok = got["answered"] >= 0.95 * got["sent"]
            verdict = "no limit"
        bad += not ok
        print("  %-6s -> %-10s %5d sent, %5d answered in %.1f s (%s)%s  %s"
              % (r["from"], r["to"], got["sent"], got["answered"], got["seconds"], verdict, "" if ok else " !",
                 r["what"]))
    return bad


def show_vips():
    """The connections of mizar_lab_vips: which backend of a scaled endpoint
    answered each, and whether each kept its backend and the VIP answered
    (the checks molecule's verify asserts). Returns how many were not."""
    bad = 0
    print("\nScaled endpoints (several requests on each connection; UDP: a source port each)")
    for v in yaml.safe_load(open(CHECKS))["mizar_lab_vips"]:
        for proto in ("tcp", "udp"):
            dummy, out = traffic("spread", v["from"], v["to"], proto, str(v["connections"]),
                                 "--exchanges", str(v["exchanges"]))
            got = json.loads(out) if out else {"answered": False, "sticky": False, "from_dst": False,
                                               "by_endpoint": {}, "connections": []}
            ok = (got["answered"] and got["sticky"] and got["from_dst"] and len(got["by_endpoint"]) > 1
                  and set(got["by_endpoint"]) <= set(v["backends"]) and len(got["connections"]) == v["connections"])
            bad += not ok
            shares = ", ".join("%s %d" % kv for kv in sorted(got["by_endpoint"].items())) or "nobody"
            print("  %-6s -> %-10s %d %s %s: %s; %s, %s%s" % (
                v["from"], v["to"], v["connections"], proto.upper(), "connections" if proto == "tcp" else "flows",
                shares, "each kept its backend" if got["sticky"] else "SOME MOVED",
                "answered from the VIP (DSR)" if got["from_dst"] else "NOT ALL FROM THE VIP", "" if ok else " !"))
    return bad


def show_flowlogs():
    """The flows of mizar_lab_flowlogs through a user-space function: sent,
    answered, and what its log counted. Returns how many were not exact."""
    bad = 0
    functions = dict((f["name"], f) for f in inventory_data().get("mizar_functions") or [])
    print("\nUser-space functions (one UDP flow through each; its log read back)")
    for c in yaml.safe_load(open(CHECKS))["mizar_lab_flowlogs"]:
        log = (functions[c["function"]].get("config") or {}).get("log") or "/var/log/mizar/%s.jsonl" % c["function"]
        dummy, out = traffic("flowlog", c["from"], c["to"], log, str(c["count"]), "--size", str(c["size"]))
        got = json.loads(out) if out else {"sent": 0, "answered": 0, "logged": 0, "logged_bytes": 0}
        ok = (got["sent"] == got["answered"] == got["logged"] == c["count"]
              and got["logged_bytes"] == c["count"] * (c["size"] + 28)
              and (got.get("vni"), got.get("outer_src")) == (c["vni"], c["outer_src"]))
        bad += not ok
        print("  %-6s -> %-10s %d sent, %d answered; %s logged %d packets, %d bytes (VNI %s, from %s) in %s%s"
              % (c["from"], c["to"], got["sent"], got["answered"], c["function"], got["logged"], got["logged_bytes"],
                 got.get("vni"), got.get("outer_src"), log, "" if ok else " !"))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--destroy", action="store_true", help="tear the overlay and the lab down")
    args = ap.parse_args()
    if args.destroy:
        if any(os.path.exists("/run/netns/" + h) for h in ("mzh1", "mzh2", "mzh3")):
            playbook("teardown")
        playbook("lab", "-e", "mizar_lab_state=absent")
        print("The lab is gone: no namespaces, links, pins or programs of it are left.")
        return 0

    lab, lab_s, dummy = playbook("lab", "-e", "mizar_lab_state=present")
    print("Lab hosts mzh1 mzh2 mzh3 (network namespaces on bridge mzlab0): %s (%.1fs)"
          % ("created" if any(lab.values()) else "already there", lab_s))
    site, site_s, dummy = playbook("site")
    changed = sum(site.get(h, 0) for h in ("mzh1", "mzh2", "mzh3"))
    if changed:
        print("mizar.transit.site: deployed, %d change(s) on %s (%.1fs)"
              % (changed, ", ".join(h for h in sorted(site) if site[h]), site_s))
    else:
        print("mizar.transit.site: no changes, the lab is already as the inventory says (%.1fs)" % site_s)
    print("\nTenants (inventories/lab, docs/lab.md; the picture: docs/lab-topology.svg)")
    print(tenant_summary())
    bad = show_checks()
    print("\n%s  (a cell marked ! is not what the lab must do)" % (
        "ALL PATHS AS EXPECTED: reachability within each VPC and across the peering, isolation elsewhere, "
        "the ACL's drop, the rate limit, the VIP's balancing, the flow log"
        if not bad else "%d PROBE(S) NOT AS EXPECTED" % bad))
    print("Run it again: nothing changes. Remove it all: scripts/demo --destroy")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
