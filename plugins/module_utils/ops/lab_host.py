# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab hosts: network namespaces of one machine standing in for transit hosts.

A lab host is a network namespace named after the host. Its substrate NIC is
the inner end of a veth (`interface`, carrying the host's underlay address);
the outer end (`port`) is a port of a bridge in the root namespace that all
lab hosts share, and runs the pass XDP program: the transit program on the
inner end answers with XDP_TX, and the kernel drops frames sent into a veth
whose receiving end runs no XDP program.

Managing one follows the backend contract of ops/runner.py (as
openvswitch.openvswitch does): read() the current state, plan() the list of
changes towards the wanted state, then carry them out (not in check mode).
A run changes something exactly when the plan is not empty, and summary()
of the state before and after gives the diff.

The per-host bpffs view (<bpffs_root>/<host>, see the mizar.transit.netns
connection) is created by the connection; `absent` removes it when it is
empty (or with everything in it, when purge is asked for).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import ipaddress
import os
import shutil

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out
from ansible_collections.mizar.transit.plugins.module_utils.bpf import xdp

DEFAULT_BRIDGE = "mzlab0"
DEFAULT_INTERFACE = "eth0"
DEFAULT_BPFFS_ROOT = "/sys/fs/bpf/lab"
DEFAULT_PROGRAM = "mzr_pass"
PORT_PREFIX = "ml-"

NEEDS = (PYROUTE2, LIBBPF)
MODULE = args.module_args(
    dict(
        name=dict(type="str", required=True),
        state=args.state(),
        interface=dict(type="str", default=DEFAULT_INTERFACE),
        address=dict(type="str"),
        mac=dict(type="str"),
        bridge=dict(type="str", default=DEFAULT_BRIDGE),
        port=dict(type="str"),
        xdp_object=dict(type="path"),
        xdp_program=dict(type="str", default=DEFAULT_PROGRAM),
        xdp_mode=args.xdp_mode(),
        bpffs_root=dict(type="path", default=DEFAULT_BPFFS_ROOT),
        bpffs_purge=dict(type="bool", default=False),
    ),
    required_if=[("state", "present", ("address", "xdp_object"))],
)


class LabError(BackendError):
    """A lab host that cannot be brought to the wanted state as asked."""


ERRORS = (LabError,)


def context(params):
    return "lab host %s" % params["name"]


def port_name(host):
    """The root-namespace end of a lab host's veth: 'ml-' and 10 hex digits
    of sha256(host). Deterministic, and 13 characters whatever the host name."""
    return PORT_PREFIX + hashlib.sha256(host.encode("utf-8")).hexdigest()[:10]


class Spec:
    """What one lab host should be. Checked on construction (LabError)."""

    headers = None

    def __init__(self, name, state="present", interface=DEFAULT_INTERFACE, address=None, mac=None,
                 bridge=DEFAULT_BRIDGE, port=None, xdp_object=None, xdp_program=DEFAULT_PROGRAM,
                 xdp_mode="native", bpffs_root=DEFAULT_BPFFS_ROOT, bpffs_purge=False):
        problem = addr.netns_problem(name)
        if problem:
            raise LabError("name: " + problem)
        self.name = name
        self.state = state
        self.interface = interface
        self.bridge = bridge
        self.port = port or port_name(name)
        for what, ifname in (("interface", interface), ("bridge", bridge), ("port", self.port)):
            problem = addr.ifname_problem(ifname)
            if problem:
                raise LabError("%s: %s" % (what, problem))
        if self.port == bridge:
            raise LabError("port and bridge must have different names (both are %s)" % bridge)
        self.address = None
        self.mac = None
        if state == "present":
            if not address or "/" not in str(address):
                raise LabError("address is required with state=present, as address/prefix (e.g. 192.168.77.1/24)")
            try:
                iface_addr = ipaddress.IPv4Interface(str(address))
            except ValueError as e:
                raise LabError("address: %s" % e)
            self.address = "%s/%d" % (iface_addr.ip, iface_addr.network.prefixlen)
            if mac:
                try:
                    self.mac = addr.parse_mac(mac)
                except ValueError as e:
                    raise LabError("mac: %s" % e)
            if not xdp_object:
                raise LabError("xdp_object is required with state=present: the pass program's object "
                               "(.build/bpf/pass.bpf.o of the collection)")
            if not os.path.isfile(xdp_object):
                raise LabError("xdp_object %s does not exist (scripts/bootstrap builds it)" % xdp_object)
            if xdp_mode not in xdp.MODES:
                raise LabError("xdp_mode must be one of %s, not %r" % (", ".join(sorted(xdp.MODES)), xdp_mode))
        self.xdp_object = xdp_object
        self.xdp_program = xdp_program
        self.xdp_mode = xdp_mode
        self.bpffs_root = os.path.normpath(bpffs_root)
        self.bpffs_view = os.path.join(self.bpffs_root, name)
        self.bpffs_purge = bpffs_purge

    @classmethod
    def from_params(cls, params):
        return cls(params["name"], state=params["state"], interface=params["interface"],
                   address=params["address"], mac=params["mac"], bridge=params["bridge"], port=params["port"],
                   xdp_object=params["xdp_object"], xdp_program=params["xdp_program"],
                   xdp_mode=params["xdp_mode"], bpffs_root=params["bpffs_root"],
                   bpffs_purge=params["bpffs_purge"])


# ---------------------------------------------------------------- reading


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def read(spec):
    """The current state of the lab host of spec, as plain data; for
    present, with the tag of spec's pass program as this kernel loads it."""
    links = {lk["ifname"]: lk for lk in netlink.links()}
    by_index = dict((lk["index"], lk) for lk in links.values())
    state = {"netns": nsenter.netns_exists(spec.name), "bridge": None, "port": None, "interface": None,
             "lo_up": False, "xdp": None}

    br = links.get(spec.bridge)
    if br is not None:
        state["bridge"] = {"index": br["index"], "kind": br["kind"], "up": br["up"],
                           "ipv6_off": netlink.ipv6_disabled(spec.bridge, None),
                           "ports": sorted(lk["ifname"] for lk in links.values() if lk["master"] == br["index"])}

    port = links.get(spec.port)
    if port is not None:
        master = by_index.get(port["master"]) if port["master"] else None
        state["port"] = {"index": port["index"], "kind": port["kind"], "up": port["up"],
                         "master": master["ifname"] if master else None, "peer_index": port["peer_index"],
                         "ipv6_off": netlink.ipv6_disabled(spec.port, None)}
        if port["kind"] == "veth":
            q = xdp.query(port["index"])
            if q["attached"]:
                state["xdp"] = {"prog_id": q["prog_id"], "prog_name": q["prog_name"], "tag": q["tag"],
                                "mode": q["mode"], "via": q["via"]}

    if state["netns"]:
        inner = netlink.link(spec.interface, spec.name)
        if inner is not None:
            state["interface"] = {"index": inner["index"], "kind": inner["kind"], "up": inner["up"],
                                  "mac": inner["mac"], "peer_index": inner["peer_index"],
                                  "addresses": sorted(netlink.addrs(spec.interface, spec.name)),
                                  "ipv6_off": netlink.ipv6_disabled(spec.interface, spec.name)}
        lo = netlink.link("lo", spec.name)
        state["lo_up"] = bool(lo and lo["up"])

    state["bpffs_view"] = _listdir(spec.bpffs_view)
    state["bpffs_root"] = _listdir(spec.bpffs_root)
    state["tag"] = program_tag(spec) if spec.state == "present" else None
    return state


def _paired(state):
    """Both veth ends exist and are each other's peer."""
    port, inner = state["port"], state["interface"]
    return (port is not None and inner is not None and port["kind"] == "veth" and inner["kind"] == "veth" and
            port["peer_index"] == inner["index"] and inner["peer_index"] == port["index"])


def program_tag(spec):
    """Tag of spec's pass program as this kernel loads it (loaded, not attached)."""
    with libbpf.BpfObject(spec.xdp_object) as obj:
        obj.load()
        return obj.program(spec.xdp_program).info()["tag"]


# ---------------------------------------------------------------- planning


def plan(spec, state):
    """The changes that bring state to spec. Raises LabError when the state
    is not ours to change."""
    return _plan_present(spec, state) if spec.state == "present" else _plan_absent(spec, state)


def _plan_present(spec, state):
    tag = state["tag"]
    ch = []
    name, ifname, port = spec.name, spec.interface, spec.port
    br = state["bridge"]
    if br is not None and br["kind"] != "bridge":
        raise LabError("%s exists and is not a bridge (it is a %s): choose another bridge name" % (
            spec.bridge, br["kind"] or "plain device"))
    if state["port"] is not None and state["port"]["kind"] != "veth":
        raise LabError("%s exists and is not a veth: choose another port name" % port)
    if state["interface"] is not None and state["interface"]["kind"] != "veth":
        raise LabError("%s in namespace %s exists and is not a veth (%s): it is not a lab host's" % (
            ifname, name, state["interface"]["kind"] or "plain device"))

    if not state["netns"]:
        ch.append(Step("create network namespace %s" % name, netlink.netns_add, name))
    if br is None:
        ch.append(Step("create bridge %s" % spec.bridge, netlink.bridge_add, spec.bridge))
    elif not br["up"]:
        ch.append(Step("set bridge %s up" % spec.bridge, netlink.bridge_add, spec.bridge))
    if br is None or not br["ipv6_off"]:
        ch.append(Step("disable IPv6 on %s" % spec.bridge, netlink.disable_ipv6, spec.bridge, None))

    fresh = not _paired(state)
    if fresh:
        if state["port"] is not None or state["interface"] is not None:
            ch.append(Step("delete the unpaired veth ends (%s, %s in %s)" % (port, ifname, name),
                           _delete_ends, spec))
        ch.append(Step("create veth %s <-> %s in %s" % (port, ifname, name),
                       netlink.veth_add, port, ifname, peer_netns=name))
    pst = None if fresh else state["port"]
    ist = None if fresh else state["interface"]

    if pst is None or not pst["ipv6_off"]:
        ch.append(Step("disable IPv6 on %s" % port, netlink.disable_ipv6, port, None))
    if ist is None or not ist["ipv6_off"]:
        ch.append(Step("disable IPv6 on %s in %s" % (ifname, name), netlink.disable_ipv6, ifname, name))
    if pst is None or pst["master"] != spec.bridge:
        ch.append(Step("make %s a port of %s" % (port, spec.bridge), netlink.link_set, port, master=spec.bridge))
    if spec.mac and (ist is None or (ist["mac"] or "").lower() != spec.mac):
        ch.append(Step("set the MAC of %s in %s to %s" % (ifname, name, spec.mac),
                       netlink.link_set, ifname, netns=name, mac=spec.mac))
    xdp_now = None if fresh else state["xdp"]
    if xdp_now is None:
        ch.append(Step("attach XDP program %s (%s) to %s" % (spec.xdp_program, spec.xdp_mode, port),
                       _attach, spec, None))
    elif xdp_now["prog_name"] != spec.xdp_program[:15]:
        raise LabError("%s runs XDP program %s (id %d), not %s: it is not ours, leaving it" % (
            port, xdp_now["prog_name"], xdp_now["prog_id"], spec.xdp_program))
    elif xdp_now["tag"] != tag or xdp_now["mode"] != spec.xdp_mode:
        ch.append(Step("replace XDP program %s (%s, tag %s) on %s with %s (%s, tag %s)" % (
            xdp_now["prog_name"], xdp_now["mode"], xdp_now["tag"], port, spec.xdp_program, spec.xdp_mode, tag),
            _attach, spec, xdp_now["prog_id"]))
    if pst is None or not pst["up"]:
        ch.append(Step("set %s up" % port, netlink.link_set, port, up=True))
    if ist is None or not ist["up"]:
        ch.append(Step("set %s in %s up" % (ifname, name), netlink.link_set, ifname, netns=name, up=True))
    if not state["lo_up"]:
        ch.append(Step("set lo in %s up" % name, netlink.link_set, "lo", netns=name, up=True))
    have = ist["addresses"] if ist is not None else []
    for a in have:
        if a != spec.address:
            ch.append(Step("remove address %s from %s in %s" % (a, ifname, name), netlink.addr_del, ifname, a,
                           netns=name))
    if spec.address not in have:
        ch.append(Step("add address %s to %s in %s" % (spec.address, ifname, name),
                       netlink.addr_add, ifname, spec.address, netns=name))
    return ch


def _plan_absent(spec, state):
    ch = []
    if state["port"] is not None:
        if state["port"]["kind"] != "veth":
            raise LabError("%s exists and is not a veth: not deleting it" % spec.port)
        ch.append(Step("delete veth %s (and %s in %s)" % (spec.port, spec.interface, spec.name),
                       netlink.link_del, spec.port))
    if state["netns"]:
        ch.append(Step("delete network namespace %s" % spec.name, netlink.netns_del, spec.name))
    br = state["bridge"]
    if br is not None and br["kind"] == "bridge" and not [p for p in br["ports"] if p != spec.port]:
        ch.append(Step("delete bridge %s (no ports left)" % spec.bridge, netlink.link_del, spec.bridge))
    view = state["bpffs_view"]
    if view is not None and (not view or spec.bpffs_purge):
        what = "remove bpffs view %s" % spec.bpffs_view
        if view:
            what += " with its %d entr%s (%s)" % (len(view), "y" if len(view) == 1 else "ies", ", ".join(view))
        ch.append(Step(what, _rm_view, spec.bpffs_view))
        view = None
    root = state["bpffs_root"]
    if root is not None and view is None and not [e for e in root if e != spec.name]:
        ch.append(Step("remove %s (empty)" % spec.bpffs_root, _rmdir_if_empty, spec.bpffs_root))
    return ch


def leftovers(spec, state):
    """What absent leaves behind on purpose, for a warning."""
    view = state["bpffs_view"]
    if spec.state == "absent" and view and not spec.bpffs_purge:
        return ["%s holds %s: run the teardown playbook (or bpffs_purge=true) to remove them" % (
            spec.bpffs_view, ", ".join(view))]
    return []


# ---------------------------------------------------------------- actions


def _delete_ends(spec):
    netlink.link_del(spec.port)
    if nsenter.netns_exists(spec.name):
        netlink.link_del(spec.interface, spec.name)


def _attach(spec, old_prog_id):
    """Attach spec's program to the port by netlink: the attachment belongs to
    the interface and outlives this process (and goes with the veth), with no
    pin to clean up. old_prog_id: our older program, replaced atomically."""
    with libbpf.BpfObject(spec.xdp_object) as obj:
        obj.load()
        prog = obj.program(spec.xdp_program)
        return xdp.attach(spec.port, prog, spec.xdp_mode, via="netlink", switch_mode=True,
                          ours=[old_prog_id] if old_prog_id else ())["changed"]


def _rm_view(path):
    """Remove a bpffs directory and the pins in it (unlinking a pin drops
    the reference it held)."""
    shutil.rmtree(path)
    return True


def _rmdir_if_empty(path):
    try:
        os.rmdir(path)
        return True
    except (IOError, OSError) as e:
        if e.errno in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            return False  # gone, or another lab host's view appeared meanwhile
        raise


# ---------------------------------------------------------------- reporting


def summary(spec, state):
    """The managed properties of a state, for diffs (equal to desired() once
    the host is as spec wants it)."""
    out = {"netns": spec.name if state["netns"] else None,
           "bridge": spec.bridge if state["bridge"] is not None else None,
           "port": None, "interface": None,
           "bpffs_view": spec.bpffs_view if state["bpffs_view"] is not None else None}
    if state["port"] is not None:
        out["port"] = {"name": spec.port, "master": state["port"]["master"], "up": state["port"]["up"],
                       "xdp": "%s (%s)" % (state["xdp"]["prog_name"], state["xdp"]["mode"]) if state["xdp"] else None}
    if state["interface"] is not None:
        inner = state["interface"]
        out["interface"] = {"name": spec.interface, "up": inner["up"], "addresses": inner["addresses"]}
        if spec.mac:
            out["interface"]["mac"] = inner["mac"]
    return out


def desired(spec, state):
    """summary() of the state spec wants, predicted from the current state."""
    if spec.state == "present":
        out = {"netns": spec.name, "bridge": spec.bridge,
               "port": {"name": spec.port, "master": spec.bridge, "up": True,
                        "xdp": "%s (%s)" % (spec.xdp_program[:15], spec.xdp_mode)},
               "interface": {"name": spec.interface, "up": True, "addresses": [spec.address]},
               "bpffs_view": spec.bpffs_view if state["bpffs_view"] is not None else None}
        if spec.mac:
            out["interface"]["mac"] = spec.mac
        return out
    br = state["bridge"]
    keep_bridge = br is not None and (br["kind"] != "bridge" or [p for p in br["ports"] if p != spec.port])
    keep_view = state["bpffs_view"] is not None and bool(state["bpffs_view"]) and not spec.bpffs_purge
    return {"netns": None, "bridge": spec.bridge if keep_bridge else None, "port": None, "interface": None,
            "bpffs_view": spec.bpffs_view if keep_view else None}


def facts(spec, state):
    """What the module returns about the host besides the changes."""
    inner, port = state["interface"], state["port"]
    return {"netns": spec.name if state["netns"] else None, "interface": spec.interface, "port": spec.port,
            "bridge": spec.bridge, "address": spec.address,
            "ifindex": inner["index"] if inner else None, "mac": inner["mac"] if inner else None,
            "port_ifindex": port["index"] if port else None,
            "xdp": dict((k, state["xdp"][k]) for k in ("prog_id", "prog_name", "mode")) if state["xdp"] else None}


def ensure(spec, check_mode=False):
    """Bring the lab host of spec to its state. Returns {changed, actions,
    changes (the same texts), diff: {before, after}, warnings, and
    facts()}."""
    try:
        before = read(spec)
    except (netlink.NetlinkError, libbpf.BpfError, xdp.XdpError, OSError) as e:
        raise LabError("lab host %s: reading its state: %s" % (spec.name, e))
    steps = plan(spec, before)
    actions = carry_out(steps, "lab host %s" % spec.name, check_mode=check_mode, error=LabError)
    if steps and not check_mode:
        after = read(spec)
        after_summary = summary(spec, after)
    else:
        after = before
        after_summary = desired(spec, before) if steps else summary(spec, before)
    result = {"changed": bool(steps), "actions": actions, "changes": actions,
              "diff": {"before": summary(spec, before), "after": after_summary},
              "warnings": leftovers(spec, after)}
    result.update(facts(spec, after))
    return result
