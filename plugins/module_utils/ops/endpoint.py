# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A transit host's endpoints: each one's namespace and veth, and the XDP
programs the datapath runs on it.

A netns endpoint is made here: the namespace `netns` holds the inner end of
a veth, `eth0` (IPv6 off, the endpoint's MAC, address, MTU, transmit
checksum offload off, up, default route via the gateway, the pass program
attached), and lo up; the host end `iface` is up with the same MTU and runs
the agent program. Transmit checksum offload must be off on eth0: the agent
encapsulates (or redirects) the frames on the host side and never completes
a partial checksum, so the receiver would drop them. The pass program must
be on eth0: the transit program redirects decapsulated frames into the
veth, and the kernel drops frames redirected into a veth whose far end runs
no XDP program.

An adopted endpoint is an existing interface `iface` of the host: only the
agent program is attached to it; the interface is left as it is.

The module takes one endpoint (name, iface, ...) or a host's whole list
(endpoints: the rendering's local_endpoints), and with `exclusive` also
removes the endpoints the datapath serves that the list leaves out. The
backend contract of ops/runner.py: read() the state of every endpoint,
plan() the steps of all of them (every refusal comes before anything is
done), carry them out unless in check mode; the plan is empty exactly when
nothing is to change. Both XDP programs are the datapath's pinned ones
(load it first with the transit module) and are attached through links
pinned in its pin directory, so the transit module's upgrades and teardown
reach them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import loader, libbpf, pinned, stages, xdp
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import XDP_MODES
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out
from ansible_collections.mizar.transit.plugins.module_utils.ops.transit_info import served_endpoints

INNER = "eth0"
# eth0's ARP settings for a backend of scaled endpoints (direct server return)
ARP_SYSCTLS = ("arp_ignore", "arp_announce")
ARP_WANTED = ("1", "2")
# What Geneve encapsulation adds to an endpoint's IPv4 packet: outer IPv4 20,
# UDP 8, Geneve 8, and the endpoint's own Ethernet header 14, which now rides
# inside (bpf/include/mzr_icmp.h checks the same sum).
TUNNEL_OVERHEAD = 50
NIC_MTU_UNKNOWN = 1500  # what the datapath assumes when it does not know the NIC's MTU
DEFAULT_MTU = NIC_MTU_UNKNOWN - TUNNEL_OVERHEAD  # with no substrate interface to derive it from
LB_OPTION = 8  # the scaled function's Geneve option, on the packets to a backend (bpf/functions/scaled.bpf.c)


def max_mtu(nic_mtu, bypass_decap=False, backend=False):
    """The largest MTU an endpoint may have over a substrate NIC of nic_mtu:
    the NIC's MTU less the tunnel overhead, so that every packet it sends
    fits once encapsulated; a bypass-decap endpoint receives the whole
    tunnel frame, so its interface takes what the NIC takes. A backend of a
    scaled endpoint gets its packets with the scaled function's Geneve
    option besides: its MTU, and so the TCP MSS it offers its clients,
    leaves room for it."""
    if bypass_decap:
        return nic_mtu
    return nic_mtu - TUNNEL_OVERHEAD - (LB_OPTION if backend else 0)


# One endpoint's options: the module's own in the single form, and each
# item's of `endpoints` (the rendering's local_endpoints, whose vni comes along).
ENDPOINT_OPTIONS = dict(
    name=dict(type="str"),
    iface=dict(type="str"),
    netns=dict(type="str"),
    ip=dict(type="str"),
    prefixlen=dict(type="int"),
    mac=dict(type="str"),
    gateway=dict(type="str"),
    mtu=dict(type="int"),
    bypass_decap=dict(type="bool", default=False),
    vips=dict(type="list", elements="str"),
)
NEEDS = (PYROUTE2, LIBBPF)
MODULE = args.module_args(
    dict(ENDPOINT_OPTIONS,
         state=args.state(),
         endpoints=dict(type="list", elements="dict", options=dict(
             ENDPOINT_OPTIONS, name=dict(type="str", required=True), iface=dict(type="str", required=True),
             state=dict(type="str", choices=list(args.STATES)), vni=dict(type="int"))),
         exclusive=dict(type="bool", default=False),
         substrate_interface=dict(type="str"),
         mode=args.xdp_mode(),
         pin_dir=args.pin_dir()),
    required_one_of=[("name", "endpoints")],
    mutually_exclusive=[("endpoints", option) for option in sorted(ENDPOINT_OPTIONS)],
    required_together=[("name", "iface")],
    required_if=[("exclusive", True, ("endpoints",))],
)


class EndpointError(BackendError):
    """The endpoint cannot be brought to the wanted state; says why."""


ERRORS = (EndpointError,)


def context(params):
    if params.get("endpoints") is not None:
        return "endpoints of this host"
    return "endpoint %s (%s)" % (params["name"], params["iface"])


class EndpointSpec:
    """What one endpoint should be. Checked on construction: every error
    names the endpoint and the field."""

    def __init__(self, name, iface, pin_dir, state="present", netns=None, ip=None, prefixlen=None, mac=None,
                 gateway=None, mtu=None, mode="native", substrate_interface=None, bypass_decap=False, label=None,
                 vips=None):
        self.name = name
        self.label = label or "endpoint %s" % name
        self.state = state
        self.pin_dir = pin_dir
        self.netns = netns or None
        self.iface = iface
        self.mode = mode
        self.mtu = mtu  # None: derived from the substrate interface (resolve_mtu)
        self.substrate_interface = substrate_interface or None
        self.bypass_decap = bool(bypass_decap)
        self.nic_mtu = None
        self.vips = []  # "a.b.c.d/32" on lo: the scaled endpoints it backs (direct server return)
        problem = addr.ifname_problem(iface)
        if problem:
            self.fail("iface", problem)
        if self.netns is not None:
            problem = addr.netns_problem(self.netns)
            if problem:
                self.fail("netns", problem)
        if mode not in XDP_MODES:
            self.fail("mode", "%r is not an XDP mode; one of %s" % (mode, ", ".join(XDP_MODES)))
        self.ip = self.mac = self.gateway = self.cidr = None
        self.prefixlen = prefixlen
        if state != "present" or self.netns is None:
            return  # an adopted interface keeps its own addresses; absent needs no addresses
        for field, value in (("ip", ip), ("prefixlen", prefixlen), ("mac", mac)):
            if value in (None, ""):
                self.fail(field, "required for an endpoint with a netns (state=present)")
        try:
            ip_int = addr.parse_ipv4(ip)
        except ValueError as e:
            self.fail("ip", str(e))
        if not 1 <= prefixlen <= 31:
            self.fail("prefixlen", "%d is not a usable prefix length for an endpoint (1..31)" % prefixlen)
        try:
            self.mac = addr.parse_mac(mac)
        except ValueError as e:
            self.fail("mac", str(e))
        if gateway:
            try:
                gw = addr.parse_ipv4(gateway)
            except ValueError as e:
                self.fail("gateway", str(e))
            if not addr.in_network(gw, ip_int & addr.mask(prefixlen), prefixlen):
                self.fail("gateway", "%s is not in %s/%d, the endpoint's network" % (gateway, ip, prefixlen))
            if gw == ip_int:
                self.fail("gateway", "%s is the endpoint's own address" % gateway)
            self.gateway = gateway
        if mtu is not None and not 68 <= mtu <= 65535:
            self.fail("mtu", "%d is not an MTU (68..65535)" % mtu)
        if self.substrate_interface is not None:
            problem = addr.ifname_problem(self.substrate_interface)
            if problem:
                self.fail("substrate_interface", problem)
        self.ip = ip
        self.cidr = "%s/%d" % (ip, prefixlen)
        for i, vip in enumerate(vips or []):
            try:
                v = addr.ip_text(addr.parse_ipv4(vip))
            except ValueError as e:
                self.fail("vips[%d]" % i, str(e))
            if v == ip:
                self.fail("vips[%d]" % i, "%s is the endpoint's own address, not a scaled endpoint's" % v)
            if "%s/32" % v in self.vips:
                self.fail("vips[%d]" % i, "%s is listed twice" % v)
            self.vips.append("%s/32" % v)
        self.vips.sort(key=lambda c: addr.parse_ipv4(c[:-3]))

    def fail(self, field, problem):
        raise EndpointError("%s: %s: %s" % (self.label, field, problem))

    def resolve_mtu(self, nic_mtu):
        """Settle the endpoint's MTU given the substrate NIC's (None: no NIC
        named). Without an explicit mtu it is max_mtu(); an explicit one must
        not exceed it, or packets would be lost (errors name the field)."""
        self.nic_mtu = nic_mtu
        if nic_mtu is None:
            if self.mtu is None:
                self.mtu = max_mtu(NIC_MTU_UNKNOWN, self.bypass_decap, bool(self.vips))
            return self.mtu
        limit = max_mtu(nic_mtu, self.bypass_decap, bool(self.vips))
        if self.mtu is None:
            if limit < 68:
                self.fail("substrate_interface", "%s has MTU %d: too small to carry Geneve (an endpoint needs "
                          "at least 68 after %d bytes of tunnel overhead)" % (self.substrate_interface, nic_mtu,
                                                                              TUNNEL_OVERHEAD))
            self.mtu = limit
        elif self.mtu > limit:
            self.fail("mtu", "%d is above %d, the most that fits the substrate NIC %s (MTU %d)%s; lower it, or "
                      "leave mtu out to derive it" % (
                          self.mtu, limit, self.substrate_interface, nic_mtu,
                          ": a bypass_decap endpoint receives whole tunnel frames" if self.bypass_decap else
                          " after %d bytes of Geneve encapsulation%s" % (
                              TUNNEL_OVERHEAD, " and %d of the scaled function's option (a backend)" % LB_OPTION
                              if self.vips else "")))
        return self.mtu


# ---------------------------------------------------------------- the module's arguments


def _endpoint_spec(item, state, label, common):
    return EndpointSpec(item["name"], item["iface"], common["pin_dir"], state=state, netns=item.get("netns"),
                        ip=item.get("ip"), prefixlen=item.get("prefixlen"), mac=item.get("mac"),
                        gateway=item.get("gateway"), mtu=item.get("mtu"), mode=common["mode"],
                        substrate_interface=common["substrate_interface"],
                        bypass_decap=item.get("bypass_decap") or False, label=label, vips=item.get("vips"))


class Spec:
    """The module's arguments: one endpoint (the single form) or a host's
    list of them (endpoints), the options they share, and exclusive: remove
    the endpoints the datapath serves that the list leaves out."""

    def __init__(self, endpoints, pin_dir, mode="native", substrate_interface=None, single=True, exclusive=False):
        self.endpoints = list(endpoints)  # [EndpointSpec]
        self.pin_dir = pin_dir
        self.mode = mode
        self.substrate_interface = substrate_interface or None
        self.single = single
        self.exclusive = bool(exclusive)
        if single:
            self.label = self.endpoints[0].label
            name = self.endpoints[0].name
            self.headers = ("endpoint %s (before)" % name, "endpoint %s (after)" % name)
        else:
            self.label = "endpoints"
            self.headers = ("endpoints (before)", "endpoints (after)")
        seen = {}
        for i, ep in enumerate(self.endpoints):
            for field in ("name", "iface", "netns"):
                value = getattr(ep, field)
                first = seen.setdefault((field, value), i) if value is not None else i
                if first != i:
                    ep.fail(field, "%s is endpoints[%d]'s %s too; every endpoint needs its own" % (value, first, field))

    @classmethod
    def from_params(cls, params):
        common = dict(pin_dir=params["pin_dir"], mode=params["mode"], substrate_interface=params["substrate_interface"])
        if params.get("endpoints") is None:
            return cls([_endpoint_spec(params, params["state"], None, common)], single=True, **common)
        eps = [_endpoint_spec(item, item.get("state") or params["state"],
                              "endpoint %s (endpoints[%d])" % (item["name"], i), common)
               for i, item in enumerate(params["endpoints"])]
        return cls(eps, single=False, exclusive=params["exclusive"], **common)

    def fail(self, field, problem):
        raise EndpointError("%s: %s: %s" % (self.label, field, problem))


def _unlisted_spec(spec, name, iface, netns):
    """What exclusive makes of a served endpoint the list leaves out: its
    removal, as the single form with state=absent would do it."""
    return EndpointSpec(name, iface, spec.pin_dir, state="absent", netns=netns, mode=spec.mode,
                        label="endpoint %s (not in endpoints)" % name)


# ---------------------------------------------------------------- reading


def _pinned_id(layout, role):
    prog = libbpf.pinned_prog(layout.prog(role))
    return prog["prog_id"] if prog else None


def _read_inside(ep, lay, ours, st):
    """read_endpoint()'s readings inside the endpoint's namespace, run in
    it (netns=None: the calling thread's, which has entered it)."""
    links = netlink.links()
    st["others"] = sorted(lk["ifname"] for lk in links if lk["ifname"] not in ("lo", INNER))
    lo = [lk for lk in links if lk["ifname"] == "lo"]
    st["lo_up"] = bool(lo and lo[0]["up"])
    st["lo_vips"] = sorted((a for a in netlink.addrs("lo") if not a.startswith("127.")),
                           key=lambda c: addr.parse_ipv4(c.split("/")[0])) if lo else []
    inner = next((lk for lk in links if lk["ifname"] == INNER), None)
    if inner is not None:
        st["inner"] = {"index": inner["index"], "kind": inner["kind"], "mtu": inner["mtu"], "up": inner["up"],
                       "mac": inner["mac"], "peer_index": inner["peer_index"],
                       "addrs": sorted(netlink.addrs(INNER)),
                       "ipv6_off": netlink.ipv6_disabled(INNER),
                       "tx_csum": netlink.tx_checksum_enabled(INNER),
                       "route": netlink.default_route(),
                       "arp": tuple(netlink.sysctl("net/ipv4/conf/%s/%s" % (INNER, k)) for k in ARP_SYSCTLS)}
        st["pass"] = _xdp(INNER, ep.netns, lay, ours, inside=True)


def _xdp(iface, netns, layout, ours, inside=False):
    """The XDP program on iface: None, or {prog_id, name, mode, ours}.
    inside: the calling thread is in netns already."""
    pin = layout.link(pinned.link_name(iface, netns))
    q = xdp.query(iface, netns=None if inside else netns, link_pin=pin)
    if not q["attached"]:
        return None
    mine = q["prog_id"] in ours or (q["via"] == "link" and os.path.exists(pin) and _pin_runs(pin, q))
    return {"prog_id": q["prog_id"], "name": q["prog_name"], "mode": q["mode"], "ours": mine}


def _pin_runs(pin, q):
    fd = libbpf.obj_get(pin)
    try:
        info = libbpf.link_info(fd)
    finally:
        os.close(fd)
    return info["id"] == q["link_id"]


def nic_mtu(spec):
    """The MTU of the substrate interface spec names, or None when it names
    none. The interface must exist."""
    if spec.substrate_interface is None:
        return None
    nic = netlink.link(spec.substrate_interface)
    if nic is None:
        spec.fail("substrate_interface", "%s does not exist on this host (it should be the substrate NIC, "
                  "mizar_interface)" % spec.substrate_interface)
    return nic["mtu"]


def resolve_mtus(spec):
    """Settle the MTU of every endpoint to make (EndpointSpec.resolve_mtu)."""
    made = [ep for ep in spec.endpoints if ep.state == "present" and ep.netns is not None]
    if made:
        nic = nic_mtu(spec)
        for ep in made:
            ep.resolve_mtu(nic)


def read_endpoint(ep, programs, ours):
    """One endpoint's current state, as plain data. programs: the pinned
    agent and pass programs' ids; ours: the ids of every program of the
    datapath."""
    lay = stages.Layout(ep.pin_dir)
    st = {"programs": programs, "netns": None, "host": None, "inner": None, "paired": False, "agent": None,
          "pass": None, "others": [],
          "links": {"agent": os.path.exists(lay.link(pinned.link_name(ep.iface))),
                    "pass": ep.netns is not None and os.path.exists(lay.link(pinned.link_name(INNER, ep.netns)))}}
    host = netlink.link(ep.iface)
    if host is not None:
        st["host"] = {"index": host["index"], "kind": host["kind"], "mtu": host["mtu"], "up": host["up"],
                      "peer_index": host["peer_index"], "mac": host["mac"]}
        st["agent"] = _xdp(ep.iface, None, lay, ours)
    if ep.netns is None:
        return st
    st["netns"] = nsenter.netns_exists(ep.netns)
    if not st["netns"]:
        return st
    # every reading inside the namespace on one thread that enters it once
    nsenter.run_in_netns(ep.netns, _read_inside, ep, lay, ours, st)
    h, i = st["host"], st["inner"]
    st["paired"] = bool(h and i and h["kind"] == "veth" and i["kind"] == "veth" and
                        h["peer_index"] == i["index"] and i["peer_index"] == h["index"])
    return st


def read(spec):
    """The current state, as plain data: {programs, endpoints: [the state
    of each endpoint of spec, in order], unlisted: [{name, iface, netns,
    state}] the endpoints the datapath serves that the list leaves out (the
    list form only)}."""
    lay = stages.Layout(spec.pin_dir)
    programs = {"agent": _pinned_id(lay, "agent"), "pass": _pinned_id(lay, "pass")}
    ours = pinned.prog_ids(lay) if os.path.isdir(spec.pin_dir) else set()
    state = {"programs": programs, "endpoints": [read_endpoint(ep, programs, ours) for ep in spec.endpoints],
             "unlisted": []}
    if not spec.single and os.path.isdir(lay.links):
        listed = set(ep.iface for ep in spec.endpoints)
        for served in served_endpoints(lay, pinned.attachments(lay), agents={}):
            if served["iface"] not in listed:
                gone = _unlisted_spec(spec, served["iface"], served["iface"], served["netns"])
                state["unlisted"].append({"name": gone.name, "iface": gone.iface, "netns": gone.netns,
                                          "state": read_endpoint(gone, programs, ours)})
    return state


# ---------------------------------------------------------------- planning


def _attach(spec, role, iface, netns, switch_mode=True):
    dp = loader.Loader(spec.pin_dir, None)
    return dp.attach(role, iface, spec.mode, netns=netns, switch_mode=switch_mode)


def _detach(spec, iface, netns):
    """Take our program off iface, unpin its link; an interface or namespace
    that is gone only leaves a pin to remove."""
    lay = stages.Layout(spec.pin_dir)
    pin = lay.link(pinned.link_name(iface, netns))
    if netns is not None and not nsenter.netns_exists(netns):
        return xdp.link_detach_pinned(pin)
    dp = loader.Loader(spec.pin_dir, None)
    return dp.detach(iface, netns=netns)["changed"]


def _xdp_plan(spec, st, role, iface, netns, cur, where):
    pinned_id = st["programs"][role]
    name = pinned.ROLES[role][1]
    if cur is None:
        return [Step("attach %s (%s mode) to %s" % (name, spec.mode, where), _attach, spec, role, iface, netns)]
    if not cur["ours"]:
        raise EndpointError("%s: %s runs XDP program %s (id %d), not this datapath's; remove it first, the "
                            "endpoint never replaces a foreign program" % (spec.label, where, cur["name"],
                                                                           cur["prog_id"]))
    if cur["mode"] != spec.mode:
        return [Step("switch %s on %s from %s to %s mode (detach, then attach: %s passes no traffic in between)" % (
            name, where, cur["mode"], spec.mode, where), _attach, spec, role, iface, netns)]
    if cur["prog_id"] != pinned_id:
        return [Step("replace %s (id %s) on %s with the datapath's current one (id %s)" % (
            name, cur["prog_id"], where, pinned_id), _attach, spec, role, iface, netns)]
    return []


def plan_endpoint(spec, st):
    """The steps from one endpoint's state st to its spec (an EndpointSpec).
    Raises EndpointError when the state is not ours to change."""
    if spec.state == "present":
        if st["programs"]["agent"] is None or st["programs"]["pass"] is None:
            raise EndpointError("%s: pin_dir: no datapath is loaded at %s (run mizar.transit.transit first)" % (
                spec.label, spec.pin_dir))
        if spec.netns is None:
            return _plan_adopted(spec, st)
        return _plan_netns(spec, st)
    return _plan_absent(spec, st)


def _plans(spec, state):
    """[(EndpointSpec, its state, its steps)]: the listed endpoints in order,
    then (exclusive) the removal of the unlisted ones."""
    pairs = list(zip(spec.endpoints, state["endpoints"]))
    if spec.exclusive:
        pairs += [(_unlisted_spec(spec, u["name"], u["iface"], u["netns"]), u["state"]) for u in state["unlisted"]]
    return [(ep, st, plan_endpoint(ep, st)) for ep, st in pairs]


def _flatten(spec, plans):
    if spec.single:
        return list(plans[0][2])
    return [Step("%s: %s" % (ep.name, s.text), s.fn, *s.args, **s.kwargs) for ep, _st, steps in plans for s in steps]


def plan(spec, state):
    """The steps of every endpoint, in order; in the list form each step's
    text names its endpoint. Every endpoint is planned before any step is
    taken, so a refusal (EndpointError) leaves every endpoint as it was."""
    return _flatten(spec, _plans(spec, state))


def _plan_adopted(spec, st):
    if st["host"] is None:
        raise EndpointError("%s: iface: %s does not exist on this host; an adopted endpoint's interface must "
                            "exist (or give netns to have one made)" % (spec.label, spec.iface))
    return _xdp_plan(spec, st, "agent", spec.iface, None, st["agent"], spec.iface)


def _plan_netns(spec, st):
    ns, iface = spec.netns, spec.iface
    where_inner = "%s in %s" % (INNER, ns)
    steps = []
    h, i = st["host"], st["inner"]
    if h is not None and h["kind"] != "veth":
        raise EndpointError("%s: iface: %s exists on this host and is not a veth (it is a %s); a netns endpoint's "
                            "host side is made by this module: choose another name, or leave netns out to adopt "
                            "it" % (spec.label, iface, h["kind"] or "plain device"))
    if i is not None and i["kind"] != "veth":
        raise EndpointError("%s: netns: %s in %s is not a veth (%s): the namespace is not this endpoint's" % (
            spec.label, INNER, ns, i["kind"] or "plain device"))
    if not st["netns"]:
        steps.append(Step("create network namespace %s" % ns, netlink.netns_add, ns))
    fresh = not st["paired"]
    if fresh and h is not None:
        # a veth of that name that is not the peer of our eth0: someone else's, never deleted here
        raise EndpointError("%s: iface: %s exists on this host and is not the peer of %s in %s (it is another "
                            "veth); not touching it: choose another name, or delete it if it is a leftover" % (
                                spec.label, iface, INNER, ns))
    if fresh:
        if i is not None:  # a stray eth0 in the endpoint's own namespace
            steps.append(Step("delete the unpaired %s" % where_inner, netlink.link_del, INNER, ns))
        steps.append(Step("create veth %s <-> %s" % (iface, where_inner), netlink.veth_add, iface, INNER,
                          peer_netns=ns))
        h = i = None
    if i is None or not i["ipv6_off"]:
        steps.append(Step("disable IPv6 on %s" % where_inner, netlink.disable_ipv6, INNER, ns))
    if i is None or (i["mac"] or "").lower() != spec.mac:
        steps.append(Step("set the MAC of %s to %s" % (where_inner, spec.mac), netlink.link_set, INNER, netns=ns,
                          mac=spec.mac))
    if i is None or i["mtu"] != spec.mtu:
        steps.append(Step("set the MTU of %s to %d" % (where_inner, spec.mtu), netlink.link_set, INNER, netns=ns,
                          mtu=spec.mtu))
    if i is None or i["tx_csum"]:
        steps.append(Step("turn transmit checksum offload off on %s" % where_inner, netlink.tx_checksum, INNER,
                          False, netns=ns))
    if i is None or not i["up"]:
        steps.append(Step("set %s up" % where_inner, netlink.link_set, INNER, netns=ns, up=True))
    if not st.get("lo_up"):
        steps.append(Step("set lo in %s up" % ns, netlink.link_set, "lo", netns=ns, up=True))
    steps += _plan_vips(spec, st, i)
    have = i["addrs"] if i else []
    if spec.cidr not in have:
        steps.append(Step("add address %s to %s" % (spec.cidr, where_inner), netlink.addr_add, INNER, spec.cidr,
                          netns=ns))
    for a in have:
        if a != spec.cidr:
            steps.append(Step("remove address %s from %s" % (a, where_inner), netlink.addr_del, INNER, a,
                              netns=ns))
    if spec.gateway:
        r = i["route"] if i else None
        if r is None or r["gateway"] != spec.gateway or r["oif"] != i["index"]:
            steps.append(Step("%s the default route in %s via %s dev %s%s" % (
                "replace" if r else "add", ns, spec.gateway, INNER,
                " (was via %s)" % r["gateway"] if r and r["gateway"] else ""),
                netlink.route_add, "default", gateway=spec.gateway, iface=INNER, netns=ns))
    if h is None or h["mtu"] != spec.mtu:
        steps.append(Step("set the MTU of %s to %d" % (iface, spec.mtu), netlink.link_set, iface, mtu=spec.mtu))
    if h is None or not h["up"]:
        steps.append(Step("set %s up" % iface, netlink.link_set, iface, up=True))
    steps += _xdp_plan(spec, st, "pass", INNER, ns, None if fresh else st["pass"], where_inner)
    steps += _xdp_plan(spec, st, "agent", iface, None, None if fresh else st["agent"], iface)
    return steps


def _plan_vips(spec, st, inner):
    """Direct server return: the VIPs of the scaled endpoints this one backs
    on its lo, so it accepts packets to them and replies from them; and eth0
    never answering ARP for an address it does not hold itself (arp_ignore 1)
    nor sending ARP from a VIP (arp_announce 2: the agent drops ARP from
    any address but the endpoint's)."""
    ns, steps = spec.netns, []
    if spec.vips and (inner is None or inner.get("arp") != ARP_WANTED):
        for key, value in zip(ARP_SYSCTLS, ARP_WANTED):
            steps.append(Step("set %s of %s in %s to %s" % (key, INNER, ns, value), netlink.sysctl,
                              "net/ipv4/conf/%s/%s" % (INNER, key), value, netns=ns))
    have = st.get("lo_vips") or []
    for cidr in spec.vips:
        if cidr not in have:
            steps.append(Step("add VIP %s to lo in %s" % (cidr, ns), netlink.addr_add, "lo", cidr, netns=ns))
    for cidr in have:
        if cidr not in spec.vips:
            steps.append(Step("remove VIP %s from lo in %s" % (cidr, ns), netlink.addr_del, "lo", cidr, netns=ns))
    return steps


def _plan_absent(spec, st):
    steps = []
    ns, iface = spec.netns, spec.iface
    if ns is not None:
        where_inner = "%s in %s" % (INNER, ns)
        if (st["pass"] and st["pass"]["ours"]) or st["links"]["pass"]:
            steps.append(Step("detach %s from %s" % (pinned.ROLES["pass"][1], where_inner), _detach, spec,
                              INNER, ns))
    agent = st["agent"]
    if (agent and agent["ours"]) or st["links"]["agent"]:
        steps.append(Step("detach %s from %s" % (pinned.ROLES["agent"][1], iface), _detach, spec, iface, None))
    if ns is None:
        return steps
    h = st["host"]
    if h is not None:
        if not st["paired"]:
            raise EndpointError("%s: iface: %s is not the peer of %s in %s, so it is not this endpoint's; not "
                                "deleting it" % (spec.label, iface, INNER, ns))
        steps.append(Step("delete veth %s (and %s in %s)" % (iface, INNER, ns), netlink.link_del, iface))
    if st["netns"]:
        if st["others"]:
            raise EndpointError("%s: netns: %s holds %s besides lo and %s, which this module did not make; "
                                "not deleting it" % (spec.label, ns, ", ".join(st["others"]), INNER))
        steps.append(Step("delete network namespace %s" % ns, netlink.netns_del, ns))
    return steps


# ---------------------------------------------------------------- reporting


def summary(spec, st):
    """The managed properties of one endpoint's state as text lines, for
    diffs."""
    lines = []
    h, i = st["host"], st["inner"]

    def prog(cur):
        return "%s (%s)" % (cur["name"], cur["mode"]) if cur else "none"

    if spec.netns is not None:
        lines.append("netns %s: %s" % (spec.netns, "present" if st["netns"] else "absent"))
        if i is not None:
            lines.append("%s in %s: mac %s, mtu %d, %s, %s, tx checksum offload %s, IPv6 %s" % (
                INNER, spec.netns, i["mac"], i["mtu"], "up" if i["up"] else "down",
                ", ".join(i["addrs"]) or "no address", "on" if i["tx_csum"] else "off",
                "off" if i["ipv6_off"] else "on"))
            r = i["route"]
            lines.append("default route in %s: %s" % (spec.netns, "via %s" % r["gateway"] if r and r["gateway"]
                                                      else "none"))
            lines.append("lo in %s: %s" % (spec.netns, "up" if st.get("lo_up") else "down"))
            if spec.vips or st.get("lo_vips"):
                arp = tuple(i.get("arp") or ("?", "?"))
                lines.append("VIPs on lo in %s: %s; ARP on %s: arp_ignore %s, arp_announce %s" % (
                    (spec.netns, ", ".join(st.get("lo_vips") or []) or "none", INNER) + arp))
            lines.append("XDP on %s in %s: %s" % (INNER, spec.netns, prog(st["pass"])))
        if h is not None:
            lines.append("%s: %s, mtu %d, %s%s" % (
                spec.iface, h["kind"] or "device", h["mtu"], "up" if h["up"] else "down",
                ", peer of %s in %s" % (INNER, spec.netns) if st["paired"] else ""))
    elif h is not None:
        lines.append("%s: adopted %s" % (spec.iface, h["kind"] or "device"))
    if h is not None:
        lines.append("XDP on %s: %s" % (spec.iface, prog(st["agent"])))
    else:
        lines.append("%s: absent" % spec.iface)
    return "\n".join(lines) + "\n"


def desired(spec, st):
    """summary() of the state spec wants, predicted from st (check mode)."""
    want = {"programs": st["programs"], "others": st["others"], "paired": False, "lo_up": True}
    agent = {"name": pinned.ROLES["agent"][1], "mode": spec.mode}
    if spec.state == "absent":
        want.update(netns=False, host=None if spec.netns else st["host"], inner=None, agent=None, **{"pass": None})
        if spec.netns is None and st["agent"] and not st["agent"]["ours"]:
            want["agent"] = st["agent"]
        return summary(spec, want)
    h = st["host"] or {"kind": "veth"}
    want["host"] = dict(h, mtu=spec.mtu if spec.netns else h.get("mtu"), up=True if spec.netns else h.get("up"))
    want["agent"] = agent
    if spec.netns is None:
        want.update(netns=None, inner=None, **{"pass": None})
        return summary(spec, want)
    want.update(netns=True, paired=True, **{"pass": {"name": pinned.ROLES["pass"][1], "mode": spec.mode}})
    want["host"]["kind"] = "veth"
    want["inner"] = {"mac": spec.mac, "mtu": spec.mtu, "up": True, "addrs": [spec.cidr], "tx_csum": False,
                     "ipv6_off": True, "route": {"gateway": spec.gateway} if spec.gateway else None,
                     "arp": ARP_WANTED if spec.vips else (st["inner"] or {}).get("arp")}
    want["lo_vips"] = list(spec.vips)
    return summary(spec, want)


def _facts(spec, after, hidden):
    """What the module returns about one endpoint after the run (hidden:
    check mode removing a made endpoint, whose interface would be gone)."""
    host = None if hidden else after["host"]
    inner = after["inner"]
    return {"iface": spec.iface, "mtu": spec.mtu, "ifindex": host["index"] if host and "index" in host else None,
            "netns": spec.netns if after.get("netns") else None,
            "mac": inner["mac"] if inner else (host or {}).get("mac")}


def indent(text):
    """text with each line indented two spaces (a section of a diff)."""
    return "".join("  " + line + "\n" for line in text.splitlines())


def ensure(spec, check_mode=False):
    """Bring the endpoints to spec. Returns {changed, actions, diff: {before,
    after}} and, in the single form, the endpoint's iface, mtu, ifindex,
    netns and mac; in the list form, endpoints (each one's name, state,
    changed, actions and the same facts) and unlisted (the served endpoints
    the list leaves out: name, iface, netns)."""
    try:
        resolve_mtus(spec)
        before = read(spec)
    except (netlink.NetlinkError, libbpf.BpfError, xdp.XdpError, OSError) as e:
        raise EndpointError("%s: reading %s state: %s" % (spec.label, "its" if spec.single else "their", e))
    plans = _plans(spec, before)
    steps = _flatten(spec, plans)
    actions = carry_out(steps, spec.label, check_mode=check_mode, error=EndpointError)
    programs = before["programs"]
    ours = None
    results, diff_before, diff_after = [], [], []
    for ep, st, own in plans:
        if own and not check_mode:
            if ours is None:
                ours = pinned.prog_ids(stages.Layout(spec.pin_dir)) if os.path.isdir(spec.pin_dir) else set()
            after = read_endpoint(ep, programs, ours)
            after_text = summary(ep, after)
        else:
            after = st
            after_text = desired(ep, st) if own else summary(ep, st)
        hidden = check_mode and ep.state == "absent" and ep.netns is not None
        results.append(dict(_facts(ep, after, hidden), name=ep.name, state=ep.state, changed=bool(own),
                            actions=[s.text for s in own]))
        diff_before.append((ep, summary(ep, st)))
        diff_after.append((ep, after_text))
    if spec.single:
        res = results[0]
        return dict(changed=bool(steps), actions=actions, diff={"before": diff_before[0][1], "after": diff_after[0][1]},
                    **dict((k, res[k]) for k in ("iface", "mtu", "ifindex", "netns", "mac")))
    return {"changed": bool(steps), "actions": actions, "endpoints": results,
            "unlisted": [dict((k, u[k]) for k in ("name", "iface", "netns")) for u in before["unlisted"]],
            "diff": {"before": "".join("endpoint %s:\n%s" % (ep.name, indent(t)) for ep, t in diff_before),
                     "after": "".join("endpoint %s:\n%s" % (ep.name, indent(t)) for ep, t in diff_after)}}
