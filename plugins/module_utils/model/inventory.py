# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tenant model: the inventory read into typed, normalized objects.

build() reads the inventory data (see docs/inventory.md) and reports what
is wrong with each item on its own: unknown keys, wrong types, malformed
addresses and names, missing fields, fields that do not fit the item's kind.
Relations between items (containment, duplicates, references to hosts and
endpoints, capacities) are validate.py's concern; it runs on what build()
returns. A field that could not be read is None, and the checks that need
it skip it, so each defect is reported once.

The inventory data is one mapping:

    {"mizar_model_version": 1,           # optional
     "mizar_vpcs": [...],
     "mizar_functions": [...],           # optional
     "mizar_tunnel_peers": [...],        # optional
     "mizar_vpc_peerings": [...],        # optional
     "hosts": {"h1": {"mizar_interface": "eth0", ...}, ...}}   # group mizar_hosts

Defaults (defaults.py) and derived values are filled in here: xdp mode,
pin dir, objects directory, endpoint MACs, host-side interface names,
gateways.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.mizar.transit.plugins.module_utils.model import addr
from ansible_collections.mizar.transit.plugins.module_utils.model.capacity import STAGES
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import (
    BPFFS_ROOT, DEFAULT_BPF_DIR, DEFAULT_FUNCTION_DIR, DEFAULT_PIN_DIR, DEFAULT_SUPERVISOR, DEFAULT_SWITCH_MODE,
    DEFAULT_XDP_MODE, SUPERVISORS, XDP_MODES)
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import ErrorList, close_match, suggest
from ansible_collections.mizar.transit.plugins.module_utils.model.maglev import MAX_WEIGHT

MODEL_VERSION = 1

INVENTORY_KEYS = ("mizar_model_version", "mizar_vpcs", "mizar_functions", "mizar_tunnel_peers", "mizar_vpc_peerings",
                  "hosts")
HOST_KEYS = ("mizar_interface", "mizar_underlay_ip", "mizar_underlay_mac", "mizar_xdp_mode", "mizar_bpf_pin_dir",
             "mizar_bpf_dir", "mizar_xdp_switch_mode", "mizar_prometheus_textfile", "mizar_function_supervisor",
             "mizar_function_dir")
# mizar_* variables that live in hostvars too but are not per-host settings
# (mizar_errors and mizar_rendered are the playbooks' own facts, mizar_render_dir
# and mizar_diagram_* their settings, often given with -e)
SHARED_KEYS = ("mizar_vpcs", "mizar_functions", "mizar_model_version", "mizar_render_dir", "mizar_tunnel_peers",
               "mizar_vpc_peerings", "mizar_errors", "mizar_rendered", "mizar_diagram_path", "mizar_diagram_png")
# Settings of the collection's roles, never taken for typos of host settings.
ROLE_KEYS = ("mizar_build_dir", "mizar_manage_packages", "mizar_function_sources", "mizar_stages")
# What Ansible reads as true and false (a value given with -e is a string)
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
VPC_KEYS = ("name", "vni", "cidr", "dividers", "networks")
NETWORK_KEYS = ("name", "cidr", "bouncers", "endpoints")
ENDPOINT_KEYS = ("name", "ip", "host", "mac", "type", "backends", "bypass_decap", "netns", "iface", "tunnel_peer",
                 "mtu")
PEER_KEYS = ("name", "ip", "mac")
PEERING_KEYS = ("name", "vpcs")
FUNCTION_KEYS = ("name", "kind", "stage", "program", "hosts", "vpc", "endpoint", "config")
# a function's kind: a BPF program in a stage of the transit hosts, or a
# program in user space on a bypass_decap endpoint
FUNCTION_KINDS = ("xdp", "userspace")
ENDPOINT_TYPES = ("simple", "scaled")
GATEWAY = "gateway"
MIN_PREFIXLEN = 30  # a network needs a network, a gateway and a broadcast address, and room for one endpoint


class Host:
    __slots__ = ("name", "path", "interface", "ip", "mac", "xdp_mode", "pin_dir", "bpf_dir", "switch_mode",
                 "prometheus_textfile", "supervisor", "function_dir")

    def __init__(self, name):
        self.name = name
        self.path = "hostvars[%s]" % name
        self.interface = None
        self.ip = None
        self.mac = None
        self.xdp_mode = DEFAULT_XDP_MODE
        self.pin_dir = DEFAULT_PIN_DIR
        self.bpf_dir = DEFAULT_BPF_DIR
        self.switch_mode = DEFAULT_SWITCH_MODE
        self.prometheus_textfile = None  # the counters are exported only where it is set
        self.supervisor = DEFAULT_SUPERVISOR
        self.function_dir = DEFAULT_FUNCTION_DIR


