# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the inventory: every defect, with its path and a fix.

model.build() reports what is wrong with each item on its own; this module
checks the relations between items: containment and overlap of CIDRs,
uniqueness (VNIs, names, endpoint IPs and MACs, namespaces and interfaces
on a host), references (hosts of mizar_hosts, backends, shipped
functions), function configs, and the per-host map capacities.

    errors = validate(inventory)            # ErrorList, empty when valid
    model, plans = check(inventory)         # or raises InvalidInventory

Any error means nothing is applied.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model import inventory as mdl
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import ErrorList, InvalidInventory, suggest
from ansible_collections.mizar.transit.plugins.module_utils.model.gcpause import gc_paused
from ansible_collections.mizar.transit.plugins.module_utils.model.maglev import SCALED_PROGRAM, SCALED_STAGE
from ansible_collections.mizar.transit.plugins.module_utils.model.placement import place


def validate(inventory, registry=None):
    """Every error of the inventory, in path order (empty when it is valid)."""
    errors, _model, _plans = _run(inventory, registry)
    return errors


def check(inventory, registry=None):
    """(Model, {host: HostPlan}) of a valid inventory; InvalidInventory otherwise."""
    errors, model, plans = _run(inventory, registry)
    if errors:
        raise InvalidInventory(errors)
    return model, plans


def _run(inventory, registry):
    with gc_paused():
        return _run_checks(inventory, registry)


def _run_checks(inventory, registry):
    errors = ErrorList()
    model = mdl.build(inventory, errors)
    if registry is None:
        try:
            registry = fnreg.default_registry()
        except fnreg.SchemaError as e:
            errors.add("mizar_functions", "the collection's function registry is broken: %s" % e)
            registry = fnreg.Registry()
    _Checker(model, errors, registry).run()
    plans = place(model)
    _check_capacity(plans, errors)
    _check_scaled_functions(model, plans, errors)
    return errors.sorted(), model, plans


def _host_ref(name, hosts, path, errors, role):
    if name not in hosts:
        errors.add(path, "%s %r is not a host of group mizar_hosts%s: add it to the group in the inventory, or "
                   "name one of its hosts" % (role, name, suggest(name, hosts)))
        return False
    return True


def _host_list(names, hosts, path, key, errors, role, limit):
    seen = set()
    for i, name in enumerate(names):
        here = "%s.%s[%d]" % (path, key, i)
        if name in seen:
            errors.add(here, "%s %r is listed twice: list each host once" % (role, name))
        seen.add(name)
        _host_ref(name, hosts, here, errors, role)
    if len(names) > limit:
        errors.add("%s.%s" % (path, key), "%d %ss, more than the %d the datapath holds: list at most %d"
                   % (len(names), role, limit, limit))


