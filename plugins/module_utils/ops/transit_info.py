# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's datapath runs, holds and counted, read from its pins with
the small readers (bpf/pinned.py, the tables, the stage table): nothing is
loaded, so this module never needs the objects nor the Loader.

served_endpoints() is also what the endpoint module's `exclusive` removes
from: the interfaces the agent program serves, with the namespace of each
endpoint the collection made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf, pinned, stages, tables
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.model.functions import is_counter_name
from ansible_collections.mizar.transit.plugins.module_utils.ops import args, outcome
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2

NEEDS = (PYROUTE2, LIBBPF)
MODULE = args.module_args(dict(pin_dir=args.pin_dir(), function_counters=dict(type="dict", default={})))


class InfoError(BackendError):
    """The datapath cannot be read; says where."""


ERRORS = (InfoError,)


def check_function_counters(declared):
    """declared ({function: {map, counters: [names]}}, the module's
    function_counters) checked; InfoError names the function and field."""
    out = {}
    for name, decl in sorted((declared or {}).items()):
        here = "function_counters.%s" % name
        if not isinstance(decl, dict) or set(decl) != {"map", "counters"}:
            raise InfoError("%s: give map (the counters map's pin name) and counters (the names of its slots), "
                            "not %r" % (here, decl))
        if not is_counter_name(decl["map"]):
            raise InfoError("%s.map: %r is not a map's pin name (lower-case letters, digits and _)" % (here, decl["map"]))
        names = decl["counters"]
        if not isinstance(names, list) or not names or not all(is_counter_name(c) for c in names) or \
                len(set(names)) != len(names):
            raise InfoError("%s.counters: a list of distinct names (lower-case letters, digits and _), one per slot, "
                            "not %r" % (here, names))
        out[name] = {"map": decl["map"], "counters": list(names)}
    return out


class Spec:
    """Which datapath to read, and the counters maps functions declare
    ({function: {map, counters}}: the action plugin gives the shipped
    functions' from their schemas)."""

    headers = None

    def __init__(self, pin_dir, function_counters=None):
        self.pin_dir = pin_dir
        self.layout = stages.Layout(pin_dir)
        self.function_counters = check_function_counters(function_counters)

    @classmethod
    def from_params(cls, params):
        return cls(params["pin_dir"], params.get("function_counters"))


def context(params):
    return "reading the datapath at %s" % params["pin_dir"]


def _endpoint_netns(iface_index, host_peer, pass_atts, inner_links):
    """The namespace whose eth0 is the veth peer of the host interface of
    index iface_index (whose own peer index is host_peer), among the
    namespaces where this datapath attached the pass program. inner_links:
    {position in pass_atts: its interface, None when gone}, filled as they
    are read, so that each is read once for all the host's endpoints."""
    for i, a in enumerate(pass_atts):
        if i not in inner_links:
            try:
                inner_links[i] = netlink.link(a["iface"], a["netns"])
            except netlink.NetlinkError:
                inner_links[i] = None  # namespace gone
        inner = inner_links[i]
        if inner is not None and inner["peer_index"] == iface_index and inner["index"] == host_peer:
            return a["netns"]
    return None


def served_endpoints(layout, atts, agents=None):
    """One item per agent attachment in the host's namespace (atts:
    pinned.attachments()): iface, ifindex (0: the interface is gone),
    netns of an endpoint the collection made (the namespace whose eth0 is
    the veth peer of iface, where the pass program runs) or None for an
    adopted interface, mode, prog_id, and vni, ip, mac from agents ({ifindex:
    entry} of the agents table; None: read it here)."""
    if agents is None:
        agents = agents_by_ifindex(layout)
    pass_atts = [a for a in atts if a["role"] == "pass" and a["netns"] is not None and a["ifindex"]]
    inner_links = {}
    out = []
    for a in atts:
        if a["role"] != "agent" or a["netns"] is not None:
            continue
        ep = {"iface": a["iface"], "ifindex": a["ifindex"], "netns": None, "mode": a["mode"],
              "prog_id": a["prog_id"], "vni": None, "ip": None, "mac": None}
        if a["ifindex"]:
            host = netlink.link(a["ifindex"])
            if host is not None and host["kind"] == "veth":
                ep["netns"] = _endpoint_netns(host["index"], host["peer_index"], pass_atts, inner_links)
            entry = agents.get(a["ifindex"])
            if entry:
                ep.update(vni=entry.get("vni"), ip=entry.get("ip"), mac=entry.get("mac"))
        out.append(ep)
    return out


def agents_by_ifindex(layout):
    """{ifindex: entry} of the agents table; {} when it cannot be read (an
    unreadable table must not hide the attachments)."""
    try:
        return dict((e["ifindex"], e) for e in (tables.read_state(layout.maps).get("agents") or {}).values())
    except Exception:  # a missing or foreign map: report what can be read
        return {}


def read(spec):
    """pinned.status() of the pin directory, plus `transit` (the transit
    program's attachment), `endpoints` (served_endpoints()) and `functions`
    (the counters of the installed functions that declare some:
    pinned.function_counters())."""
    st = pinned.status(spec.layout)
    if not st.get("loaded"):
        st.update(programs={}, attachments=[], maps={}, counters={}, drops={}, verdicts={}, paths={},
                  drop_reasons={}, functions={}, stages={}, transit=None, endpoints=[])
        return st
    st["functions"] = pinned.function_counters(spec.layout, spec.function_counters, st["stages"])
    atts = st["attachments"]
    transit = [a for a in atts if a["role"] == "transit" and a["ifindex"]]
    st["transit"] = dict((k, transit[0][k]) for k in ("iface", "ifindex", "prog_id", "tag", "mode", "link_id")) \
        if transit else None
    st["endpoints"] = served_endpoints(spec.layout, atts)
    return st


def plan(spec, state):
    """Reading changes nothing."""
    return []


def ensure(spec, check_mode=False):
    """The module's result: read(), unchanged."""
    try:
        state = read(spec)
    except (libbpf.BpfError, netlink.NetlinkError, stages.StageError, pinned.CountersError, OSError) as e:
        raise InfoError("reading the datapath at %s: %s" % (spec.pin_dir, e))
    return outcome.unchanged(state, "datapath at %s: %s\n" % (spec.pin_dir, "loaded" if state["loaded"] else "not loaded"))