class TunnelPeer:
    """A Geneve tunnel endpoint on the substrate that this collection does
    not manage (a Linux geneve device, a hardware VTEP): endpoints behind it
    are reached by sending to its address."""

    __slots__ = ("path", "name", "ip", "mac")

    def __init__(self, path):
        self.path = path
        self.name = self.ip = self.mac = None


class Vpc:
    __slots__ = ("path", "name", "vni", "cidr", "net", "plen", "dividers", "networks")

    def __init__(self, path):
        self.path = path
        self.name = self.vni = self.cidr = self.net = self.plen = None
        self.dividers = []
        self.networks = []


class Network:
    __slots__ = ("path", "vpc", "name", "fullname", "cidr", "net", "plen", "bouncers", "endpoints", "gateway")

    def __init__(self, path, vpc):
        self.path = path
        self.vpc = vpc
        self.name = self.fullname = self.cidr = self.net = self.plen = None
        self.bouncers = []
        self.endpoints = []
        self.gateway = None  # an Endpoint of type gateway, when the CIDR is usable

    @property
    def sort_key(self):
        return (self.vpc.vni, self.net, self.plen)


class Endpoint:
    """A simple or scaled endpoint, or a network's gateway (type 'gateway')."""

    __slots__ = ("path", "network", "name", "fullname", "ip", "ip_int", "host", "mac", "type", "backends",
                 "weights", "backend_eps", "bypass_decap", "netns", "iface", "host_iface", "vni", "mac_given", "key", "peer",
                 "mtu")

    def __init__(self, path, network):
        self.path = path
        self.network = network
        self.name = self.fullname = self.ip = self.ip_int = self.host = self.mac = None
        self.type = "simple"
        self.backends = []
        self.weights = []  # a scaled endpoint's: each backend's weight, in the order of backends
        self.backend_eps = []  # resolved by validate.py
        self.bypass_decap = False
        self.netns = self.iface = self.host_iface = None
        self.vni = None
        self.mac_given = False
        self.key = None  # (vni, ip as integer): the endpoints map's key and sort order
        self.peer = False  # behind a tunnel peer: host names the peer, nothing is made for it
        self.mtu = None  # None: derived on the host from its substrate NIC (mizar.transit.endpoint)


class Function:
    """A function of mizar_functions. kind xdp: a program in a stage of
    hosts; kind userspace: a program run on the endpoint named by vpc and
    endpoint_name, whose Endpoint validate.py sets."""

    __slots__ = ("path", "name", "kind", "stage", "program", "hosts", "config", "vpc", "endpoint_name", "endpoint")

    def __init__(self, path):
        self.path = path
        self.name = self.stage = self.program = None
        self.kind = "xdp"
        self.hosts = None  # None: every transit host
        self.config = {}
        self.vpc = self.endpoint_name = self.endpoint = None


class VpcPeering:
    """Two VPCs whose endpoints reach each other through their dividers.
    vpc_names: the names as written (None where one could not be read);
    vpcs: the two Vpc objects, set by validate.py when the peering is valid."""

    __slots__ = ("path", "name", "vpc_names", "vpcs")

    def __init__(self, path):
        self.path = path
        self.name = None
        self.vpc_names = []
        self.vpcs = None


class Model:
    __slots__ = ("version", "hosts", "vpcs", "functions", "peers", "peerings")

    def __init__(self):
        self.version = MODEL_VERSION
        self.hosts = {}  # name -> Host, in group order
        self.peers = {}  # name -> TunnelPeer
        self.vpcs = []
        self.functions = []
        self.peerings = []  # VpcPeering

    def networks(self):
        for vpc in self.vpcs:
            yield from vpc.networks

    def endpoints(self):
        for vpc in self.vpcs:
            for net in vpc.networks:
                yield from net.endpoints


# ---------------------------------------------------------------- field readers

_MISSING = object()


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean (%s)" % value
    if isinstance(value, int):
        return "an integer (%d)" % value
    if isinstance(value, str):
        return "a string (%r)" % value
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % type(value).__name__


def _is_list(value):
    return isinstance(value, (list, tuple))


def _check_keys(raw, allowed, path, errors, what):
    for key in raw:
        if key not in allowed:
            errors.add("%s.%s" % (path, key), "unknown key %r in %s%s; the allowed keys are: %s"
                       % (key, what, suggest(key, allowed), ", ".join(allowed)))


