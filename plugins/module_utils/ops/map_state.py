# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's rendering applied to its datapath maps.

From one host's rendering (render.py) to the tables' desired state, and
from a plan back to a difference a person reads: names of VPCs, networks,
endpoints and hosts, not hex. The backend contract of ops/runner.py: read()
takes the host's interfaces and a snapshot of its maps, plan() the table
engine's phased writes (bpf/tables.py), one step per batch."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, stages, tables
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import DEFAULT_PIN_DIR
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out

NEEDS = (PYROUTE2, LIBBPF)
MODULE = args.module_args(dict(
    rendered=dict(type="dict", required=True),
    pin_dir=dict(type="path"),
    scope=dict(type="str", choices=list(tables.SCOPES), default="all"),
))
COUNTED = ("substrate", "endpoints", "networks", "vpcs", "agents", "peers")


class ApplyError(Exception):
    """The rendering cannot be applied on this host; nothing was written."""


class MapStateError(BackendError):
    """The maps cannot be brought to the rendering; says which host and why."""


ERRORS = (MapStateError,)


def _host(rendered):
    return rendered.get("host") or "this host"


def _pin_dir(params):
    return params["pin_dir"] or (params["rendered"].get("interface") or {}).get("pin_dir") or DEFAULT_PIN_DIR


def context(params):
    return "%s: the datapath maps under %s" % (_host(params["rendered"]), _pin_dir(params))


class Spec:
    """A host's rendering, where its maps are pinned (pin_dir, else the
    rendering's), and the scope of this step of a fleet-wide change."""

    def __init__(self, rendered, pin_dir=None, scope="all"):
        self.rendered = rendered
        self.host = _host(rendered)
        self.pin_dir = _pin_dir({"pin_dir": pin_dir, "rendered": rendered})
        self.maps_dir = stages.Layout(self.pin_dir).maps
        self.scope = scope
        self.headers = ("%s maps" % self.host, "%s maps" % self.host)

    @classmethod
    def from_params(cls, params):
        return cls(params["rendered"], params["pin_dir"], params["scope"])


def read(spec):
    """The host's interfaces ({name: ifindex}, {name: MTU}) and a snapshot
    of its maps (tables.Snapshot: what every slot holds)."""
    all_links = netlink.links()
    st = {"links": dict((lk["ifname"], lk["index"]) for lk in all_links),
          "mtus": dict((lk["ifname"], lk["mtu"]) for lk in all_links)}
    with tables.Maps(spec.maps_dir) as maps:
        st["snapshot"] = tables.Snapshot(maps)
    return st


def table_plan(spec, st):
    """(the table engine's plan of spec's scope, the desired state).
    Raises ApplyError or TableError, naming the item, when the rendering
    cannot be applied."""
    desired = desired_state(spec.rendered, st["links"].get, spec.host, st["mtus"].get)
    return tables.converge_plan(st["snapshot"], desired, spec.scope), desired


def steps_of(p, maps):
    """One step per batch of the plan's writes, in the phases' order, all
    written through maps (a tables.Maps: each map opened once, at its first
    write, for the whole apply)."""
    return [Step("%s: write %d slot%s of %s" % (phase, len(writes), "" if len(writes) == 1 else "s", map_name),
                 maps.write, map_name, writes) for phase, map_name, writes in p.phases]


def plan(spec, st, maps=None):
    """The steps from the snapshot st to spec's rendering (see steps_of).
    maps: the tables.Maps they write through; by default a new one of
    spec's maps, which opens nothing until a step writes (whoever runs the
    steps closes it afterwards, as ensure() does with its own)."""
    return steps_of(table_plan(spec, st)[0], maps or tables.Maps(spec.maps_dir))


def with_planned(st, planned):
    """st (read()) as it will be once the interfaces planned ({name:
    placeholder index}) exist: those the host has keep their own index."""
    links = dict(st["links"])
    for name, index in (planned or {}).items():
        links.setdefault(name, index)
    return dict(st, links=links)


