# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host rendering: the exact map entries each transit host must hold.

    renderings = render_inventory(inventory, facts=None, offline=False)
    # {host: {"host", "interface", "transit", "maps": {endpoints, networks,
    #          vpcs, substrate, agents, sources, peers}, "local_endpoints",
    #          "functions", "vnis", "userspace"}}

The shape (field names, ordering) is the contract with the datapath codecs
(abi.py), the apply modules and the roles, which take every value they
pass to a module from it; docs/inventory.md describes it. The same
inventory gives the same rendering, whatever the order of hosts, VPCs,
networks or endpoints in it; only the order of bouncers, dividers and
backends in their lists follows the inventory (it is the datapath's order
for picking one).

Host underlay addresses come from the inventory (mizar_underlay_ip/_mac)
or, when absent there, from facts ({host: {"ip": .., "mac": ..}}). When
one is still unknown, offline rendering writes null; otherwise it is an
error naming the host and the field, if any rendered entry needs it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import operator
import os

from collections.abc import Mapping

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev
from ansible_collections.mizar.transit.plugins.module_utils.model import placement
from ansible_collections.mizar.transit.plugins.module_utils.model.capacity import STAGES
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import ErrorList, InvalidInventory
from ansible_collections.mizar.transit.plugins.module_utils.model.gcpause import gc_paused
from ansible_collections.mizar.transit.plugins.module_utils.model.pyyaml import HAS_YAML, yaml
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import check

# where a user-space function logs when its config names no log
USERSPACE_LOG_DIR = "/var/log/mizar"

MAP_NAMES = ("endpoints", "networks", "vpcs", "substrate", "agents", "sources", "peers")
_NO_IP = 1 << 32  # sorts unresolved (offline) substrate entries last


def render_inventory(inventory, facts=None, offline=False, hosts=None, registry=None, base_dir=None):
    """Validate the inventory and render it: {host: rendering}.

    facts: {host: {"ip": .., "mac": ..}} filling addresses the inventory
    leaves out. offline: unknown addresses render as null instead of
    failing. hosts: render only these hosts (default: all of mizar_hosts).
    base_dir: where relative paths of user function sources are rooted
    (default: the current directory). Raises InvalidInventory with every
    error."""
    with gc_paused():  # one pause for validation and rendering (see gcpause.py)
        return _render_inventory(inventory, facts, offline, hosts, registry, base_dir)


def _render_inventory(inventory, facts, offline, hosts, registry, base_dir):
    model, plans = check(inventory, registry)
    errors = ErrorList()
    ips, macs = resolve_addresses(model, facts, errors)
    if hosts is None:
        names = list(model.hosts)
    else:
        names = [str(h) for h in hosts]
        for h in names:
            if h not in model.hosts:
                errors.add("hosts", "cannot render %r: it is not a host of group mizar_hosts" % h)
    if not offline:
        _check_resolved(plans, [h for h in names if h in plans], ips, macs, errors)
    if errors:
        raise InvalidInventory(errors.sorted())
    return render(model, plans, ips, macs, [h for h in names if h in plans], base_dir)


def resolve_addresses(model, facts, errors):
    """{host: ip or None}, {host: mac or None}: the inventory first, then facts."""
    facts = facts or {}
    ips, macs = {}, {}
    if not isinstance(facts, Mapping):
        errors.add("facts", "facts must map host names to {ip, mac}")
        facts = {}
    owners = {}
    for name, host in model.hosts.items():
        ip, mac = host.ip, host.mac
        fact = facts.get(name) or {}
        if not isinstance(fact, Mapping):
            errors.add("facts[%s]" % name, "facts of a host are a mapping {ip, mac}")
            fact = {}
        if ip is None and fact.get("ip") is not None:
            try:
                addr.parse_ipv4(fact["ip"])
                ip = str(fact["ip"])
            except ValueError as e:
                errors.add("facts[%s].ip" % name, "%s: set mizar_underlay_ip for %s instead" % (e, name))
        if mac is None and fact.get("mac") is not None:
            try:
                mac = addr.parse_mac(fact["mac"])
            except ValueError as e:
                errors.add("facts[%s].mac" % name, "%s: set mizar_underlay_mac for %s instead" % (e, name))
        if ip is not None:
            if ip in owners and host.ip is None:
                errors.add("facts[%s].ip" % name, "discovered underlay IP %s is also %s's: set mizar_underlay_ip "
                           "of the hosts to their substrate addresses" % (ip, owners[ip]))
            owners.setdefault(ip, name)
        ips[name] = ip
        macs[name] = mac
    for name, peer in model.peers.items():  # tunnel peers: given, never discovered
        ips[name] = peer.ip
        macs[name] = peer.mac
    return ips, macs