class _Checker:
    def __init__(self, model, errors, registry):
        self.model = model
        self.errors = errors
        self.registry = registry
        self.hosts = model.hosts
        self.names_in_vpc = {}  # id(vpc) -> {endpoint name: Endpoint}

    def run(self):
        self.check_hosts()
        self.check_peers()
        self.check_vpcs()
        endpoints_by_host = {}
        for vpc in self.model.vpcs:
            self.check_networks(vpc)
            self.check_endpoints(vpc, endpoints_by_host)
        self.check_backends()
        self.check_host_interfaces(endpoints_by_host)
        self.check_functions()
        self.check_peerings()

    # ------------------------------------------------------------ hosts

    def check_hosts(self):
        ips, macs = {}, {}
        for host in self.hosts.values():
            if host.ip is not None:
                if host.ip in ips:
                    self.errors.add(host.path + ".mizar_underlay_ip", "underlay IP %s is also %s's: every transit "
                                    "host needs its own substrate address" % (host.ip, ips[host.ip]))
                else:
                    ips[host.ip] = host.name
            if host.mac is not None:
                if host.mac in macs:
                    self.errors.add(host.path + ".mizar_underlay_mac", "underlay MAC %s is also %s's: every transit "
                                    "host NIC has its own MAC" % (host.mac, macs[host.mac]))
                else:
                    macs[host.mac] = host.name

    def check_peers(self):
        """Tunnel peers are other addresses of the substrate: not a transit
        host's name or address, and one peer per address."""
        host_ips = dict((h.ip, h.name) for h in self.hosts.values() if h.ip is not None)
        ips = {}
        for peer in self.model.peers.values():
            if peer.name in self.hosts:
                self.errors.add(peer.path + ".name", "tunnel peer %r has the name of a host of mizar_hosts: a peer is "
                                "not a transit host; give it another name" % peer.name)
            if peer.ip is None:
                continue
            if peer.ip in host_ips:
                self.errors.add(peer.path + ".ip", "tunnel peer IP %s is transit host %s's underlay address: a peer "
                                "has its own substrate address" % (peer.ip, host_ips[peer.ip]))
            elif peer.ip in ips:
                self.errors.add(peer.path + ".ip", "tunnel peer IP %s is also peer %s's: each peer has its own "
                                "substrate address" % (peer.ip, ips[peer.ip]))
            else:
                ips[peer.ip] = peer.name

    # ------------------------------------------------------------ VPCs

    def check_vpcs(self):
        errors, hosts = self.errors, self.hosts
        names, vnis = {}, {}
        for vpc in self.model.vpcs:
            if vpc.name is not None:
                if vpc.name in names:
                    errors.add(vpc.path + ".name", "VPC name %r is already used by %s: VPC names must be unique"
                               % (vpc.name, names[vpc.name]))
                else:
                    names[vpc.name] = vpc.path
            if vpc.vni is not None:
                if vpc.vni in vnis:
                    errors.add(vpc.path + ".vni", "VNI %d is already used by %s: every VPC needs its own VNI"
                               % (vpc.vni, vnis[vpc.vni]))
                else:
                    vnis[vpc.vni] = vpc.path
            _host_list(vpc.dividers, hosts, vpc.path, "dividers", errors, "divider", capacity.MAX_HOPS)
            if len(vpc.networks) > 1 and not vpc.dividers:
                errors.add(vpc.path + ".dividers", "VPC %s has %d networks and no divider, so its networks cannot "
                           "reach each other: list at least one host of mizar_hosts in dividers"
                           % (vpc.name, len(vpc.networks)))

    # ------------------------------------------------------------ networks

    def check_networks(self, vpc):
        errors, hosts = self.errors, self.hosts
        names = {}
        placed = []
        for net in vpc.networks:
            if net.name is not None:
                if net.name in names:
                    errors.add(net.path + ".name", "network name %r is already used in VPC %s by %s: names of a "
                               "VPC's networks must be unique" % (net.name, vpc.name, names[net.name]))
                else:
                    names[net.name] = net.path
            if net.net is not None:
                if vpc.net is not None and not addr.subnet_of(net.net, net.plen, vpc.net, vpc.plen):
                    errors.add(net.path + ".cidr", "network %s is outside its VPC's CIDR %s: choose a network "
                               "inside %s, or widen the VPC" % (net.cidr, vpc.cidr, vpc.cidr))
                placed.append(net)
            _host_list(net.bouncers, hosts, net.path, "bouncers", errors, "bouncer", capacity.MAX_HOPS)
        max_plens = getattr(capacity, "MAX_PLENS", None)  # distinct prefix lengths the datapath probes per VPC
        plens = sorted(set(n.plen for n in placed))
        if max_plens is not None and len(plens) > max_plens:
            errors.add(vpc.path + ".networks", "the networks of VPC %s have %d different prefix lengths (%s), more "
                       "than the %d the datapath looks up: use at most %d distinct network sizes in one VPC"
                       % (vpc.name, len(plens), ", ".join("/%d" % p for p in plens), max_plens, max_plens))
        # overlaps: sweep in address order, remembering the furthest end so far
        placed.sort(key=lambda n: n.sort_key)  # one VPC: address order
        widest, widest_end = None, -1
        for net in placed:
            if widest is not None and net.net <= widest_end:
                errors.add(net.path + ".cidr", "network %s overlaps %s (%s) in VPC %s: networks of one VPC must "
                           "not overlap; pick a disjoint range" % (net.cidr, widest.cidr, widest.path, vpc.name))
            end = addr.broadcast(net.net, net.plen)
            if end > widest_end:
                widest, widest_end = net, end

    # ------------------------------------------------------------ endpoints

    def check_endpoints(self, vpc, by_host):
        errors, hosts = self.errors, self.hosts
        names, ips, macs = {}, {}, {}
        for net in vpc.networks:
            gw = net.gateway
            if gw is not None and gw.mac is not None:
                macs[gw.mac] = "the gateway of %s" % net.path
        for net in vpc.networks:
            gw = net.gateway
            for ep in net.endpoints:
                path = ep.path
                if ep.name is not None:
                    if ep.name in names:
                        errors.add(path + ".name", "endpoint name %r is already used in VPC %s by %s: endpoint "
                                   "names are unique in a VPC" % (ep.name, vpc.name, names[ep.name].path))
                    else:
                        names[ep.name] = ep
                ip = ep.ip_int
                ip_ok = ip is not None
                if ip is not None:
                    if ip in ips:
                        ip_ok = False
                        errors.add(path + ".ip", "IP %s is already used in VPC %s by %s: give each endpoint its own "
                                   "address" % (ep.ip, vpc.name, ips[ip]))
                    else:
                        ips[ip] = path
                    if net.net is not None:
                        if not addr.in_network(ip, net.net, net.plen):
                            errors.add(path + ".ip", "IP %s is outside its network %s: choose an address in %s, "
                                       "or move the endpoint to the network that holds it" % (ep.ip, net.cidr, net.cidr))
                        elif ip == net.net:
                            errors.add(path + ".ip", "IP %s is the network address of %s: use a host address "
                                       "(the first, %s, is the gateway)" % (ep.ip, net.cidr, gw.ip))
                        elif ip == addr.broadcast(net.net, net.plen):
                            ip_ok = False
                            errors.add(path + ".ip", "IP %s is the broadcast address of %s: use a host address "
                                       "below it" % (ep.ip, net.cidr))
                        elif ip == gw.ip_int:
                            ip_ok = False
                            errors.add(path + ".ip", "IP %s is the gateway of %s (its first host address): use "
                                       "another address" % (ep.ip, net.cidr))
                # a derived MAC follows from the IP: when the IP is wrong, that error says it all
                if ep.mac is not None and (ep.mac_given or ip_ok):
                    if ep.mac in macs:
                        errors.add(path + ".mac", "MAC %s (%s) is already used in VPC %s by %s: give one endpoint "
                                   "another MAC, or leave mac out to derive a unique one"
                                   % (ep.mac, "given" if ep.mac_given else "derived", vpc.name, macs[ep.mac]))
                    else:
                        macs[ep.mac] = path
                if ep.peer:
                    if ep.host not in self.model.peers:
                        errors.add(path + ".tunnel_peer", "tunnel peer %r is not in mizar_tunnel_peers%s: declare it "
                                   "there with its substrate ip and mac" % (ep.host, suggest(ep.host, self.model.peers)))
                elif ep.type == "simple" and ep.host is not None:
                    if _host_ref(ep.host, hosts, path + ".host", errors, "endpoint host"):
                        by_host.setdefault(ep.host, []).append(ep)
        self.names_in_vpc[id(vpc)] = names

    def check_backends(self):
        errors = self.errors
        by_vpc = self.names_in_vpc
        owners = {}  # endpoint name -> VPC names holding one (for cross-VPC messages)
        for vpc in self.model.vpcs:
            for name in by_vpc.get(id(vpc), {}):
                owners.setdefault(name, []).append(vpc.name)
        for vpc in self.model.vpcs:
            names = by_vpc.get(id(vpc), {})
            for net in vpc.networks:
                for ep in net.endpoints:
                    if ep.type != "scaled" or not ep.backends:
                        continue
                    resolved, weights, seen = [], [], set()
                    for i, bname in enumerate(ep.backends):
                        here = "%s.backends[%d]" % (ep.path, i)
                        if bname in seen:
                            errors.add(here, "backend %r is listed twice: list each backend once (give it one "
                                       "weight)" % bname)
                            continue
                        seen.add(bname)
                        backend = names.get(bname)
                        if backend is None:
                            elsewhere = [v for v in owners.get(bname, []) if v != vpc.name]
                            if elsewhere:
                                errors.add(here, "backend %r is an endpoint of VPC %s, not of %s: backends must be "
                                           "endpoints of the scaled endpoint's own VPC"
                                           % (bname, elsewhere[0], vpc.name))
                            else:
                                errors.add(here, "no endpoint named %r in VPC %s%s: a backend is the name of an "
                                           "endpoint of the same VPC" % (bname, vpc.name, suggest(bname, names)))
                        elif backend.type == "scaled":
                            errors.add(here, "backend %r is itself a scaled endpoint: backends must be simple "
                                       "endpoints" % bname)
                        elif backend.peer:
                            errors.add(here, "backend %r is behind tunnel peer %s: backends must live on transit "
                                       "hosts, where the scaled endpoint's function runs" % (bname, backend.host))
                        elif backend.bypass_decap:
                            errors.add(here, "backend %r is a bypass_decap endpoint: a backend takes the scaled "
                                       "endpoint's packets decapsulated and replies from its address; list "
                                       "endpoints without bypass_decap" % bname)
                        elif backend.type == "simple":
                            resolved.append(backend)
                            weights.append(ep.weights[i])
                    if len(ep.backends) > capacity.MAX_BACKENDS:
                        errors.add(ep.path + ".backends", "%d backends, more than the %d a scaled endpoint holds: "
                                   "list at most %d" % (len(ep.backends), capacity.MAX_BACKENDS, capacity.MAX_BACKENDS))
                    ep.backend_eps = resolved
                    ep.weights = weights

    def check_host_interfaces(self, by_host):
        """Namespaces and host-side interfaces of one host must not clash."""
        errors = self.errors
        for hname in sorted(by_host):
            host = self.hosts[hname]
            netns, ifaces = {}, {}
            for ep in by_host[hname]:
                if ep.netns is not None:
                    if ep.netns in netns:
                        errors.add(ep.path + ".netns", "namespace %r on host %s is already %s's: each netns "
                                   "endpoint gets its own namespace (with eth0 inside)"
                                   % (ep.netns, hname, netns[ep.netns]))
                    else:
                        netns[ep.netns] = ep.path
                if ep.host_iface is not None:
                    key = "iface" if ep.iface is not None else "netns"
                    if ep.host_iface in ifaces:
                        errors.add("%s.%s" % (ep.path, key), "interface %s on host %s is already %s's: each endpoint "
                                   "needs its own interface" % (ep.host_iface, hname, ifaces[ep.host_iface]))
                    else:
                        ifaces[ep.host_iface] = ep.path
                    if ep.iface is not None and ep.iface == host.interface:
                        errors.add(ep.path + ".iface", "interface %s is the substrate NIC of %s (mizar_interface): "
                                   "an endpoint needs an interface of its own" % (ep.iface, hname))

    # ------------------------------------------------------------ functions

    def check_functions(self):
        errors, hosts, registry = self.errors, self.hosts, self.registry
        endpoints = dict((v.name, dict((n, ep.ip) for n, ep in self.names_in_vpc.get(id(v), {}).items()
                                       if ep.ip is not None))
                         for v in self.model.vpcs if v.name is not None)
        context = fnreg.ConfigContext([v.name for v in self.model.vpcs if v.name is not None], hosts, endpoints,
                                      self._unhosted())
        names = {}
        chains = {}  # (host, stage) -> [function], in order
        rules = {}  # (host, shipped program) -> the first function running it there with a valid config
        objects = {}  # object stem -> (program, path) of the user sources
        served = {}  # id(endpoint) -> the path of the user-space function on it
        for fn in self.model.functions:
            path = fn.path
            _unique_name(fn, names, errors, "function")
            if fn.kind == "userspace":
                self.check_userspace(fn, served, context)
                continue
            if fn.program is not None and fnreg.is_user_source(fn.program):
                _check_object(fn, registry, objects, errors)
            spec = None
            if fn.program is not None and not fnreg.is_user_source(fn.program):
                spec = registry.get(fn.program)
                if spec is None:
                    available = ", ".join(registry.names()) or "none yet"
                    errors.add(path + ".program", "unknown program %r%s: name a function shipped in bpf/functions "
                               "(%s) or give the path of your own C source (*.c)"
                               % (fn.program, suggest(fn.program, registry.names()), available))
                elif spec.kind == "userspace":
                    errors.add(path + ".program", "%s is a user-space function: it runs on a bypass_decap endpoint, "
                               "not in a stage; declare it with kind: userspace, vpc and endpoint" % fn.program)
                    spec = None
            if spec is not None and fn.stage is not None and fn.stage not in spec.stages:
                errors.add(path + ".stage", "function %s cannot run at %s: it runs at %s"
                           % (spec.name, fn.stage, ", ".join(spec.stages)))
            if fn.hosts is not None:
                _host_list(fn.hosts, hosts, path, "hosts", errors, "function host", max(len(hosts), 1))
            config = None
            if fn.config is not None:
                config = fnreg.check_config(fn.config, spec, path + ".config", errors, context)
                if config is not None:
                    fn.config = config
            placed = fn.stage is not None and _chain_place(fn, hosts, chains, errors)
            if placed and spec is not None and config is not None:
                _one_rule_set(fn, hosts, rules, errors)

    def _unhosted(self):
        """{VPC name: {IP: what it is}}: the addresses of each VPC that are
        no endpoint on a transit host (ConfigContext.unhosted)."""
        out = {}
        for v in self.model.vpcs:
            if v.name is None:
                continue
            what = out.setdefault(v.name, {})
            for net in v.networks:
                if net.gateway is not None and net.gateway.ip is not None:
                    what[net.gateway.ip] = (None, "the gateway of network %s" % net.name)
            for name, ep in self.names_in_vpc.get(id(v), {}).items():
                if ep.ip is None:
                    continue
                if ep.type == "scaled":
                    what[ep.ip] = (name, "a scaled endpoint (its backends are delivered to, by their own addresses)")
                elif ep.peer:
                    what[ep.ip] = (name, "behind tunnel peer %s (delivered by the peer, not by a transit host)"
                                   % ep.host)
        return out

    def check_userspace(self, fn, served, context):
        """A user-space function: a shipped program of its kind, on a
        bypass_decap endpoint with a namespace on a transit host, one
        function per endpoint; its config checked by the program's schema."""
        errors, path = self.errors, fn.path
        spec = None
        if fn.program is not None:
            spec = self.registry.get(fn.program)
            programs = self.registry.names("userspace")
            if spec is None or spec.kind != "userspace":
                errors.add(path + ".program", "unknown user-space program %r%s: name one of %s" % (
                    fn.program, suggest(fn.program, programs), ", ".join(programs) or "none yet"))
                spec = None
        ep = self._userspace_endpoint(fn)
        if ep is not None:
            if id(ep) in served:
                errors.add(path + ".endpoint", "endpoint %s of VPC %s already runs the user-space function of %s: an "
                           "endpoint runs one" % (fn.endpoint_name, fn.vpc, served[id(ep)]))
            else:
                served[id(ep)] = path
                fn.endpoint = ep
        if fn.config is not None and spec is not None:
            config = fnreg.check_config(fn.config, spec, path + ".config", self.errors, context)
            if config is not None:
                fn.config = config

    def _userspace_endpoint(self, fn):
        """The Endpoint fn names, when it can run a user-space function."""
        errors, path = self.errors, fn.path
        if fn.vpc is None or fn.endpoint_name is None:
            return None
        vpc = next((v for v in self.model.vpcs if v.name == fn.vpc), None)
        if vpc is None:
            errors.add(path + ".vpc", "no VPC named %r in mizar_vpcs%s" % (
                fn.vpc, suggest(fn.vpc, [v.name for v in self.model.vpcs if v.name is not None])))
            return None
        names = self.names_in_vpc.get(id(vpc), {})
        ep = names.get(fn.endpoint_name)
        where = path + ".endpoint"
        if ep is None:
            near = suggest(fn.endpoint_name, names)
            errors.add(where, "no endpoint named %r in VPC %s%s" % (fn.endpoint_name, vpc.name, near))
            return None
        problem = None
        if ep.type != "simple" or ep.peer:
            problem = "it is %s, not an endpoint on a transit host" % (
                "behind tunnel peer %s" % ep.host if ep.peer else "a %s endpoint" % ep.type)
        elif not ep.bypass_decap:
            problem = ("it does not have bypass_decap: true, so it would get the inner frames, not the tunnel "
                       "packets the function reads; set bypass_decap: true on it")
        elif ep.netns is None:
            problem = "it adopts the interface %s; the function runs in an endpoint's own namespace (netns)" % ep.iface
        elif ep.host not in self.hosts:
            problem = "its host %s is not in group mizar_hosts" % ep.host
        if problem:
            program = fn.program or "a user-space function"
            errors.add(where, "endpoint %s of VPC %s cannot run %s: %s" % (fn.endpoint_name, vpc.name, program, problem))
            return None
        return ep

    # ------------------------------------------------------------ VPC peerings

    def check_peerings(self):
        """Each peering joins two different, known VPCs with dividers, once.
        Where VPCs are peered their CIDRs must not overlap: neither the two
        of a peering, nor two VPCs peered with the same one (its dividers
        route by address). VPCs never peered may still reuse addresses."""
        errors = self.errors
        by_name = {}
        for vpc in self.model.vpcs:
            if vpc.name is not None:
                by_name.setdefault(vpc.name, vpc)
        names, pairs = {}, {}
        peers_of = {}  # id(vpc) -> [(peer Vpc, path of the peering)]
        for peering in self.model.peerings:
            path = peering.path
            _unique_name(peering, names, errors, "VPC peering")
            sides = []
            for i, vname in enumerate(peering.vpc_names):
                vpc = by_name.get(vname) if vname is not None else None
                if vname is not None and vpc is None:
                    errors.add("%s.vpcs[%d]" % (path, i), "no VPC named %r in mizar_vpcs%s: a peering joins two "
                               "VPCs of mizar_vpcs" % (vname, suggest(vname, by_name)))
                sides.append(vpc)
            if len(sides) != 2 or None in sides:
                continue
            a, b = sides
            if a is b:
                errors.add(path + ".vpcs[1]", "VPC %s is peered with itself: a peering joins two different VPCs "
                           "(a VPC's own networks reach each other through its dividers)" % a.name)
                continue
            pair = frozenset((id(a), id(b)))
            if pair in pairs:
                errors.add(path + ".vpcs", "VPCs %s and %s are already peered by %s: declare each peering once"
                           % (a.name, b.name, pairs[pair]))
                continue
            pairs[pair] = path
            if self._peering_problems(peering, a, b, peers_of):
                continue
            peering.vpcs = (a, b)
            peers_of.setdefault(id(a), []).append((b, path))
            peers_of.setdefault(id(b), []).append((a, path))
        max_plens = capacity.MAX_PLENS
        for vpc in self.model.vpcs:
            peers = peers_of.get(id(vpc), [])
            plens = sorted(set(p.plen for p, dummy in peers))
            if len(plens) > max_plens:
                errors.add(peers[-1][1] + ".vpcs", "the VPCs peered with %s have %d different CIDR prefix lengths "
                           "(%s), more than the %d its dividers look up: peer VPCs of at most %d sizes with it"
                           % (vpc.name, len(plens), ", ".join("/%d" % p for p in plens), max_plens, max_plens))

    def _peering_problems(self, peering, a, b, peers_of):
        """Report why peering (a with b) cannot be routed; True if any."""
        errors, path = self.errors, peering.path
        bad = False
        for i, vpc in enumerate((a, b)):
            if not vpc.dividers:
                errors.add("%s.vpcs[%d]" % (path, i), "VPC %s has no dividers: traffic crosses a peering at the "
                           "dividers of both VPCs; list at least one host of mizar_hosts in its dividers" % vpc.name)
                bad = True
            if vpc.vni is None or vpc.net is None:
                bad = True  # reported with the VPC itself
        if bad:
            return True
        shared = [d for d in a.dividers if d in b.dividers]
        if shared:
            errors.add(path + ".vpcs", "VPCs %s and %s share the divider%s %s: a packet crosses a peering from a "
                       "divider of one to a divider of the other, and a host cannot send to itself; give the two "
                       "VPCs different dividers" % (a.name, b.name, "s" if len(shared) > 1 else "",
                                                    ", ".join(shared)))
            return True
        if addr.overlaps(a.net, a.plen, b.net, b.plen):
            errors.add(path + ".vpcs[1]", "the CIDR %s of VPC %s overlaps the CIDR %s of VPC %s: peered VPCs must "
                       "not overlap, since their dividers route by address; renumber one of them, or do not peer "
                       "them" % (b.cidr, b.name, a.cidr, a.name))
            return True
        for i, (me, other) in enumerate(((a, b), (b, a))):
            for known, where in peers_of.get(id(me), ()):
                if addr.overlaps(other.net, other.plen, known.net, known.plen):
                    errors.add("%s.vpcs[%d]" % (path, 1 - i), "the CIDR %s of VPC %s overlaps the CIDR %s of VPC %s, "
                               "which %s also peers with %s: the dividers of %s could not tell their addresses "
                               "apart; renumber one of them, or do not peer both with %s"
                               % (other.cidr, other.name, known.cidr, known.name, where, me.name, me.name, me.name))
                    bad = True
        return bad