def ensure(spec, check_mode=False, planned=None):
    """Bring the maps to the rendering. Returns {changed, actions, changes,
    counts, writes, pending, diff: {before, after}}. planned: interfaces
    another step will have made before this one writes ({name: placeholder
    index}; see with_planned), for a check mode that runs before them."""
    try:
        st = with_planned(read(spec), planned)
    except (libbpf.BpfError, netlink.NetlinkError, OSError) as e:
        raise MapStateError("%s: the datapath maps under %s: %s (is the transit program loaded?)" % (
            spec.host, spec.pin_dir, e))
    try:
        p, desired = table_plan(spec, st)
    except (ApplyError, tables.TableError) as e:
        raise MapStateError("%s: %s; nothing was applied" % (spec.host, e))
    with tables.Maps(spec.maps_dir) as maps:
        steps = steps_of(p, maps)
        actions = carry_out(steps, "%s maps" % spec.host, check_mode=check_mode, error=MapStateError)
    by_index = dict((v, k) for k, v in st["links"].items())
    before, after, changes = describe(p, Names(spec.rendered, by_index.get))
    return {"changed": bool(steps), "actions": actions, "changes": changes,
            "counts": dict((name, len(desired[name])) for name in COUNTED), "writes": p.writes(),
            "pending": p.pending, "diff": {"before": before, "after": after}}


def desired_state(rendered, ifindex_of, host="this host", mtu_of=None):
    """The tables' desired state for a host's rendering. ifindex_of(name)
    gives an interface's index or None, mtu_of(name) its MTU or None (the
    substrate NIC's goes into if_cfg: the agent's path MTU; 0, not known, is
    taken as 1500 by the datapath). Every problem is collected and raised
    together."""
    errors = []
    iface = rendered.get("interface") or {}
    maps = rendered.get("maps") or {}
    nic = iface.get("name")
    nic_index = ifindex_of(nic) if nic else None
    if not nic_index:
        errors.append("hostvars[%s].mizar_interface: interface %r does not exist on the host" % (host, nic))
    for field in ("ip", "mac"):
        if not iface.get(field):
            errors.append("hostvars[%s].mizar_underlay_%s: unknown; set it, or gather facts before rendering"
                          % (host, field))

    def local(entries, what):
        out = []
        for e in entries:
            e = dict(e)
            if e.get("iface"):
                idx = ifindex_of(e["iface"])
                if not idx:
                    errors.append("%s %s: interface %r does not exist on %s; create the endpoint first "
                                  "(mizar.transit.endpoint)" % (what, e.get("name"), e["iface"], host))
                e["ifindex"] = idx or 0
            else:
                e["ifindex"] = 0
            out.append(e)
        return out

    state = {
        "if_cfg": {"ip": iface.get("ip"), "mac": iface.get("mac"), "ifindex": nic_index or 0,
                   "mtu": (mtu_of(nic) if mtu_of and nic_index else None) or 0},
        "substrate": [dict(s) for s in maps.get("substrate") or []],
        "endpoints": local(maps.get("endpoints") or [], "endpoint"),
        "networks": [dict(n) for n in maps.get("networks") or []],
        "vpcs": [dict(v) for v in maps.get("vpcs") or []],
        "agents": local(maps.get("agents") or [], "agent of endpoint"),
        "sources": [{"ip": s["ip"], "vni": s.get("vni") or 0} for s in maps.get("sources") or []],
        "peers": [dict(p) for p in maps.get("peers") or []],
    }
    for s in maps.get("sources") or []:
        if not s.get("ip"):
            errors.append("trusted source %s: IP unknown; gather facts of that host before rendering" % s.get("name"))
    for s in state["substrate"]:
        if not s.get("mac"):
            errors.append("substrate entry %s (%s): MAC unknown; gather facts of that host before rendering"
                          % (s.get("name"), s.get("ip")))
    if errors:
        raise ApplyError("; ".join(errors))
    return state


