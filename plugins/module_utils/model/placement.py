# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement: which items of the model each transit host must hold.

The Mizar roles decide it:

    every host ........... its interface config
    host of an endpoint .. the endpoint as hosted, its agent config (VNI,
                           network's bouncers), substrate entries for those bouncers;
                           for a backend, the scaled endpoints it serves
    bouncer of a network . every endpoint of the network (and the backends of its
                           scaled endpoints), the network's gateway, the VPC with its
                           dividers, substrate entries for every host it forwards to
                           (endpoint hosts, backend hosts, dividers)
    divider of a VPC ..... every network of the VPC, the VPC (local divider),
                           substrate entries for the networks' bouncers and the
                           other dividers (listed in its VPC entry); for each
                           VPC peered with it, a peer route (the peer's CIDR,
                           VNI and dividers) and substrate entries for the
                           peer's dividers
    any host ............. the functions declared for it; the user-space
                           functions of the endpoints it hosts

So every host IP in any entry of a host has a substrate entry there,
except the host's own (the datapath codec refers to hosts by substrate
slot and adds the host itself).

place() walks the model once to build a host -> roles index, then unions
per-network and per-VPC sets prepared once, so the cost follows the number
of entries placed, not hosts x inventory size. It works on models with
errors too (unknown hosts are skipped), so validation can count entries
for the capacity check and rendering reuses the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class HostPlan:
    """The items one host holds, as model objects (render.py shapes them)."""

    __slots__ = ("name", "hosted", "remote", "networks", "vpcs", "substrate", "functions", "userspace",
                 "bounced", "divided", "sources", "peer_routes")

    def __init__(self, name):
        self.name = name
        self.hosted = []        # simple endpoints on this host (endpoint entries with iface, agents)
        self.remote = set()     # endpoints and gateways held for forwarding (not hosted here)
        self.networks = set()   # networks (divider)
        self.vpcs = {}          # Vpc -> local_divider
        self.substrate = set()  # names of the hosts this one sends to
        self.functions = []
        self.userspace = []     # user-space functions on endpoints hosted here
        self.bounced = []       # networks this host bounces
        self.divided = []       # VPCs this host divides
        self.sources = 0        # trusted tunnel sources (the same on every host)
        self.peer_routes = []   # (VpcPeering, its VPC this host divides, the peer VPC)

    def counts(self):
        """Entries per map, as rendered."""
        return {
            "endpoints": len(self.hosted) + len(self.remote),
            "networks": len(self.networks),
            "vpcs": len(self.vpcs),
            "substrate": len(self.substrate),
            "agents": len(self.hosted),
            "sources": self.sources,
            "peers": len(self.peer_routes),
        }


def place(model):
    """Model -> {host name: HostPlan} for every host of mizar_hosts."""
    plans = dict((name, HostPlan(name)) for name in model.hosts)

    for vpc in model.vpcs:
        dividers = set(vpc.dividers)
        all_bouncers = set()
        for net in vpc.networks:
            all_bouncers.update(net.bouncers)
            for ep in net.endpoints:
                if ep.type == "simple" and ep.host in plans:
                    plan = plans[ep.host]
                    plan.hosted.append(ep)
                    plan.substrate.update(net.bouncers)
                elif ep.type == "scaled":
                    # a backend's host delivers what the balancing host sent
                    # it for the scaled endpoint: it holds the endpoint too
                    for backend in ep.backend_eps:
                        if backend.host in plans:
                            plans[backend.host].remote.add(ep)
            bounced = None
            for b in net.bouncers:
                plan = plans.get(b)
                if plan is None:
                    continue
                if bounced is None:
                    bounced = _bouncer_view(net, dividers)
                eps, hosts = bounced
                plan.bounced.append(net)
                plan.remote.update(eps)
                plan.substrate.update(hosts)
                if vpc not in plan.vpcs:
                    plan.vpcs[vpc] = b in dividers
        for d in dividers:
            plan = plans.get(d)
            if plan is None:
                continue
            plan.divided.append(vpc)
            plan.vpcs[vpc] = True
            plan.networks.update(vpc.networks)
            plan.substrate.update(all_bouncers)
            plan.substrate.update(dividers)  # its vpcs entry lists them; the tables refer to hosts by substrate slot

    for peering in model.peerings:
        if peering.vpcs is None:  # not valid: validation says why
            continue
        a, b = peering.vpcs
        for mine, peer in ((a, b), (b, a)):
            for d in set(mine.dividers):
                plan = plans.get(d)
                if plan is not None:
                    plan.peer_routes.append((peering, mine, peer))
                    plan.substrate.update(peer.dividers)

    for fn in model.functions:
        if fn.kind == "userspace":  # on its endpoint's host
            if fn.endpoint is not None and fn.endpoint.host in plans:
                plans[fn.endpoint.host].userspace.append(fn)
            continue
        for name in (model.hosts if fn.hosts is None else fn.hosts):
            if name in plans:
                plans[name].functions.append(fn)

    for name, plan in plans.items():
        if plan.hosted and plan.remote:
            plan.remote.difference_update(plan.hosted)
        plan.substrate.discard(name)
    # Every host trusts every transit host of the fleet, and each tunnel
    # peer for the VPCs of the endpoints behind it.
    sources = len(model.hosts) + len(tunnel_sources(model))
    for plan in plans.values():
        plan.sources = sources
    return plans


def tunnel_sources(model):
    """{(peer name, VNI)}: the VPCs each tunnel peer may send for."""
    return set((ep.host, ep.vni) for ep in model.endpoints() if ep.peer)


def _bouncer_view(net, dividers):
    """What every bouncer of net holds for it: (endpoints, hosts it forwards to)."""
    eps = list(net.endpoints)
    if net.gateway is not None:
        eps.append(net.gateway)
    hosts = set(dividers)
    for ep in net.endpoints:
        if ep.type == "simple":
            if ep.host is not None:
                hosts.add(ep.host)
        elif ep.type == "scaled":
            for backend in ep.backend_eps:
                eps.append(backend)
                if backend.host is not None:
                    hosts.add(backend.host)
    return eps, hosts