def _unique_name(item, names, errors, what):
    """Report item's name if names ({name: path}) has it; else add it."""
    if item.name is None:
        return
    if item.name in names:
        errors.add(item.path + ".name", "%s name %r is already used by %s: %s names must be unique"
                   % (what, item.name, names[item.name], what))
    else:
        names[item.name] = item.path


def _check_object(fn, registry, objects, errors):
    """A user source's object (functions/<stem>.bpf.o, built on the
    controller and carried to every host) must be its own."""
    stem = fnreg.stem(fn.program)
    program = posixpath.normpath(fn.program)
    shipped = registry.get(stem)
    if shipped is not None and shipped.kind == "xdp" and shipped.source is not None:
        errors.add(fn.path + ".program", "%s would build %s%s, the object of the shipped function %s: rename "
                   "your source" % (fn.program, fnreg.object_name(fn.program), fnreg.OBJECT_SUFFIX, stem))
    elif stem in objects and objects[stem][0] != program:
        errors.add(fn.path + ".program", "%s would build %s%s, which %s (%s) builds too: rename one of the "
                   "sources" % (fn.program, fnreg.object_name(fn.program), fnreg.OBJECT_SUFFIX,
                                objects[stem][1], objects[stem][0]))
    else:
        objects.setdefault(stem, (program, fn.path + ".program"))


