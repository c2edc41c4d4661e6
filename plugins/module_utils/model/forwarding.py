# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A forwarding model: where an IPv4 packet goes through rendered tables.

It mirrors the datapath (bpf/agent.bpf.c, bpf/transit.bpf.c,
bpf/include/mzr_route.h, mzr_hash.h) step by step, over the renderings
render.py produces, so it is the reference for what the maps mean:

    model = ForwardingModel(renderings)
    result = model.send("vpc1/net1/ep1", "10.1.0.6")
    result.delivered_to   # endpoint name, or None
    result.path           # hosts the packet visited, the source's host first
    result.drop_reason    # None, or the datapath's reason (abi.DROP_REASONS)
    result.steps          # per host visited: {host, path}, path the datapath's
                          # counter of what the host did (agent_local,
                          # agent_encap, bounce, divide, to_divider, to_peer,
                          # decap) or "drop" (playbooks/trace.yml compares
                          # them with the live walk)

Agent (the source endpoint's host): a destination hosted here (simple,
with an interface) is delivered. Otherwise the packet is encapsulated to
bouncer agent.bouncers[pick(hash(src, dst), n)]; if that bouncer is this
host, it does the bouncer's work itself.

Transit (a host receiving (vni, src, dst)): an endpoint entry of type
gateway drops (to_gateway); scaled is delivered to the scaled endpoint
itself (delivered_to is its name: the host's scaled function balances it
over its backends, which the model does not pick) when the host runs the
scaled function, and drops (scaled_no_fn) when it does not; with an
interface delivers. Then, in the datapath's order:
an outer TTL <= 1 drops (ttl; the agent sends with 64); an endpoint entry
sends to its host_ip; else the VPC must be known (unknown_vni), the
longest network prefix of (vni, dst) picks a bouncer, else on a divider of
the VPC a peer route (a peered VPC's CIDR) holding dst picks one of the
peer's dividers and the packet goes on with the peer's VNI (peer_src when
the source is outside the VPC's own CIDR), else no_network when this host
is a divider of the VPC, else a divider is picked (no_hops when a list is
empty). A next hop with no substrate entry drops (no_substrate),
one equal to this host drops (loop). The host's own address counts as
having a substrate entry: the codec gives the host itself a slot.

Two reasons exist only in the model: no_host (a next-hop IP that is no
rendered host's) and substrate_mismatch (a substrate MAC that is not the
next host's interface MAC: the frame would not arrive).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.mizar.transit.plugins.module_utils.model.maglev import SCALED_PROGRAM

OUTER_TTL = 64
_M32 = 0xFFFFFFFF


def be32(ip):
    """IPv4 text -> the u32 a little-endian load of its wire bytes gives (a __be32 in C)."""
    return int.from_bytes(socket.inet_aton(ip), "little")


def mix32(h):
    h ^= h >> 16
    h = (h * 0x7FEB352D) & _M32
    h ^= h >> 15
    h = (h * 0x846CA68B) & _M32
    h ^= h >> 16
    return h


def flow_hash(src_ip, dst_ip):
    """mzr_flow_hash of two IPv4 texts: symmetric in src and dst."""
    a, b = be32(src_ip), be32(dst_ip)
    return mix32(((a ^ b) + 0x9E3779B9 * (a & b)) & _M32)


def pick(h, n):
    """mzr_pick: index in [0, n) from the high half of h * n."""
    return (h * n) >> 32


def _one_of(hops, h, vni, how):
    """The hop the flow hash picks (mzr_hop_slot): (ip, None, vni, how), or no_hops."""
    if not hops:
        return None, "no_hops", vni, how
    return hops[pick(h, len(hops))], None, vni, how


class Result:
    __slots__ = ("delivered_to", "path", "drop_reason", "steps")

    def __init__(self, delivered_to=None, path=None, drop_reason=None, steps=None):
        self.delivered_to = delivered_to
        self.path = list(path or [])
        self.drop_reason = drop_reason
        self.steps = list(steps or [])

    def __eq__(self, other):
        return isinstance(other, Result) and (self.delivered_to, self.path, self.drop_reason) == \
            (other.delivered_to, other.path, other.drop_reason)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "Result(delivered_to=%r, path=%r, drop_reason=%r)" % (self.delivered_to, self.path, self.drop_reason)


def _scaled(host, ep, path, steps):
    """A packet to scaled endpoint ep entering its stage on host: handed to
    the scaled function, or dropped where no host runs it."""
    if host.balances:
        steps.append({"host": host.name, "path": "scaled", "drop_reason": None})
        return Result(ep["name"], path, steps=steps)
    steps.append({"host": host.name, "path": "drop", "drop_reason": "scaled_no_fn"})
    return Result(None, path, "scaled_no_fn", steps)


class _Host:
    """The tables of one host, indexed for lookups."""

    def __init__(self, rendering):
        self.name = rendering["host"]
        self.ip = rendering["interface"]["ip"]
        self.mac = rendering["interface"]["mac"]
        maps = rendering["maps"]
        self.endpoints = dict(((e["vni"], e["ip"]), e) for e in maps["endpoints"])
        self.networks = _by_prefix(maps["networks"])  # vni -> [(prefixlen, network u32, entry)], longest first
        self.peers = _by_prefix(maps.get("peers") or [])
        self.vpcs = dict((e["vni"], e) for e in maps["vpcs"])
        self.substrate = dict((e["ip"], e) for e in maps["substrate"])
        self.agents = dict((e["name"], e) for e in maps["agents"])
        self.sources = set((e["ip"], e["vni"]) for e in maps.get("sources") or [])
        self.balances = any(f.get("program") == SCALED_PROGRAM for f in rendering.get("functions") or [])

    def lpm(self, vni, ip, table=None):
        """The entry of the longest prefix of vni holding ip in the
        networks (or the given table, e.g. self.peers), or None."""
        addr = _u32(ip)
        for plen, net, entry in (self.networks if table is None else table).get(vni, ()):
            if _in(addr, net, plen):
                return entry
        return None


def _in(addr, net, plen):
    return addr & ((_M32 << (32 - plen)) & _M32) == net


def _by_prefix(entries):
    """{vni: [(prefixlen, network u32, entry)]}, longest prefix first."""
    out = {}
    for e in entries:
        net, plen = e["cidr"].split("/")
        out.setdefault(e["vni"], []).append((int(plen), _u32(net), e))
    for nets in out.values():
        nets.sort(key=lambda t: -t[0])
    return out


def _u32(ip):
    return int.from_bytes(socket.inet_aton(ip), "big")


class ForwardingModel:
    """The overlay as the datapath would forward through renderings ({host: rendering})."""

    def __init__(self, renderings):
        self.hosts = dict((name, _Host(r)) for name, r in renderings.items())
        self.by_ip = dict((h.ip, h) for h in self.hosts.values())
        self.sources = {}  # endpoint name -> (host, agent entry)
        for h in self.hosts.values():
            for name, agent in h.agents.items():
                self.sources[name] = (h, agent)

    def send(self, src_endpoint_name, dst_ip):
        """Follow one IPv4 packet from a local (simple) endpoint to dst_ip."""
        if src_endpoint_name not in self.sources:
            raise KeyError("no agent for endpoint %r in the renderings" % src_endpoint_name)
        host, agent = self.sources[src_endpoint_name]
        vni, src = agent["vni"], agent["ip"]
        path = [host.name]
        steps = []
        h = flow_hash(src, dst_ip)

        def drop(reason):
            steps.append({"host": host.name, "path": "drop", "drop_reason": reason})
            return Result(None, path, reason, steps)

        ep = host.endpoints.get((vni, dst_ip))
        if ep is not None and ep["iface"] and ep["type"] == "simple":
            steps.append({"host": host.name, "path": "agent_local", "drop_reason": None})
            return Result(ep["name"], path, steps=steps)
        n = len(agent["bouncers"])
        if n == 0:
            return drop("no_hops")
        hop = agent["bouncers"][pick(h, n)]
        if hop != host.ip and hop not in host.substrate:
            return drop("no_substrate")
        how = "agent_encap"
        if hop == host.ip:
            # this host is the bouncer: the agent does the bouncer's work
            if ep is not None and ep["type"] == "gateway":
                return drop("to_gateway")
            if ep is not None and ep["type"] == "scaled":
                return _scaled(host, ep, path, steps)
            hop, err, vni, how = self._next_hop(host, vni, h, src, dst_ip, ep)
            if err:
                return drop(err)
            if hop == host.ip:
                return drop("loop")
        peer = self._to_peer(host, hop, ep, path, steps, how)
        if peer is not None:
            return peer
        err = self._check_link(host, hop, vni)
        if err:
            return drop(err)
        steps.append({"host": host.name, "path": how, "drop_reason": None})
        return self._transit(self.by_ip[hop], vni, h, src, dst_ip, OUTER_TTL, path, steps)

    def _to_peer(self, host, hop, ep, path, steps, how):
        """Delivered to a tunnel peer: hop is no transit host but a substrate
        entry of this one, where the endpoint ep lives (the peer terminates
        the tunnel). None otherwise."""
        sub = host.substrate.get(hop)
        if ep is None or hop in self.by_ip or sub is None or ep["host_ip"] != hop:
            return None
        steps.append({"host": host.name, "path": how, "drop_reason": None})
        return Result(ep["name"], path + [sub["name"]], steps=steps)

    def _check_link(self, host, hop, vni):
        sub = host.substrate.get(hop)
        if sub is None:
            return "no_substrate"
        nxt = self.by_ip.get(hop)
        if nxt is None:
            return "no_host"
        if sub["mac"] != nxt.mac:
            return "substrate_mismatch"
        if (host.ip, 0) not in nxt.sources and (host.ip, vni) not in nxt.sources:
            return "untrusted_src"
        return None

    def _next_hop(self, host, vni, h, src_ip, dst_ip, ep):
        """mzr_next_hop: (next hop IP, None, the VNI it leaves with, the
        path's counter) or (None, drop reason, vni, the path's counter)."""
        hop, err, out_vni, how = self._pick_hop(host, vni, h, src_ip, dst_ip, ep)
        if err is None and hop != host.ip and hop not in host.substrate:
            return None, "no_substrate", vni, how
        return hop, err, out_vni, how

    def _pick_hop(self, host, vni, h, src_ip, dst_ip, ep):
        if ep is not None:
            return ep["host_ip"], None, vni, "bounce"
        vpc = host.vpcs.get(vni)
        if vpc is None:
            return None, "unknown_vni", vni, "drop"
        net = host.lpm(vni, dst_ip)
        if net is not None:
            if net.get("local_bouncer"):
                return None, "no_endpoint", vni, "drop"
            return _one_of(net["bouncers"], h, vni, "divide")
        if vpc["local_divider"]:
            peer = host.lpm(vni, dst_ip, host.peers)
            if peer is None:
                return None, "no_network", vni, "drop"
            src, src_plen = peer["src_cidr"].split("/")
            if not _in(_u32(src_ip), _u32(src), int(src_plen)):
                return None, "peer_src", vni, "drop"
            return _one_of(peer["dividers"], h, peer["peer_vni"], "to_peer")
        return _one_of(vpc["dividers"], h, vni, "to_divider")

    def _transit(self, host, vni, h, src_ip, dst_ip, ttl, path, steps):
        while True:
            path.append(host.name)

            def drop(reason, name=host.name):
                steps.append({"host": name, "path": "drop", "drop_reason": reason})
                return Result(None, path, reason, steps)

            ep = host.endpoints.get((vni, dst_ip))
            if ep is not None:
                if ep["type"] == "gateway":
                    return drop("to_gateway")
                if ep["type"] == "scaled":
                    return _scaled(host, ep, path, steps)
                if ep["iface"]:
                    steps.append({"host": host.name, "path": "bypass" if ep.get("bypass_decap") else "decap",
                                  "drop_reason": None})
                    return Result(ep["name"], path, steps=steps)
            if ttl <= 1:
                return drop("ttl")
            hop, err, out_vni, how = self._next_hop(host, vni, h, src_ip, dst_ip, ep)
            if err:
                return drop(err)
            if hop == host.ip:
                return drop("loop")
            peer = self._to_peer(host, hop, ep, path, steps, how)
            if peer is not None:
                return peer
            vni = out_vni
            err = self._check_link(host, hop, vni)
            if err:
                return drop(err)
            steps.append({"host": host.name, "path": how, "drop_reason": None})
            ttl -= 1
            host = self.by_ip[hop]