def _mapping(raw, path, errors, what):
    if isinstance(raw, Mapping):
        return True
    errors.add(path, "%s must be a mapping (key: value lines), not %s" % (what, _kind(raw)))
    return False


def _string(raw, key, path, errors, required=True):
    value = raw.get(key, _MISSING)
    if value is _MISSING or (value is None and not required):
        if required:
            errors.add("%s.%s" % (path, key), "%s is required: add it" % key)
        return None
    if not isinstance(value, str) or not value:
        errors.add("%s.%s" % (path, key), "%s must be a non-empty string, not %s" % (key, _kind(value)))
        return None
    return str(value)


def _name(raw, path, errors):
    name = _string(raw, "name", path, errors)
    if name is not None:
        problem = addr.name_problem(name)
        if problem:
            errors.add(path + ".name", problem)
            return None
    return name


def _list(raw, key, path, errors):
    """An optional list; absent or null is empty. None when it is not a list."""
    value = raw.get(key)
    if value is None:
        return []
    if not _is_list(value):
        errors.add("%s.%s" % (path, key), "%s must be a list, not %s" % (key, _kind(value)))
        return None
    return value


def _host_names(raw, key, path, errors):
    """A list of inventory host names (their membership is checked by validate.py)."""
    items = _list(raw, key, path, errors)
    if items is None:
        return []
    names = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            errors.add("%s.%s[%d]" % (path, key, i), "a host name must be a non-empty string, not %s" % _kind(item))
        else:
            names.append(str(item))
    return names


def _cidr(raw, path, errors):
    text = _string(raw, "cidr", path, errors)
    if text is None:
        return None
    try:
        return addr.parse_cidr(text)
    except ValueError as e:
        errors.add(path + ".cidr", "%s; IPv4 CIDRs only" % e)
        return None


# ---------------------------------------------------------------- the inventory


def build(inventory, errors=None):
    """Inventory data -> Model, reporting per-item defects into errors."""
    if errors is None:
        errors = ErrorList()
    model = Model()
    if not _mapping(inventory, "inventory", errors, "the inventory data"):
        return model
    _check_keys(inventory, INVENTORY_KEYS, "inventory", errors, "the inventory data")

    version = inventory.get("mizar_model_version")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version != MODEL_VERSION:
            errors.add("mizar_model_version", "model version %r is not supported: this collection reads version %d "
                       "(see docs/inventory.md, 'Model versions', for migrations)" % (version, MODEL_VERSION))

    hosts = inventory.get("hosts")
    if hosts is None:
        hosts = {}
    if _mapping(hosts, "hosts", errors, "the hosts of group mizar_hosts (host name -> its variables)"):
        for name, hvars in hosts.items():
            host = _host(name, hvars, errors)
            if host is not None:
                model.hosts[host.name] = host

    for path, raw in _items(inventory, "mizar_vpcs", "VPCs", errors):
        vpc = _vpc(raw, path, errors)
        if vpc is not None:
            model.vpcs.append(vpc)

    for path, raw in _items(inventory, "mizar_functions", "functions", errors):
        fn = _function(raw, path, errors)
        if fn is not None:
            model.functions.append(fn)

    for path, raw in _items(inventory, "mizar_tunnel_peers", "tunnel peers", errors):
        peer = _peer(raw, path, errors)
        if peer is not None and peer.name is not None:
            if peer.name in model.peers:
                errors.add(peer.path + ".name", "tunnel peer %r is already %s: name each peer once"
                           % (peer.name, model.peers[peer.name].path))
            else:
                model.peers[peer.name] = peer

    for path, raw in _items(inventory, "mizar_vpc_peerings", "VPC peerings", errors):
        peering = _peering(raw, path, errors)
        if peering is not None:
            model.peerings.append(peering)
    return model


def _named(raw, path, errors, what, keys, cls):
    """A new cls(path) for the mapping raw, its keys checked and its name
    read, or None when raw is no mapping."""
    if not _mapping(raw, path, errors, what):
        return None
    _check_keys(raw, keys, path, errors, what)
    item = cls(path)
    item.name = _name(raw, path, errors)
    return item


def _peering(raw, path, errors):
    peering = _named(raw, path, errors, "a VPC peering", PEERING_KEYS, VpcPeering)
    if peering is not None:
        peering.vpc_names = _vpc_pair(raw.get("vpcs"), path + ".vpcs", errors)
    return peering