def _check_capacity(plans, errors):
    sources = max([p.sources for p in plans.values()] or [0])
    if sources > capacity.MAX_SOURCES:
        errors.add("mizar_hosts", "the fleet has %d trusted tunnel sources (transit hosts, and tunnel peers once "
                   "per VPC), more than the %d a host's datapath holds" % (sources, capacity.MAX_SOURCES))
    for name in plans:
        counts = plans[name].counts()
        scaled = sum(1 for ep in plans[name].remote if ep.type == "scaled")
        if scaled > capacity.MAX_SCALED:
            errors.add("hostvars[%s]" % name, "host %s would hold %d scaled endpoints, more than the %d its scaled "
                       "function serves: give the bouncer roles of their networks to more hosts"
                       % (name, scaled, capacity.MAX_SCALED))
        members = sum(len(ep.backends) for ep in plans[name].remote if ep.type == "scaled")
        if members > capacity.MAX_MEMBERS:
            errors.add("hostvars[%s]" % name, "host %s would hold %d backends of scaled endpoints in all, more than "
                       "the %d its members map holds: give the bouncer roles of their networks to more hosts"
                       % (name, members, capacity.MAX_MEMBERS))
        for mapname in sorted(counts):
            limit = capacity.MAP_CAPACITY[mapname]
            if mapname == "sources":
                continue  # the same on every host: checked once, below
            if counts[mapname] > limit:
                plan = plans[name]
                errors.add("hostvars[%s]" % name, "host %s would hold %d entries in its %s map, more than its "
                           "capacity %d (it hosts %d endpoints, bounces %d networks, divides %d VPCs): spread "
                           "these roles over more hosts" % (name, counts[mapname], mapname, limit,
                                                            len(plan.hosted), len(plan.bounced), len(plan.divided)))


