# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology of a valid inventory, as a graph for Graphviz and as text.

    graph = diagram(inventory)      # plain data, for mizar.transit.diagram
    lines = summary(inventory)      # the tenants, one line per item

Both read the model and its placement (validate.check), so an invalid
inventory raises InvalidInventory with every error, as rendering does.

The graph is plain data (lists, dicts, strings), so it passes through
Ansible unchanged; ops/diagram.py lays it out with Graphviz's dot:

    {"attrs": {graph attributes}, "node": {default node attributes},
     "edge": {default edge attributes},
     "clusters": [{"id", "label": [lines], "attrs", "nodes": [...], "clusters": [...]}],
     "nodes": [{"id", "label": [lines], "attrs"}],
     "edges": [{"tail", "head", "attrs"}]}

What it shows: one cluster per VPC, left and right of the hosts in turn (its VNI, CIDR and dividers), one per
network inside it (its CIDR and bouncers), the endpoints in their networks
(name, IP; a scaled endpoint with dashed arrows to its backends); the
transit hosts in a cluster of their own, each with its substrate address
and its roles (the networks it bounces, the VPCs it divides); an arrow from
each endpoint to the host it lives on, or to its tunnel peer, coloured by
VPC; the functions, each with its stage and program, with dotted arrows to
the hosts that run it (a function on every host says so instead). Lists of
names are wrapped a few to a line, so a 30-host fleet stays legible.

Node ids are prefixed by kind (host/, peer/, ep/, fn/), so a host, an
endpoint and a function may share a name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import check

# Pastel fills for the VPC clusters and strong colours for their arrows, in
# the order of the VPCs in the inventory; they cycle past the last.
PALETTE = (("#e8f0fe", "#1a56db"), ("#fde8e8", "#c81e1e"), ("#e6f6ec", "#057a55"), ("#fdf6b2", "#8e4b10"),
           ("#f3e8ff", "#6c2bd9"), ("#e0f7fa", "#0e7490"), ("#fce7f3", "#be185d"), ("#f1f5f9", "#334155"))
PER_LINE = 4  # names per line in a wrapped list

GRAPH_ATTRS = {"rankdir": "LR", "newrank": "true", "nodesep": "0.15", "ranksep": "1.2",
               "fontname": "Helvetica", "fontsize": "12", "labeljust": "l", "pad": "0.3"}
NODE_ATTRS = {"fontname": "Helvetica", "fontsize": "10", "shape": "box", "style": "rounded,filled",
              "fillcolor": "white", "margin": "0.08,0.04"}
EDGE_ATTRS = {"fontname": "Helvetica", "fontsize": "9", "arrowsize": "0.6"}


def diagram(inventory, registry=None):
    """The topology graph of a valid inventory (the module docstring has
    its shape). Raises InvalidInventory with every error otherwise."""
    model, plans = check(inventory, registry)
    return topology(model, plans)


def summary(inventory, registry=None):
    """The tenants of a valid inventory as lines of text: each VPC with
    its VNI, CIDR and dividers, each network with its CIDR and bouncers,
    each endpoint with its address and where it lives, then the functions.
    Raises InvalidInventory with every error otherwise."""
    model, dummy = check(inventory, registry)
    return tenant_lines(model)


def host_id(name):
    return "host/" + name


def peer_id(name):
    return "peer/" + name


def endpoint_id(ep):
    return "ep/" + ep.fullname


def function_id(fn):
    return "fn/" + fn.name


def wrapped(prefix, names, per_line=PER_LINE):
    """['prefix a, b, c, d,', '    e, f'] for a list of names: a few per line."""
    names = list(names)
    if not names:
        return []
    lines = []
    for i in range(0, len(names), per_line):
        lines.append(("%s " % prefix if i == 0 else "    ") + ", ".join(names[i:i + per_line])
                     + ("," if i + per_line < len(names) else ""))
    return lines


def _colours(index):
    return PALETTE[index % len(PALETTE)]


def _overlapping(model, vpc):
    """Names of the VPCs before vpc that share addresses with it."""
    return [o.name for o in model.vpcs[:model.vpcs.index(vpc)] if addr.overlaps(o.net, o.plen, vpc.net, vpc.plen)]