def _vpc_pair(names, path, errors):
    """The two VPC names of a peering (None for one that is no name), or []."""
    if names is None:
        errors.add(path, "vpcs is required: the names of the two VPCs (of mizar_vpcs) to peer")
        return []
    if not _is_list(names) or len(names) != 2:
        errors.add(path, "vpcs must be a list of the names of two VPCs, not %s"
                   % ("a list of %d" % len(names) if _is_list(names) else _kind(names)))
        return []
    out = []
    for i, name in enumerate(names):
        good = isinstance(name, str) and name
        if not good:
            errors.add("%s[%d]" % (path, i), "a VPC is named by a non-empty string, not %s" % _kind(name))
        out.append(str(name) if good else None)
    return out


def _items(inventory, key, what, errors):
    """[(path, item)] of the inventory's list key; a missing list is empty,
    anything else that is no list is reported."""
    items = inventory.get(key)
    if items is None:
        return []
    if not _is_list(items):
        errors.add(key, "%s must be a list of %s, not %s" % (key, what, _kind(items)))
        return []
    return [("%s[%d]" % (key, i), raw) for i, raw in enumerate(items)]


def _peer(raw, path, errors):
    peer = _named(raw, path, errors, "a tunnel peer", PEER_KEYS, TunnelPeer)
    if peer is None:
        return None
    ip = raw.get("ip")
    if ip is None:
        errors.add(path + ".ip", "ip is required: the peer's substrate IPv4 address, where its Geneve tunnel ends")
    else:
        try:
            addr.parse_ipv4(ip)
            peer.ip = str(ip)
        except ValueError as e:
            errors.add(path + ".ip", "%s: give the peer's substrate IPv4 address" % e)
    mac = raw.get("mac")
    if mac is None:
        errors.add(path + ".mac", "mac is required: the MAC of the peer's substrate NIC (or of the router towards it)")
    else:
        try:
            peer.mac = addr.parse_mac(mac)
        except ValueError as e:
            errors.add(path + ".mac", "%s: give the MAC of the peer's substrate NIC" % e)
    return peer


def _host(name, hvars, errors):
    if not isinstance(name, str) or not name:
        errors.add("hosts", "a host name must be a non-empty string, not %s" % _kind(name))
        return None
    host = Host(str(name))
    path = host.path
    if hvars is None:
        hvars = {}
    if not _mapping(hvars, path, errors, "the variables of host %s" % name):
        return host
    for key in hvars:
        if (isinstance(key, str) and key.startswith("mizar_") and key not in HOST_KEYS and key not in SHARED_KEYS
                and key not in ROLE_KEYS and not key.startswith("mizar_lab_")):
            # Other mizar_* variables may belong to roles; a near miss of a host setting is a typo.
            near = close_match(key, HOST_KEYS)
            if near:
                errors.add("%s.%s" % (path, key), 'unknown host variable %r (did you mean "%s"?)' % (key, near))

    iface = hvars.get("mizar_interface")
    if iface is None:
        errors.add(path + ".mizar_interface", "mizar_interface is required: set it to the substrate NIC "
                   "of %s (e.g. eth0)" % name)
    else:
        problem = addr.ifname_problem(iface)
        if problem:
            errors.add(path + ".mizar_interface", "%s: set mizar_interface to the name of the substrate NIC" % problem)
        else:
            host.interface = str(iface)

    ip = hvars.get("mizar_underlay_ip")
    if ip is not None:
        try:
            addr.parse_ipv4(ip)
            host.ip = str(ip)
        except ValueError as e:
            errors.add(path + ".mizar_underlay_ip", "%s: set the host's substrate IPv4 address, or leave it out "
                       "to discover it from facts" % e)

    mac = hvars.get("mizar_underlay_mac")
    if mac is not None:
        try:
            host.mac = addr.parse_mac(mac)
        except ValueError as e:
            errors.add(path + ".mizar_underlay_mac", "%s; or leave it out to discover it from facts" % e)

    mode = hvars.get("mizar_xdp_mode")
    if mode is not None:
        if mode not in XDP_MODES:
            errors.add(path + ".mizar_xdp_mode", "XDP mode %r is not one of %s%s (native is the default; generic "
                       "works on any NIC, slower)" % (mode, ", ".join(XDP_MODES), suggest(mode, XDP_MODES)))
        else:
            host.xdp_mode = str(mode)

    host.pin_dir = _setting(hvars, "mizar_bpf_pin_dir", pin_dir_problem, path, errors) or host.pin_dir

    bpf_dir = hvars.get("mizar_bpf_dir")
    if bpf_dir is not None:
        if not isinstance(bpf_dir, str) or not bpf_dir.startswith("/") or bpf_dir == "/":
            errors.add(path + ".mizar_bpf_dir", "the directory for the BPF objects must be an absolute path other "
                       "than /, not %s (default %s)" % (_kind(bpf_dir), DEFAULT_BPF_DIR))
        else:
            host.bpf_dir = str(bpf_dir).rstrip("/")

    switch = hvars.get("mizar_xdp_switch_mode")
    if switch is not None:
        flag = _boolean(switch)
        if flag is None:
            errors.add(path + ".mizar_xdp_switch_mode", "mizar_xdp_switch_mode must be true or false, not %s"
                       % _kind(switch))
        else:
            host.switch_mode = flag

    host.prometheus_textfile = _setting(hvars, "mizar_prometheus_textfile", textfile_problem, path, errors)

    supervisor = hvars.get("mizar_function_supervisor")
    if supervisor is not None:
        if supervisor not in SUPERVISORS:
            errors.add(path + ".mizar_function_supervisor", "%r is not one of %s%s: what keeps the host's user-space "
                       "functions running (systemd is the default; process where PID 1 is not systemd)"
                       % (supervisor, ", ".join(SUPERVISORS), suggest(supervisor, SUPERVISORS)))
        else:
            host.supervisor = str(supervisor)

    fn_dir = hvars.get("mizar_function_dir")
    if fn_dir is not None:
        if not isinstance(fn_dir, str) or not fn_dir.startswith("/") or fn_dir.rstrip("/") == "":
            errors.add(path + ".mizar_function_dir", "the directory for the user-space functions must be an absolute "
                       "path other than /, not %s (default %s)" % (_kind(fn_dir), DEFAULT_FUNCTION_DIR))
        else:
            host.function_dir = str(fn_dir).rstrip("/")
    return host


