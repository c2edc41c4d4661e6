# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters mizar.transit.validate, mizar.transit.render,
mizar.transit.diagram, mizar.transit.trace_start and
mizar.transit.trace_step: the inventory model of module_utils, for
playbooks. Their documentation is in the .yml file of each next to this
file (ansible-doc -t filter mizar.transit.render).

All read the transit hosts' settings from hostvars:

    {{ hostvars | mizar.transit.validate(groups['mizar_hosts']) }}
    {{ hostvars | mizar.transit.render(groups['mizar_hosts'], offline=true) }}
    {{ hostvars | mizar.transit.diagram(groups['mizar_hosts']) }}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mizar.transit.plugins.module_utils.model import diagram as mz_diagram
from ansible_collections.mizar.transit.plugins.module_utils.model import inventory as mdl
from ansible_collections.mizar.transit.plugins.module_utils.model import render as mz_render
from ansible_collections.mizar.transit.plugins.module_utils.model import trace as mz_trace
from ansible_collections.mizar.transit.plugins.module_utils.model import validate as mz_validate
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import InvalidInventory

_UNSET = object()


def inventory_from_hostvars(hostvars, hosts, vpcs=None, functions=None, model_version=None):
    """The inventory data of module_utils/model/inventory.py from Ansible's hostvars.

    hosts: the hosts of group mizar_hosts. vpcs, functions, model_version:
    taken from the first of those hosts whose variables have them when not
    given (group_vars/all puts them in every host's variables)."""
    if hosts is None:
        hosts = []
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("mizar.transit: hosts must be a list of host names, e.g. groups['mizar_hosts']")
    if not isinstance(hostvars, Mapping) and not hasattr(hostvars, "__getitem__"):
        raise AnsibleFilterError("mizar.transit: the input must be hostvars")
    per_host = {}
    shared = {"mizar_vpcs": vpcs, "mizar_functions": functions, "mizar_model_version": model_version,
              "mizar_tunnel_peers": None, "mizar_vpc_peerings": None}
    for name in hosts:
        hv = _host_vars(hostvars, name)
        per_host[str(name)] = dict((k, hv[k]) for k in hv if isinstance(k, str) and k.startswith("mizar_")
                                   and k not in mdl.SHARED_KEYS)
        for key in shared:
            if shared[key] is None and hv.get(key) is not None:
                shared[key] = hv.get(key)
    inventory = {"hosts": per_host, "mizar_vpcs": shared["mizar_vpcs"] or [],
                 "mizar_functions": shared["mizar_functions"] or [],
                 "mizar_tunnel_peers": shared["mizar_tunnel_peers"] or [],
                 "mizar_vpc_peerings": shared["mizar_vpc_peerings"] or []}
    if shared["mizar_model_version"] is not None:
        inventory["mizar_model_version"] = shared["mizar_model_version"]
    return inventory


def _host_vars(hostvars, name):
    try:
        hv = hostvars[name]
    except KeyError:
        raise AnsibleFilterError("mizar.transit: %r is in the host list but not in hostvars" % (name,))
    return hv if hv is not None else {}


def sources_dir(hostvars, hosts):
    """Where relative paths of user function sources are rooted: the
    inventory directory of the first transit host (docs/inventory.md), or
    None (the current directory) when Ansible knows none."""
    if not hosts:
        return None
    where = _host_vars(hostvars, hosts[0]).get("inventory_dir")
    return str(where) if where else None


def facts_from_hostvars(hostvars, hosts):
    """{host: {ip, mac}} from gathered facts of each host's mizar_interface."""
    facts = {}
    for name in hosts or []:
        hv = _host_vars(hostvars, name)
        gathered = hv.get("ansible_facts") or {}
        iface = hv.get("mizar_interface")
        if not isinstance(gathered, Mapping) or not isinstance(iface, str):
            continue
        nic = gathered.get(iface.replace("-", "_").replace(".", "_")) or {}
        if not isinstance(nic, Mapping):
            continue
        fact = {}
        ipv4 = nic.get("ipv4")
        if isinstance(ipv4, Mapping) and ipv4.get("address"):
            fact["ip"] = ipv4.get("address")
        if nic.get("macaddress"):
            fact["mac"] = nic.get("macaddress")
        if fact:
            facts[str(name)] = fact
    return facts


def validate(hostvars, hosts, vpcs=None, functions=None, model_version=None):
    """Every error of the inventory as [{path, message}]; empty when valid."""
    inventory = inventory_from_hostvars(hostvars, hosts, vpcs, functions, model_version)
    return mz_validate.validate(inventory).as_dicts()


def render(hostvars, hosts, vpcs=None, functions=None, model_version=None, facts=None, offline=False,
           limit=None, base_dir=None):
    """{host: rendering} of the valid inventory; fails with every error otherwise."""
    inventory = inventory_from_hostvars(hostvars, hosts, vpcs, functions, model_version)
    merged = facts_from_hostvars(hostvars, hosts)
    if facts is not None:
        if not isinstance(facts, Mapping):
            raise AnsibleFilterError("mizar.transit.render: facts must map host names to {ip, mac}")
        for name, fact in facts.items():
            merged[str(name)] = fact
    if base_dir is None:
        base_dir = sources_dir(hostvars, hosts)
    try:
        return mz_render.render_inventory(inventory, facts=merged, offline=bool(offline), hosts=limit,
                                          base_dir=base_dir)
    except InvalidInventory as e:
        raise AnsibleFilterError(str(e))


def diagram(hostvars, hosts, vpcs=None, functions=None, model_version=None):
    """The topology graph of the valid inventory (model/diagram.py), for
    mizar.transit.diagram; fails with every error otherwise."""
    inventory = inventory_from_hostvars(hostvars, hosts, vpcs, functions, model_version)
    try:
        return mz_diagram.diagram(inventory)
    except InvalidInventory as e:
        raise AnsibleFilterError(str(e))


def trace_start(hostvars, hosts, rendered, src=None, dst=None, proto="icmp", sport=None, dport=None, mode="live",
                max_hops=mz_trace.MAX_HOPS):
    """The first state of a trace (model/trace.py, start()) over the
    renderings of the valid inventory; a request the inventory refutes
    fails with the field named, before any host is touched."""
    inventory = inventory_from_hostvars(hostvars, hosts)
    try:
        model = mz_validate.check(inventory)[0]
        state = mz_trace.start(model, rendered, src, dst, proto or "icmp", sport, dport, mode or "live", max_hops)
    except InvalidInventory as e:
        raise AnsibleFilterError(str(e))
    except mz_trace.TraceError as e:
        raise AnsibleFilterError("mizar.transit.trace: %s; no host was touched" % e)
    state["lines"] = mz_trace.lines(state)
    return state


def trace_step(state, result, rendered):
    """The state of a trace after one hop (model/trace.py, step()): result
    is what mizar.transit.trace_hop returned for state's next hop."""
    if not isinstance(state, Mapping) or not state.get("next"):
        raise AnsibleFilterError("mizar.transit.trace_step: the input must be a trace with a next hop")
    state = mz_trace.step(state, result, rendered)
    state["lines"] = mz_trace.lines(state)
    return state


class FilterModule(object):
    """mizar.transit inventory filters."""

    def filters(self):
        return {
            "validate": validate,
            "render": render,
            "diagram": diagram,
            "trace_start": trace_start,
            "trace_step": trace_step,
        }