def peered_with(model, vpc):
    """['green (peering blue-green)', ...]: the VPCs vpc is peered with."""
    out = []
    for p in model.peerings:
        names = list(p.vpc_names)
        if vpc.name in names and len(names) == 2:
            other = names[1] if names[0] == vpc.name else names[0]
            out.append("%s (peering %s)" % (other, p.name) if p.name else other)
    return out


def topology(model, plans):
    """The graph of a validated model and its placement ({host: HostPlan})."""
    graph = {"attrs": dict(GRAPH_ATTRS), "node": dict(NODE_ATTRS), "edge": dict(EDGE_ATTRS),
             "clusters": [], "nodes": [], "edges": []}
    for i, vpc in enumerate(model.vpcs):
        fill, stroke = _colours(i)
        label = ["VPC %s   VNI %d   %s" % (vpc.name, vpc.vni, vpc.cidr)]
        label += wrapped("dividers", vpc.dividers)
        label += wrapped("peered with", peered_with(model, vpc), per_line=2)
        shared = _overlapping(model, vpc)
        if shared:
            label.append("same addresses as %s, kept apart by VNI" % ", ".join(shared))
        cluster = {"id": "vpc/" + vpc.name, "label": label, "nodes": [], "clusters": [],
                   "attrs": {"style": "rounded,filled", "fillcolor": fill, "color": stroke, "penwidth": "1.5"}}
        for net in sorted(vpc.networks, key=lambda n: n.sort_key):
            cluster["clusters"].append(_network(net, stroke, graph["edges"], right=i % 2 == 1))
        graph["clusters"].append(cluster)

    hosts = {"id": "hosts", "label": ["transit hosts"], "clusters": [], "nodes": [],
             "attrs": {"style": "rounded,filled", "fillcolor": "#f9fafb", "color": "#6b7280", "rank": "same"}}
    for name, host in model.hosts.items():
        plan = plans[name]
        label = ["%s  %s" % (name, host.ip or "(address from facts)")]
        label += wrapped("bouncer of", [n.fullname for n in plan.bounced])
        label += wrapped("divider of", [v.name for v in plan.divided])
        hosts["nodes"].append({"id": host_id(name), "label": label,
                               "attrs": {"fillcolor": "#e5e7eb" if plan.bounced or plan.divided else "white"}})
    graph["clusters"].append(hosts)

    peers = sorted(set(ep.host for ep in model.endpoints() if ep.peer))
    if peers:
        graph["clusters"].append({
            "id": "peers", "label": ["tunnel peers"], "clusters": [],
            "attrs": {"style": "rounded,dashed", "color": "#6b7280"},
            "nodes": [{"id": peer_id(p), "label": [p, model.peers[p].ip, "Geneve tunnel peer"],
                       "attrs": {"style": "rounded,dashed,filled"}} for p in peers]})

    if model.functions:
        cluster = {"id": "functions", "label": ["functions"], "clusters": [], "nodes": [],
                   "attrs": {"style": "rounded,filled", "fillcolor": "#fffbeb", "color": "#b45309"}}
        for fn in model.functions:
            if fn.kind == "userspace":  # on its endpoint: a dotted line to the endpoint
                label = [fn.name, "%s in user space" % fn.program]
                cluster["nodes"].append({"id": function_id(fn), "label": label, "attrs": {"shape": "component"}})
                graph["edges"].append({"tail": function_id(fn), "head": endpoint_id(fn.endpoint),
                                       "attrs": {"style": "dotted", "color": "#b45309", "dir": "none"}})
                continue
            label = [fn.name, "%s at %s" % (fn.program, fn.stage)]
            if fn.hosts is None:
                label.append("on every transit host")
            cluster["nodes"].append({"id": function_id(fn), "label": label, "attrs": {"shape": "component"}})
            for name in fn.hosts or ():
                graph["edges"].append({"tail": function_id(fn), "head": host_id(name),
                                       "attrs": {"style": "dotted", "color": "#b45309", "dir": "none"}})
        graph["clusters"].append(cluster)
    return graph