def _check_resolved(plans, names, ips, macs, errors):
    """Every address a rendered entry needs must be known."""
    if all(v is not None for v in ips.values()) and all(v is not None for v in macs.values()):
        return
    need_ip, need_mac = {}, {}
    for name in names:
        plan = plans[name]
        for other in [name] + sorted(plan.substrate):
            need_ip.setdefault(other, set()).add(name)
            need_mac.setdefault(other, set()).add(name)
        for vpc in plan.vpcs:
            for d in vpc.dividers:
                need_ip.setdefault(d, set()).add(name)
    for field, var, need, known in (("IP", "mizar_underlay_ip", need_ip, ips),
                                    ("MAC", "mizar_underlay_mac", need_mac, macs)):
        for host in sorted(need):
            if known.get(host) is None:
                users = sorted(need[host])
                shown = ", ".join(users[:3]) + (" and %d more" % (len(users) - 3) if len(users) > 3 else "")
                errors.add("hostvars[%s].%s" % (host, var), "the underlay %s of %s is unknown and the maps of %s "
                           "need it: set %s, gather facts from %s, or render offline"
                           % (field, host, shown, var, host))


def render(model, plans, ips, macs, names=None, base_dir=None):
    """Renderings of the given hosts (default: all) of a checked model."""
    r = _Renderer(model, ips, macs, base_dir)
    out = {}
    with gc_paused():
        for name in (model.hosts if names is None else names):
            out[name] = r.host(plans[name])
    return out


def _ip_key(ip):
    return addr.parse_ipv4(ip) if ip is not None else _NO_IP


_EP_KEY = operator.attrgetter("key")
_NET_KEY = operator.attrgetter("sort_key")


def _vpc_key(vpc):
    return vpc.vni


def _by_iface(entry):
    return entry["iface"]


def _by_name(entry):
    return entry["name"]