class Names:
    """Who is who, from a rendering: for naming entries in a difference."""

    def __init__(self, rendered, iface_of=None):
        maps = rendered.get("maps") or {}
        self.hosts = dict((s["ip"], s.get("name") or s["ip"]) for s in maps.get("substrate") or [])
        me = rendered.get("interface") or {}
        if me.get("ip"):
            self.hosts.setdefault(me["ip"], rendered.get("host") or "this host")
        self.by_key = {}
        for s in maps.get("sources") or []:
            self.hosts.setdefault(s.get("ip"), s.get("name") or s.get("ip"))
        self.vpcs = {}  # VNI -> VPC name
        for v in maps.get("vpcs") or []:
            self.vpcs[v.get("vni")] = v.get("name")
        for p in maps.get("peers") or []:
            self.vpcs.setdefault(p.get("peer_vni"), p.get("peer"))
        for name in ("endpoints", "networks", "vpcs", "agents", "peers"):
            codec = abi.TABLES[name]
            for e in maps.get(name) or []:
                if name == "agents":
                    self.by_key[(name, e.get("iface"))] = e.get("name")
                else:
                    self.by_key[(name, codec.key(e))] = e.get("name")
        self.iface_of = iface_of or (lambda idx: None)

    def host(self, ip):
        if not ip:
            return "-"
        name = self.hosts.get(ip)
        return "%s (%s)" % (name, ip) if name and name != ip else ip

    def entry(self, name, e):
        """One line for an entry of map name."""
        if name == "substrate":
            return "%s mac %s" % (self.host(e["ip"]), e["mac"])
        if name == "if_cfg":
            return "%s mac %s ifindex %s mtu %s" % (e["ip"], e["mac"], e["ifindex"], e.get("mtu") or "unknown")
        if name == "sources":
            return "%s %s" % (self.host(e["ip"]), "vni %d" % e["vni"] if e["vni"] else "any VNI")
        if name == "agents":
            iface = self.iface_of(e["ifindex"]) or "ifindex %d" % e["ifindex"]
            label = self.by_key.get((name, iface)) or iface
            return "%s on %s: vni %d %s mac %s -> bouncers %s" % (
                label, iface, e["vni"], e["ip"], e["mac"], ", ".join(self.host(b) for b in e["bouncers"]))
        if name == "members":
            label = self.by_key.get(("endpoints", (e["vni"], e["vip"]))) or "(not in the inventory)"
            return "%s: vni %d %s backend %s" % (label, e["vni"], e["vip"], e["ip"])
        key = abi.TABLES[name].key(e)
        label = self.by_key.get((name, key)) or "(not in the inventory)"
        if name == "endpoints":
            where = ("local on %s" % (self.iface_of(e["ifindex"]) or "ifindex %d" % e["ifindex"])
                     if e["ifindex"] else "on %s" % self.host(e["host_ip"]))
            extra = " bypass_decap" if e.get("bypass_decap") else ""
            kind = "%s %s" % (e["type"], where) if e["type"] == "simple" else e["type"]
            return "%s: vni %d %s %s mac %s%s" % (label, e["vni"], e["ip"], kind, e["mac"], extra)
        if name == "peers":
            peer = self.vpcs.get(e["peer_vni"])
            return "%s: vni %d %s -> vni %d%s, dividers %s (sources %s)" % (
                label, e["vni"], e["cidr"], e["peer_vni"], " (%s)" % peer if peer else "",
                ", ".join(self.host(d) for d in e["dividers"]), e["src_cidr"])
        if name == "networks":
            if e["local_bouncer"]:
                return "%s: vni %d %s (this host bounces for it)" % (label, e["vni"], e["cidr"])
            hops = ", ".join(self.host(b) for b in e["bouncers"])
            return "%s: vni %d %s -> bouncers %s" % (label, e["vni"], e["cidr"], hops)
        return "%s: vni %d -> dividers %s%s" % (label, e["vni"], ", ".join(self.host(d) for d in e["dividers"]),
                                                " (this host divides it)" if e["local_divider"] else "")


def describe(plan, names):
    """(before, after, changes): texts for Ansible's --diff, listing per map
    only the entries that change, and a structured list of the changes."""
    before, after, changes = [], [], []
    for name in ("if_cfg", "substrate", "sources", "vpcs", "peers", "networks", "endpoints", "members", "agents"):
        d = plan.diff[name]
        repaired = d.get("repaired") or []
        if not (d["added"] or d["changed"] or d["removed"] or repaired):
            continue
        before.append("%s:" % name)
        after.append("%s:" % name)
        for r in repaired:  # left behind by an interrupted run: goes away
            what = "%s%s" % (r["what"], " (slot %d)" % r["slot"] if r.get("slot") is not None else "")
            text = names.entry(name, r["entry"]) if r.get("entry") else (r.get("detail") or "")
            before.append("  repair %s: %s" % (what, text))
            changes.append({"map": name, "op": "repair", "what": what, "entry": text})
        for e in d["removed"]:
            before.append("  " + names.entry(name, e))
            changes.append({"map": name, "op": "remove", "entry": names.entry(name, e)})
        for old, new in d["changed"]:
            before.append("  " + names.entry(name, old))
            after.append("  " + names.entry(name, new))
            changes.append({"map": name, "op": "change", "from": names.entry(name, old),
                            "to": names.entry(name, new)})
        for e in d["added"]:
            after.append("  " + names.entry(name, e))
            changes.append({"map": name, "op": "add", "entry": names.entry(name, e)})
    return "\n".join(before) + ("\n" if before else ""), "\n".join(after) + ("\n" if after else ""), changes