def _network(net, stroke, edges, right=False):
    """The cluster of one network, its endpoints, and their arrows (added to
    edges). right: the network is drawn right of the hosts (its arrows are
    laid out from host to endpoint, and drawn pointing back at the host)."""
    label = ["network %s   %s" % (net.name, net.cidr)] + wrapped("bouncers", net.bouncers)
    cluster = {"id": "net/" + net.fullname, "label": label, "nodes": [], "clusters": [],
               "attrs": {"style": "rounded,filled", "fillcolor": "white", "color": stroke}}
    for ep in sorted(net.endpoints, key=lambda e: e.ip_int):
        node = {"id": endpoint_id(ep), "label": ["%s  %s" % (ep.name, ep.ip)], "attrs": {"color": stroke}}
        if ep.type == "scaled":
            node["label"].append("scaled")
            node["attrs"]["shape"] = "box3d"
            for backend in ep.backend_eps:
                edges.append({"tail": endpoint_id(ep), "head": endpoint_id(backend),
                              "attrs": {"style": "dashed", "color": stroke, "constraint": "false"}})
        else:
            if ep.bypass_decap:  # it gets whole tunnel packets (a user-space function's endpoint)
                node["label"].append("bypass_decap")
            where = peer_id(ep.host) if ep.peer else host_id(ep.host)
            if right:
                edges.append({"tail": where, "head": endpoint_id(ep), "attrs": {"color": stroke, "dir": "back"}})
            else:
                edges.append({"tail": endpoint_id(ep), "head": where, "attrs": {"color": stroke}})
        cluster["nodes"].append(node)
    return cluster


def tenant_lines(model):
    """The summary() lines of a validated model."""
    lines = []
    width = max([len(ep.name) for ep in model.endpoints()] + [1])
    for vpc in model.vpcs:
        head = "%s  VNI %d  %s" % (vpc.name, vpc.vni, vpc.cidr)
        if vpc.dividers:
            head += "  divider%s %s" % ("s" if len(vpc.dividers) > 1 else "", ", ".join(vpc.dividers))
        shared = _overlapping(model, vpc)
        if shared:
            head += "  (the same addresses as %s)" % ", ".join(shared)
        peers = peered_with(model, vpc)
        if peers:
            head += "  peered with %s" % ", ".join(peers)
        lines.append(head)
        for net in sorted(vpc.networks, key=lambda n: n.sort_key):
            plural = "s" if len(net.bouncers) > 1 else ""
            lines.append("  %s  %s  bouncer%s %s" % (net.name, net.cidr, plural, ", ".join(net.bouncers)))
            for ep in sorted(net.endpoints, key=lambda e: e.ip_int):
                if ep.type == "scaled":
                    where = "scaled over %s" % ", ".join(b.name for b in ep.backend_eps)
                elif ep.peer:
                    where = "behind tunnel peer %s" % ep.host
                else:
                    where = "on %s" % ep.host
                lines.append("    %-*s  %-15s %s" % (width, ep.name, ep.ip, where))
    for fn in model.functions:
        if fn.kind == "userspace":
            where = "endpoint %s (%s)" % (fn.endpoint_name, fn.vpc)
            lines.append("function %s: %s in user space on %s" % (fn.name, fn.program, where))
        else:
            where = "every host" if fn.hosts is None else ", ".join(fn.hosts)
            lines.append("function %s: %s at %s on %s" % (fn.name, fn.program, fn.stage, where))
        lines += ["  " + line for line in config_lines(model, fn.config)]
    return lines


def config_lines(model, config):
    """A function's config, one line per setting and per item of a list of
    settings (an ACL's rules), in the inventory's words. An address of
    exactly one endpoint (of the item's VPC, when it names one) is followed
    by that endpoint's name."""
    lines = []
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            lines += ["%s: %s" % (key, _setting(model, item)) for item in value]
        else:
            lines.append("%s: %s" % (key, _setting(model, value)))
    return lines


def _setting(model, value):
    if not isinstance(value, dict):
        return str(value)
    vpc = value.get("vpc")
    return ", ".join("%s %s%s" % (k, v, _whose(model, v, vpc)) for k, v in value.items())


def _whose(model, value, vpc):
    """' (name)' when value is the address (or /32) of exactly one endpoint."""
    if not isinstance(value, str):
        return ""
    ip = value[:-3] if value.endswith("/32") else value
    names = [ep.name for ep in model.endpoints() if ep.ip == ip and (vpc is None or ep.network.vpc.name == vpc)]
    return " (%s)" % names[0] if len(names) == 1 else ""