def _setting(hvars, key, problem_of, path, errors):
    """hvars[key] as a string, or None when it is absent or wrong
    (problem_of(value): why it is wrong, or None; added to errors)."""
    value = hvars.get(key)
    if value is None:
        return None
    problem = problem_of(value)
    if problem:
        errors.add("%s.%s" % (path, key), problem)
        return None
    return str(value)


def textfile_problem(value):
    """Why value cannot be mizar_prometheus_textfile, or None: the file node_exporter's textfile
    collector reads, an absolute path of a file named *.prom."""
    if not isinstance(value, str) or not value.startswith("/") or "/../" in value + "/" or \
            not value.endswith(".prom") or value.rsplit("/", 1)[1] == ".prom":
        return ("the file for node_exporter's textfile collector must be an absolute path of a file named *.prom "
                "(the collector reads no other), such as /var/lib/prometheus/node-exporter/mizar.prom, not %s"
                % _kind(value))
    return None


def _boolean(value):
    """True or False as Ansible reads value (a boolean, 0 or 1, or a word
    like yes or false), or None when it is none of these."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def pin_dir_problem(path):
    """Why path is not a usable pin directory, or None. It must be absolute,
    normalized, and lie below a bpffs mount: /sys/fs/bpf, or a directory
    whose name says bpf (e.g. a dedicated mount /run/bpffs)."""
    if not isinstance(path, str) or not path.startswith("/"):
        return ("the BPF pin directory must be an absolute path below the bpffs mount, not %s "
                "(default %s)" % (_kind(path), DEFAULT_PIN_DIR))
    parts = path.split("/")[1:]
    if path.endswith("/") or "" in parts or "." in parts or ".." in parts or any(c.isspace() for c in path):
        return "%r is not a normalized path: no '.', '..', '//', spaces or trailing '/' (e.g. %s)" % (path, DEFAULT_PIN_DIR)
    if path.startswith(BPFFS_ROOT + "/"):
        return None
    if len(parts) >= 2 and any("bpf" in p for p in parts[:-1]):
        return None
    return ("%r is not below a bpffs mount: pins only live on bpffs, mounted at %s (use e.g. %s)"
            % (path, BPFFS_ROOT, DEFAULT_PIN_DIR))


def _vpc(raw, path, errors):
    if not _mapping(raw, path, errors, "a VPC"):
        return None
    _check_keys(raw, VPC_KEYS, path, errors, "a VPC")
    vpc = Vpc(path)
    vpc.name = _name(raw, path, errors)
    vni = raw.get("vni", _MISSING)
    if vni is _MISSING or vni is None:
        errors.add(path + ".vni", "vni is required: give the VPC a unique Geneve VNI from 1 to %d" % addr.MAX_VNI)
    elif isinstance(vni, bool) or not isinstance(vni, int):
        errors.add(path + ".vni", "vni must be an integer from 1 to %d, not %s" % (addr.MAX_VNI, _kind(vni)))
    elif not 1 <= vni <= addr.MAX_VNI:
        errors.add(path + ".vni", "vni %d is out of range: a VNI is 1 to %d (24 bits, 0 is reserved)"
                   % (vni, addr.MAX_VNI))
    else:
        vpc.vni = int(vni)
    parsed = _cidr(raw, path, errors)
    if parsed:
        vpc.net, vpc.plen = parsed
        vpc.cidr = addr.cidr_text(vpc.net, vpc.plen)
    vpc.dividers = _host_names(raw, "dividers", path, errors)
    nets = _list(raw, "networks", path, errors) or []
    for j, nraw in enumerate(nets):
        net = _network(nraw, "%s.networks[%d]" % (path, j), vpc, errors)
        if net is not None:
            vpc.networks.append(net)
    return vpc


def _network(raw, path, vpc, errors):
    if not _mapping(raw, path, errors, "a network"):
        return None
    _check_keys(raw, NETWORK_KEYS, path, errors, "a network")
    net = Network(path, vpc)
    net.name = _name(raw, path, errors)
    if net.name is not None and vpc.name is not None:
        net.fullname = "%s/%s" % (vpc.name, net.name)
    parsed = _cidr(raw, path, errors)
    if parsed:
        if parsed[1] > MIN_PREFIXLEN:
            errors.add(path + ".cidr", "network %s is too small: it needs a network, a gateway and a broadcast "
                       "address and room for endpoints, so at most /%d" % (addr.cidr_text(*parsed), MIN_PREFIXLEN))
        else:
            net.net, net.plen = parsed
            net.cidr = addr.cidr_text(net.net, net.plen)
            gw = Endpoint(path + ".cidr", net)
            gw.type = GATEWAY
            gw.name = GATEWAY
            gw.fullname = "%s/%s" % (net.fullname, GATEWAY) if net.fullname else None
            gw.ip_int = net.net + 1
            gw.ip = addr.ip_text(gw.ip_int)
            if vpc.vni is not None:
                gw.vni = vpc.vni
                gw.key = (vpc.vni, gw.ip_int)
                gw.mac = addr.derived_mac(vpc.vni, gw.ip)
            net.gateway = gw
    if "bouncers" not in raw or raw.get("bouncers") is None:
        errors.add(path + ".bouncers", "bouncers is required: list at least one host of mizar_hosts to "
                   "bounce this network's traffic")
    else:
        net.bouncers = _host_names(raw, "bouncers", path, errors)
        if _is_list(raw.get("bouncers")) and not raw.get("bouncers"):
            errors.add(path + ".bouncers", "bouncers is empty: list at least one host of mizar_hosts to bounce "
                       "this network's traffic")
    eps = _list(raw, "endpoints", path, errors) or []
    for k, eraw in enumerate(eps):
        ep = _endpoint(eraw, "%s.endpoints[%d]" % (path, k), net, errors)
        if ep is not None:
            net.endpoints.append(ep)
    return net


_ENDPOINT_KEYSET = frozenset(ENDPOINT_KEYS)
_NAME_OK = addr.NAME_RE.match


def _endpoint(raw, path, net, errors):
    # the hot path of build(): one call per endpoint, so the common case is kept short
    if not isinstance(raw, Mapping):
        errors.add(path, "an endpoint must be a mapping (key: value lines), not %s" % _kind(raw))
        return None
    if not _ENDPOINT_KEYSET.issuperset(raw):
        _check_keys(raw, ENDPOINT_KEYS, path, errors, "an endpoint")
    ep = Endpoint(path, net)
    vni = ep.vni = net.vpc.vni
    name = raw.get("name")
    if isinstance(name, str) and _NAME_OK(name):
        ep.name = str(name)
    else:
        ep.name = _name(raw, path, errors)
    if ep.name is not None and net.fullname is not None:
        ep.fullname = "%s/%s" % (net.fullname, ep.name)

    kind = raw.get("type", "simple")
    if kind not in ENDPOINT_TYPES:
        errors.add(path + ".type", "endpoint type %r is not one of %s%s"
                   % (kind, ", ".join(ENDPOINT_TYPES), suggest(kind, ENDPOINT_TYPES)))
        kind = None
    ep.type = kind

    ip = raw.get("ip")
    if ip is None:
        errors.add(path + ".ip", "ip is required: give the endpoint an address in its network %s" % (net.cidr or ""))
    else:
        try:
            ep.ip_int = addr.parse_ipv4(ip)
            ep.ip = str(ip)
        except ValueError as e:
            errors.add(path + ".ip", "%s: give the endpoint an IPv4 address in its network" % e)

    host_iface = None
    if vni is not None and ep.ip is not None:
        mac, host_iface = addr.derived(vni, ep.ip)
    mac_raw = raw.get("mac")
    if mac_raw is not None:
        try:
            ep.mac = addr.parse_mac(mac_raw)
            ep.mac_given = True
        except ValueError as e:
            errors.add(path + ".mac", "%s; or leave mac out to derive one from the VNI and IP" % e)
    elif host_iface is not None:
        ep.mac = mac
    if vni is not None and ep.ip_int is not None:
        ep.key = (vni, ep.ip_int)

    bypass = raw.get("bypass_decap", False)
    if not isinstance(bypass, bool):
        errors.add(path + ".bypass_decap", "bypass_decap must be true or false, not %s" % _kind(bypass))
    else:
        ep.bypass_decap = bypass

    mtu = raw.get("mtu")
    if mtu is not None:
        if isinstance(mtu, bool) or not isinstance(mtu, int):
            errors.add(path + ".mtu", "mtu must be an integer, not %s; or leave it out to derive it from the "
                       "host's substrate NIC" % _kind(mtu))
        elif not 68 <= mtu <= 65535:
            errors.add(path + ".mtu", "%d is not an MTU (68..65535); or leave it out to derive it from the "
                       "host's substrate NIC" % mtu)
        elif kind != "simple" or raw.get("netns") is None or raw.get("tunnel_peer") is not None:
            errors.add(path + ".mtu", "mtu applies to an endpoint with a netns, whose veth the collection makes; "
                       "remove it (an adopted interface keeps its own MTU)")
        else:
            ep.mtu = mtu

    if kind == "scaled":
        for key in ("host", "netns", "iface"):
            if raw.get(key) is not None:
                errors.add("%s.%s" % (path, key), "a scaled endpoint has no %s: it lives on its backends; remove "
                           "%s, or make the endpoint type simple" % (key, key))
        backends = raw.get("backends")
        if backends is None or (_is_list(backends) and not backends):
            errors.add(path + ".backends", "a scaled endpoint needs backends: list the names of endpoints of "
                       "the same VPC that serve it")
        elif not _is_list(backends):
            errors.add(path + ".backends", "backends must be a list of endpoint names or {name, weight}, not %s"
                       % _kind(backends))
        else:
            for i, b in enumerate(backends):
                name, weight = _backend(b, "%s.backends[%d]" % (path, i), errors)
                if name is not None:
                    ep.backends.append(name)
                    ep.weights.append(weight)
    elif kind == "simple" and raw.get("tunnel_peer") is not None:
        _peer_endpoint(raw, path, ep, errors)
    elif kind == "simple":
        if raw.get("backends") is not None:
            errors.add(path + ".backends", "only scaled endpoints have backends: remove backends or set "
                       "type: scaled")
        host = raw.get("host")
        if host is None:
            errors.add(path + ".host", "host is required for a simple endpoint: name the host of mizar_hosts "
                       "it lives on")
        elif not isinstance(host, str) or not host:
            errors.add(path + ".host", "host must be the name of a host of mizar_hosts, not %s" % _kind(host))
        else:
            ep.host = str(host)
        netns, iface = raw.get("netns"), raw.get("iface")
        if netns is None and iface is None:
            errors.add(path, "a simple endpoint lives in a namespace or on an interface: set netns (created "
                       "for it) or iface (an existing interface of the host)")
        elif netns is not None and iface is not None:
            errors.add(path + ".iface", "set only one of netns and iface: netns makes a namespace and veth for "
                       "the endpoint, iface adopts an existing interface")
        elif netns is not None:
            problem = addr.netns_problem(netns)
            if problem:
                errors.add(path + ".netns", problem)
            else:
                ep.netns = str(netns)
                ep.host_iface = host_iface
        else:
            problem = addr.ifname_problem(iface)
            if problem:
                errors.add(path + ".iface", "%s: name an existing interface of the host" % problem)
            else:
                ep.iface = ep.host_iface = str(iface)
    return ep


BACKEND_KEYS = ("name", "weight")
DEFAULT_WEIGHT = 1


def _backend(raw, path, errors):
    """(name, weight) of a scaled endpoint's backends entry: an endpoint's
    name, or {name, weight}; (None, None) after an error."""
    if isinstance(raw, str) and raw:
        return str(raw), DEFAULT_WEIGHT
    if not isinstance(raw, Mapping):
        errors.add(path, "a backend is the name of an endpoint of the same VPC, or {name, weight}, not %s"
                   % _kind(raw))
        return None, None
    for key in raw:
        if key not in BACKEND_KEYS:
            errors.add("%s.%s" % (path, key), "unknown key %r of a backend%s: a backend has %s"
                       % (key, suggest(str(key), BACKEND_KEYS), " and ".join(BACKEND_KEYS)))
    name, weight = raw.get("name"), raw.get("weight", DEFAULT_WEIGHT)
    ok = True
    if not isinstance(name, str) or not name:
        errors.add(path + ".name", "name is required: the name of an endpoint of the same VPC, not %s" % _kind(name))
        ok = False
    if isinstance(weight, bool) or not isinstance(weight, int):
        errors.add(path + ".weight", "weight must be an integer 0..%d (0 drains the backend), not %s"
                   % (MAX_WEIGHT, _kind(weight)))
        ok = False
    elif not 0 <= weight <= MAX_WEIGHT:
        errors.add(path + ".weight", "weight %d is out of range: 0..%d (0 drains the backend)" % (weight, MAX_WEIGHT))
        ok = False
    return (str(name), weight) if ok else (None, None)


def _peer_endpoint(raw, path, ep, errors):
    """A simple endpoint behind a tunnel peer: the peer terminates its
    Geneve tunnel, so the collection makes nothing for it on any host."""
    peer = raw.get("tunnel_peer")
    if not isinstance(peer, str) or not peer:
        errors.add(path + ".tunnel_peer", "tunnel_peer must be the name of a peer of mizar_tunnel_peers, not %s"
                   % _kind(peer))
    else:
        ep.host = str(peer)
        ep.peer = True
    for key in ("host", "netns", "iface", "backends"):
        if raw.get(key) is not None:
            errors.add("%s.%s" % (path, key), "an endpoint behind a tunnel peer has no %s: the peer terminates "
                       "its tunnel; remove %s, or remove tunnel_peer" % (key, key))
    if ep.bypass_decap:
        errors.add(path + ".bypass_decap", "an endpoint behind a tunnel peer gets its frames through the peer's "
                   "tunnel: bypass_decap does not apply")


def _function(raw, path, errors):
    if not _mapping(raw, path, errors, "a function"):
        return None
    _check_keys(raw, FUNCTION_KEYS, path, errors, "a function")
    fn = Function(path)
    fn.name = _name(raw, path, errors)
    kind = raw.get("kind", "xdp")
    if kind not in FUNCTION_KINDS:
        kinds = ", ".join(FUNCTION_KINDS)
        errors.add(path + ".kind", "unknown kind %r%s: a function is one of %s (xdp, the default: a BPF program in a "
                   "stage; userspace: a program on a bypass_decap endpoint)" % (kind, suggest(kind, FUNCTION_KINDS), kinds))
        return None  # what else it lacks depends on its kind
    fn.kind = str(kind)
    if fn.kind == "userspace":
        return _userspace_function(fn, raw, path, errors)
    for key in ("vpc", "endpoint"):
        if raw.get(key) is not None:
            errors.add("%s.%s" % (path, key), "%s is for a function of kind userspace, which runs on an endpoint; a "
                       "stage function runs on hosts (hosts)" % key)
    stage = raw.get("stage")
    if stage is None:
        errors.add(path + ".stage", "stage is required: one of %s" % ", ".join(STAGES))
    elif stage not in STAGES:
        errors.add(path + ".stage", "unknown stage %r%s: a function runs at one of %s"
                   % (stage, suggest(stage, STAGES), ", ".join(STAGES)))
    else:
        fn.stage = str(stage)
    fn.program = _string(raw, "program", path, errors)
    if raw.get("hosts") is not None:
        fn.hosts = _host_names(raw, "hosts", path, errors)
    _function_config(fn, raw, path, errors)
    return fn


def _function_config(fn, raw, path, errors):
    config = raw.get("config")
    if config is None:
        fn.config = {}
    elif not isinstance(config, Mapping):
        errors.add(path + ".config", "config must be a mapping of the function's settings, not %s" % _kind(config))
        fn.config = None
    else:
        fn.config = config


def _userspace_function(fn, raw, path, errors):
    """A user-space function: a program, the endpoint it runs on (vpc and
    endpoint), its config; no stage and no hosts (its endpoint's host)."""
    for key, why in (("stage", "it runs in its endpoint's namespace, not in a stage"),
                     ("hosts", "it runs on the host of its endpoint")):
        if raw.get(key) is not None:
            errors.add("%s.%s" % (path, key), "a userspace function has no %s: %s; remove %s" % (key, why, key))
    fn.program = _string(raw, "program", path, errors)
    fn.vpc = _string(raw, "vpc", path, errors)
    fn.endpoint_name = _string(raw, "endpoint", path, errors)
    _function_config(fn, raw, path, errors)
    return fn