class _Renderer:
    """Shapes placed model objects into entries. Parts shared by many hosts
    (remote endpoint entries, bouncer and divider lists) are built once and
    copied per host, so no two renderings share a mutable object."""

    def __init__(self, model, ips, macs, base_dir):
        self.model = model
        self.ips = ips
        self.macs = macs
        # substrate order: numeric IP; unknown (offline) addresses last, by name
        self.sub_key = dict((h, (_ip_key(ip), h)) for h, ip in ips.items())
        self.base_dir = base_dir
        self.remote = {}    # Endpoint -> remote entry template
        self.scaled = {}    # scaled Endpoint -> its entry in the scaled function's config
        self.vips_of = {}   # backend Endpoint -> the addresses of the scaled endpoints it serves
        for ep in sorted((e for e in model.endpoints() if e.type == "scaled"), key=_EP_KEY):
            for backend in ep.backend_eps:
                self.vips_of.setdefault(backend, []).append(ep.ip)
        self.bouncers = {}  # Network -> [bouncer IPs]
        self.dividers = {}  # Vpc -> [divider IPs]
        # trusted tunnel sources, the same on every host: transit hosts for
        # any VNI (0), tunnel peers for the VPCs behind them
        self.sources = ([(self.sub_key[h], 0, h) for h in model.hosts]
                        + [(self.sub_key[p], vni, p) for p, vni in placement.tunnel_sources(model)])
        self.sources.sort()
        # the user's function sources: the controller builds them all once,
        # and every host gets every object
        self.builds = sorted(set(self.program(fn.program) for fn in model.functions
                                 if fnreg.is_user_source(fn.program)))
        self.vnis = dict((vpc.name, vpc.vni) for vpc in sorted(model.vpcs, key=_by_vpc_name))

    def bouncer_ips(self, net):
        ips = self.bouncers.get(net)
        if ips is None:
            ips = self.bouncers[net] = [self.ips[b] for b in net.bouncers]
        return ips

    def divider_ips(self, vpc):
        ips = self.dividers.get(vpc)
        if ips is None:
            ips = self.dividers[vpc] = [self.ips[d] for d in vpc.dividers]
        return ips

    def template(self, ep):
        tpl = self.remote[ep] = {
            "vni": ep.vni, "ip": ep.ip, "name": ep.fullname, "type": ep.type,
            "host_ip": self.ips[ep.host] if ep.type == "simple" else None, "iface": None, "mac": ep.mac,
            "bypass_decap": ep.bypass_decap, "backends": [b.ip for b in ep.backend_eps],
        }
        return tpl

    def host(self, plan):
        name = plan.name
        host = self.model.hosts[name]
        ips, macs = self.ips, self.macs
        my_ip = ips[name]

        entries = []
        append = entries.append
        templates = self.remote
        for ep in sorted(plan.remote.union(plan.hosted), key=_EP_KEY):
            tpl = templates.get(ep) or self.template(ep)
            entry = tpl.copy()
            backends = tpl["backends"]
            entry["backends"] = list(backends) if backends else []
            if ep.host == name and ep.type == "simple":
                entry["iface"] = ep.host_iface  # hosted here: the hosted entry wins
            append(entry)

        agents, local = [], []
        for ep in plan.hosted:
            net = ep.network
            agents.append({"iface": ep.host_iface, "vni": ep.vni, "ip": ep.ip, "mac": ep.mac, "name": ep.fullname,
                           "bouncers": list(self.bouncer_ips(net))})
            lep = {"name": ep.fullname, "vni": ep.vni, "ip": ep.ip, "prefixlen": net.plen, "mac": ep.mac,
                   "gateway": net.gateway.ip, "netns": ep.netns, "iface": ep.host_iface,
                   "bypass_decap": ep.bypass_decap}
            if ep.mtu is not None:  # otherwise derived on the host from its substrate NIC
                lep["mtu"] = ep.mtu
            if ep in self.vips_of:  # a backend: the VIPs it replies from (direct server return)
                lep["vips"] = list(self.vips_of[ep])
            local.append(lep)
        agents.sort(key=_by_iface)
        local.sort(key=_by_name)

        # A bouncer holds its own networks too, flagged and with no bouncer
        # list (it knows every endpoint of them): an address there that is
        # no endpoint is dropped at once instead of going round between
        # bouncer and divider until its TTL runs out.
        bounced = set(plan.bounced)
        networks = [{"vni": net.vpc.vni, "cidr": net.cidr, "name": net.fullname,
                     "bouncers": [] if net in bounced else list(self.bouncer_ips(net)),
                     "local_bouncer": net in bounced}
                    for net in sorted(bounced.union(plan.networks), key=_NET_KEY)]
        vpcs = [{"vni": vpc.vni, "name": vpc.name, "dividers": list(self.divider_ips(vpc)),
                 "local_divider": plan.vpcs[vpc]}
                for vpc in sorted(plan.vpcs, key=_vpc_key)]
        substrate = [{"ip": ips[h], "mac": macs[h], "name": h}
                     for h in sorted(plan.substrate, key=self.sub_key.__getitem__)]
        # a divider's way to each VPC peered with one it divides
        peers = [{"vni": mine.vni, "cidr": peer.cidr, "name": peering.name, "peer": peer.name,
                  "peer_vni": peer.vni, "dividers": list(self.divider_ips(peer)), "src_cidr": mine.cidr}
                 for peering, mine, peer in sorted(plan.peer_routes, key=_peer_route_key)]

        fns = [self.function(fn, host.bpf_dir, plan) for fn in sorted(plan.functions, key=_fn_key)]
        return {
            "host": name,
            "interface": {"name": host.interface, "ip": my_ip, "mac": macs[name], "xdp_mode": host.xdp_mode,
                          "pin_dir": host.pin_dir},
            # what the transit role passes on: the objects directory, the
            # XDP mode switch, the sources to build, and the stages a map
            # layout migration reloads
            "transit": {"obj_dir": host.bpf_dir, "switch_mode": host.switch_mode, "sources": list(self.builds),
                        "stages": [{"stage": f["stage"], "object": f["object"]} for f in fns]},
            "maps": {"endpoints": entries, "networks": networks, "vpcs": vpcs, "substrate": substrate,
                     "agents": agents,
                     "sources": [{"ip": ips[h], "vni": vni, "name": h} for dummy, vni, h in self.sources],
                     "peers": peers},
            "local_endpoints": local,
            "functions": fns,
            # the VNI of every VPC by name, for function configs that name VPCs
            "vnis": dict(self.vnis) if fns else {},
            # user-space functions on this host's endpoints, and how the
            # host keeps them running (mizar.transit.userspace_function)
            "userspace": {"supervisor": host.supervisor, "dir": host.function_dir,
                          "functions": sorted((self.userspace(fn) for fn in plan.userspace), key=_by_name)},
        }

    def program(self, program):
        """A function's program as rendered: a shipped function's name, or
        the absolute path of a user source (relative to base_dir)."""
        if fnreg.is_user_source(program):
            return os.path.abspath(os.path.join(self.base_dir or os.getcwd(), program))
        return program

    def userspace(self, fn):
        ep = fn.endpoint
        return {"name": fn.name, "program": fn.program, "endpoint": ep.fullname, "netns": ep.netns,
                "iface": ep.host_iface, "vni": ep.vni, "ip": ep.ip, "mac": ep.mac, "config": _userspace_config(fn)}

    def function(self, fn, obj_dir, plan):
        program = self.program(fn.program)
        config = _plain(fn.config)
        if program == maglev.SCALED_PROGRAM:
            config = dict(config or {}, endpoints=self.scaled_endpoints(plan))
        return {"name": fn.name, "stage": fn.stage, "program": program, "config": config,
                "object": fnreg.object_path(obj_dir, program), "shipped": not fnreg.is_user_source(program)}

    def scaled_endpoints(self, plan):
        """The config the scaled function gets on a host: every scaled
        endpoint the host holds, with its ring's size and its backends'
        addresses and weights (the ring itself follows from them:
        model/maglev.py, where the function's maps are written)."""
        out = []
        for ep in sorted((ep for ep in plan.remote if ep.type == "scaled"), key=_EP_KEY):
            tpl = self.scaled.get(ep)
            if tpl is None:
                tpl = self.scaled[ep] = {
                    "vpc": ep.network.vpc.name, "ip": ep.ip, "name": ep.fullname,
                    "ring_size": maglev.endpoint_ring_size(ep.weights),
                    "backends": [{"name": b.name, "ip": b.ip, "weight": w} for b, w in zip(ep.backend_eps, ep.weights)]}
            out.append(dict(tpl, backends=[dict(b) for b in tpl["backends"]]))
        return out


def _userspace_config(fn):
    """A user-space function's config as rendered, its log named when the
    inventory leaves it out."""
    config = _plain(fn.config)
    if config.get("log") is None:
        config["log"] = "%s/%s.jsonl" % (USERSPACE_LOG_DIR, fn.name)
    return config


def _fn_key(fn):
    """By stage; a stage's functions keep the inventory's order, which is
    their chain's (sorted() is stable)."""
    return STAGES.index(fn.stage)


def _peer_route_key(route):
    dummy, mine, peer = route
    return (mine.vni, peer.net, peer.plen)


def _by_vpc_name(vpc):
    return vpc.name


def _plain(value):
    """Config as plain dicts, lists and scalars (as YAML writes them)."""
    if isinstance(value, Mapping):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def count_entries(renderings):
    """Map entries in renderings (the five maps, every host)."""
    return sum(len(r["maps"][m]) for r in renderings.values() for m in MAP_NAMES)


def dump(rendering):
    """One rendering as YAML: sorted keys, block style; byte-stable."""
    if not HAS_YAML:
        raise RuntimeError("PyYAML is required to write renderings")
    return yaml.safe_dump(rendering, sort_keys=True, default_flow_style=False)