def _one_rule_set(fn, hosts, rules, errors):
    """A shipped function keeps one set of rules per host, in maps every
    stage running it there shares: each function running it on a host where
    another already does must give the same config (normalized), whatever
    its stage. Reported once, at fn's config, naming the first host."""
    for hname in (hosts if fn.hosts is None else fn.hosts):
        if hname not in hosts:
            continue
        first = rules.setdefault((hname, fn.program), fn)
        if first is not fn and first.config != fn.config:
            errors.add(fn.path + ".config", "differs from the config of %s (%s), which runs %s on host %s too (at %s): "
                       "%s keeps one set of rules per host, shared by every stage running it there; give both the "
                       "same config, or run them on different hosts" % (
                           first.path, first.name, fn.program, hname, first.stage, fn.program))
            return


def _check_scaled_functions(model, plans, errors):
    """A packet to a scaled endpoint enters stage on_xdp_scaled_ep on every
    host that holds the endpoint (its network's bouncers, where it is
    balanced, and its backends' hosts, where it is delivered): each of them
    needs the shipped function scaled there, or the packet is dropped
    (scaled_no_fn). And the rings those hosts hold must fit the function's
    ring pool."""
    missing = {}  # scaled Endpoint -> [host names]
    for name in sorted(plans):
        plan = plans[name]
        scaled = [ep for ep in plan.remote if ep.type == "scaled"]
        if not scaled:
            continue
        if not any(fn.program == SCALED_PROGRAM and fn.stage == SCALED_STAGE for fn in plan.functions):
            for ep in scaled:
                missing.setdefault(ep, []).append(name)
        chunks = [maglev.ring_chunks(ep.weights) for ep in scaled]
        need = sum(chunks) + max(chunks)  # a ring being replaced is written next to the one in use
        if need > maglev.POOL_CHUNKS:
            errors.add("hostvars[%s]" % name, "host %s would hold the Maglev rings of %d scaled endpoints, %d chunks "
                       "of %d slots with the room to replace the largest, more than the %d of the scaled function's "
                       "ring pool: give the bouncer roles of their networks to more hosts"
                       % (name, len(scaled), need, maglev.CHUNK_SLOTS, maglev.POOL_CHUNKS))
    for ep in sorted(missing, key=lambda e: e.path):
        hosts = missing[ep]
        errors.add(ep.path, "packets to scaled endpoint %s enter stage %s on %s, which %s no function %r there: "
                   "declare one in mizar_functions (program: %s, stage: %s) on %s, or on every host (no hosts)"
                   % (ep.fullname, SCALED_STAGE, ", ".join(hosts), "runs" if len(hosts) == 1 else "run",
                      SCALED_PROGRAM, SCALED_PROGRAM, SCALED_STAGE, ", ".join(hosts)))


def _chain_place(fn, hosts, chains, errors):
    """Put fn at the end of the chain of its stage on each of its hosts: the
    functions of one stage on one host run in the order mizar_functions
    lists them, at most capacity.CHAIN_MAX of them, each program once.
    False when it does not fit (reported)."""
    for hname in (hosts if fn.hosts is None else fn.hosts):
        if hname not in hosts:
            continue
        chain = chains.setdefault((hname, fn.stage), [])
        same = [other for other in chain if fn.program is not None and other.program == fn.program]
        if same:
            errors.add(fn.path + ".program", "stage %s of host %s already runs %s (%s): a stage's chain runs a "
                       "program once; merge their configs or move one to another stage"
                       % (fn.stage, hname, fn.program, same[0].path))
            return False
        chain.append(fn)
        if len(chain) > capacity.CHAIN_MAX:
            errors.add(fn.path + ".stage", "stage %s of host %s would run %d functions (%s): a stage's chain holds "
                       "%d at most; move some to other hosts or stages"
                       % (fn.stage, hname, len(chain), ", ".join(f.path for f in chain), capacity.CHAIN_MAX))
            return False
    return True
