# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network namespaces, veths, bridges, addresses and routes, over netlink.

Every function takes netns=None (the calling thread's namespace) or the name
of a namespace under /run/netns (or an absolute path to a namespace file)
and acts there. Functions that change something are idempotent and return
True when they changed something, so modules can report `changed` honestly.

Acting in another namespace goes through nsenter.run_in_netns(), the same
helper the bpf/ layer uses for XDP attachments.

pyroute2 is optional at import time (HAS_PYROUTE2) so that modules can
report it with missing_required_lib. Targets may have pyroute2 0.7 (Debian
12) or 0.9, so the code keeps to what both do alike: attributes are read
with get_attr() (get() with an attribute's name finds it in 0.9 only),
and results are only iterated and indexed (0.7 returns tuples, 0.9 lists).
XDP attachments by netlink go through libbpf (bpf_xdp_attach), not
pyroute2: 0.7 packs IFLA_XDP_FLAGS into 16 big-endian bits, which the
kernel refuses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import fcntl
import ipaddress
import os
import socket
import struct

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.nsenter import NetnsError, netns_exists, run_in_netns

# The oldest pyroute2 the modules work with (Debian 12's python3-pyroute2).
PYROUTE2_MIN = (0, 7, 2)
PYROUTE2_REQUIREMENT = "pyroute2 >= %d.%d.%d" % PYROUTE2_MIN


def version_tuple(text):
    """(0, 7, 2) of "0.7.2" (a suffix such as ".post1" or "rc1" ignored)."""
    out = []
    for part in str(text).split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(int(digits or 0))
    return tuple(out + [0] * (3 - len(out)))


try:
    import pyroute2 as _pyroute2
    from pyroute2 import IPRoute
    from pyroute2 import netns as _pr_netns
    from pyroute2.netlink.exceptions import NetlinkError as _PrNetlinkError

    PYROUTE2_VERSION = getattr(_pyroute2, "__version__", "unknown")
    if not PYROUTE2_VERSION[:1].isdigit():
        try:
            # the distribution's metadata: Debian's build leaves __version__ "unknown" (read only then:
            # importing importlib.metadata and searching the path costs every module call)
            from importlib.metadata import version as _dist_version
            PYROUTE2_VERSION = _dist_version("pyroute2")
        except Exception:  # no metadata (a copied tree): what the package says
            pass
    if PYROUTE2_VERSION[:1].isdigit() and version_tuple(PYROUTE2_VERSION) < PYROUTE2_MIN:
        HAS_PYROUTE2 = False
        PYROUTE2_IMPORT_ERROR = ImportError("pyroute2 %s is installed; mizar.transit needs %s"
                                            % (PYROUTE2_VERSION, PYROUTE2_REQUIREMENT))
    else:
        HAS_PYROUTE2 = True
        PYROUTE2_IMPORT_ERROR = None
except ImportError as _e:  # pragma: no cover - exercised when pyroute2 is absent
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = _e
    PYROUTE2_VERSION = None

    class _PrNetlinkError(Exception):
        pass


IFF_UP = 0x1
IFNAMSIZ = 16

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


class NetlinkError(NetnsError):
    """A namespace or link operation failed; errno is kept when known."""


def _need_pyroute2():
    if not HAS_PYROUTE2:
        raise NetlinkError("pyroute2 is required: %s" % PYROUTE2_IMPORT_ERROR)


# ---------------------------------------------------------------- namespaces


def netns_add(name):
    """Create a named namespace (like `ip netns add`). Returns changed."""
    _need_pyroute2()
    if netns_exists(name):
        return False
    _pr_netns.create(name)
    return True


def netns_del(name):
    """Delete a named namespace; its interfaces go with it once nothing else
    holds it. Returns changed."""
    _need_pyroute2()
    if not netns_exists(name):
        return False
    _pr_netns.remove(name)
    return True


def netns_socket(netns, family=socket.AF_INET, sock_type=socket.SOCK_DGRAM, proto=0):
    """A socket living in netns (to talk from inside it without a process)."""
    return run_in_netns(netns, socket.socket, family, sock_type, proto)


def sysctl(key, value=None, netns=None):
    """Read (value None) or write a /proc/sys key, e.g.
    "net/ipv6/conf/eth0/disable_ipv6", in netns. Writing returns changed."""
    path = "/proc/sys/" + key.replace(".", "/") if "/" not in key else "/proc/sys/" + key

    def body():
        with open(path) as f:
            cur = f.read().strip()
        if value is None:
            return cur
        if cur == str(value):
            return False
        with open(path, "w") as f:
            f.write(str(value))
        return True

    return run_in_netns(netns, body)


def ipv6_disabled(ifname, netns=None):
    """True when IPv6 is off on ifname (or absent from the whole kernel)."""
    try:
        return sysctl("net/ipv6/conf/%s/disable_ipv6" % ifname, netns=netns) == "1"
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT:
            return True
        raise


def disable_ipv6(ifname, netns=None):
    """Turn IPv6 off on ifname (nothing to do in a kernel without IPv6).
    Returns changed."""
    try:
        return sysctl("net/ipv6/conf/%s/disable_ipv6" % ifname, 1, netns=netns)
    except (IOError, OSError) as e:
        if e.errno == errno.ENOENT:
            return False
        raise


# ---------------------------------------------------------------- messages


def parse_link(msg):
    """{index, ifname, mac, mtu, up, kind, master, peer_index} of an
    RTM_NEWLINK message (pyroute2's ifinfmsg)."""
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    return {
        "index": msg["index"],
        "ifname": msg.get_attr("IFLA_IFNAME"),
        "mac": msg.get_attr("IFLA_ADDRESS"),
        "mtu": msg.get_attr("IFLA_MTU"),
        "up": bool(msg["flags"] & IFF_UP),
        "kind": linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None,
        "master": msg.get_attr("IFLA_MASTER"),
        "peer_index": msg.get_attr("IFLA_LINK"),
    }


def parse_addr(msg):
    """The "a.b.c.d/len" of an RTM_NEWADDR message (ifaddrmsg)."""
    return "%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"])


def parse_route(msg):
    """{dst, dst_len, gateway, oif} of an RTM_NEWROUTE message (rtmsg); dst
    is "0.0.0.0" for a default route, which carries no RTA_DST."""
    return {
        "dst": msg.get_attr("RTA_DST") or "0.0.0.0",
        "dst_len": msg["dst_len"],
        "gateway": msg.get_attr("RTA_GATEWAY"),
        "oif": msg.get_attr("RTA_OIF"),
    }


# ---------------------------------------------------------------- links


def _ipr():
    _need_pyroute2()
    return IPRoute()


def _nl(op, fn):
    try:
        return fn()
    except _PrNetlinkError as e:
        code = e.code if hasattr(e, "code") else 0
        raise NetlinkError("%s: %s" % (op, os.strerror(code) if code else e), code)


def _find(ipr, iface):
    """The link message for a name or index, or None."""
    try:
        if isinstance(iface, int):
            msgs = ipr.link("get", index=iface)
        else:
            msgs = ipr.link("get", ifname=iface)
    except _PrNetlinkError as e:
        if getattr(e, "code", 0) in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return msgs[0] if msgs else None


def link(iface, netns=None):
    """{index, ifname, mac, mtu, up, kind, master, peer_index} of a link by
    name or index, or None when absent."""

    def body():
        with _ipr() as ipr:
            msg = _find(ipr, iface)
            return parse_link(msg) if msg is not None else None

    return run_in_netns(netns, body)


def links(netns=None):
    """Every link of netns, as link() describes them."""

    def body():
        with _ipr() as ipr:
            return [parse_link(m) for m in ipr.link("dump")]

    return run_in_netns(netns, body)


def ifindex(iface, netns=None):
    """The ifindex of an interface given by name or index (checked)."""
    found = link(iface, netns)
    if found is None:
        raise NetlinkError("no interface %s%s" % (iface, " in netns %s" % netns if netns else ""),
                           errno.ENODEV)
    return found["index"]


def _require(ipr, iface, netns):
    msg = _find(ipr, iface)
    if msg is None:
        raise NetlinkError("no interface %s%s" % (iface, " in netns %s" % netns if netns else ""),
                           errno.ENODEV)
    return msg


def veth_add(ifname, peer, netns=None, peer_netns=None):
    """A veth pair: ifname in netns, peer in peer_netns (default: netns).
    Returns changed; an existing ifname that is not a veth is an error."""

    def body():
        with _ipr() as ipr:
            msg = _find(ipr, ifname)
            if msg is not None:
                if parse_link(msg)["kind"] != "veth":
                    raise NetlinkError("%s exists and is not a veth" % ifname, errno.EEXIST)
                return False
            peer_spec = {"ifname": peer}
            fd = None
            if peer_netns is not None and peer_netns != netns:
                fd = os.open(nsenter.netns_path(peer_netns), os.O_RDONLY)
                peer_spec["net_ns_fd"] = fd
            try:
                _nl("creating veth %s/%s" % (ifname, peer),
                    lambda: ipr.link("add", ifname=ifname, kind="veth", peer=peer_spec))
            finally:
                if fd is not None:
                    os.close(fd)
            return True

    return run_in_netns(netns, body)


def bridge_add(name, netns=None):
    """A bridge, up. Returns changed."""

    def body():
        with _ipr() as ipr:
            changed = False
            msg = _find(ipr, name)
            if msg is None:
                _nl("creating bridge %s" % name, lambda: ipr.link("add", ifname=name, kind="bridge"))
                msg = _require(ipr, name, netns)
                changed = True
            elif parse_link(msg)["kind"] != "bridge":
                raise NetlinkError("%s exists and is not a bridge" % name, errno.EEXIST)
            if not msg["flags"] & IFF_UP:
                _nl("setting %s up" % name, lambda: ipr.link("set", index=msg["index"], state="up"))
                changed = True
            return changed

    return run_in_netns(netns, body)


def link_set(iface, netns=None, up=None, mac=None, mtu=None, master=None, nomaster=False):
    """Bring a link to the given state (None leaves a property alone); master
    is a bridge name or index in the same namespace. Returns changed."""

    def body():
        with _ipr() as ipr:
            msg = _require(ipr, iface, netns)
            cur = parse_link(msg)
            idx = cur["index"]
            changes = {}
            if mac is not None and (cur["mac"] or "").lower() != mac.lower():
                changes["address"] = mac.lower()
            if mtu is not None and cur["mtu"] != mtu:
                changes["mtu"] = mtu
            if master is not None:
                midx = _require(ipr, master, netns)["index"]
                if cur["master"] != midx:
                    changes["master"] = midx
            elif nomaster and cur["master"]:
                changes["master"] = 0
            if changes:
                _nl("setting %s on %s" % (", ".join(sorted(changes)), iface),
                    lambda: ipr.link("set", index=idx, **changes))
            if up is not None and up != cur["up"]:
                _nl("setting %s %s" % (iface, "up" if up else "down"),
                    lambda: ipr.link("set", index=idx, state="up" if up else "down"))
                return True
            return bool(changes)

    return run_in_netns(netns, body)


def link_del(iface, netns=None):
    """Delete a link (a veth takes its peer along). Returns changed."""

    def body():
        with _ipr() as ipr:
            msg = _find(ipr, iface)
            if msg is None:
                return False
            _nl("deleting %s" % iface, lambda: ipr.link("del", index=msg["index"]))
            return True

    return run_in_netns(netns, body)


# ---------------------------------------------------------------- addresses, routes


def _addrs(ipr, idx):
    return [parse_addr(a) for a in ipr.addr("dump", index=idx, family=socket.AF_INET)]


def addrs(iface, netns=None):
    """IPv4 addresses of a link as "a.b.c.d/len" strings."""

    def body():
        with _ipr() as ipr:
            return _addrs(ipr, _require(ipr, iface, netns)["index"])

    return run_in_netns(netns, body)


def _addr_change(op, iface, cidr, netns):
    """Add (op "add") or remove ("del") an IPv4 address "a.b.c.d/len" of a
    link, only when that changes something. Returns changed."""
    iface_addr = ipaddress.ip_interface(cidr)
    want = "%s/%d" % (iface_addr.ip, iface_addr.network.prefixlen)

    def body():
        with _ipr() as ipr:
            idx = _require(ipr, iface, netns)["index"]
            if (want in _addrs(ipr, idx)) == (op == "add"):
                return False
            _nl("%s %s %s %s" % ("adding" if op == "add" else "removing", want, "to" if op == "add" else "from",
                                 iface),
                lambda: ipr.addr(op, index=idx, address=str(iface_addr.ip),
                                 prefixlen=iface_addr.network.prefixlen, family=socket.AF_INET))
            return True

    return run_in_netns(netns, body)


def addr_add(iface, cidr, netns=None):
    """Add an IPv4 address "a.b.c.d/len" to a link. Returns changed."""
    return _addr_change("add", iface, cidr, netns)


def addr_del(iface, cidr, netns=None):
    """Remove an IPv4 address "a.b.c.d/len" from a link. Returns changed."""
    return _addr_change("del", iface, cidr, netns)


def _routes(ipr):
    return [parse_route(r) for r in ipr.route("dump", family=socket.AF_INET, table=254)]


def routes(netns=None):
    """The IPv4 routes of the main table, as parse_route() describes them."""

    def body():
        with _ipr() as ipr:
            return _routes(ipr)

    return run_in_netns(netns, body)


def default_route(netns=None):
    """{gateway, oif} of the main table's default route in netns, or None."""
    for r in routes(netns):
        if r["dst_len"] == 0:
            return {"gateway": r["gateway"], "oif": r["oif"]}
    return None


def route_add(dst, gateway=None, iface=None, netns=None):
    """An IPv4 route to dst ("default" or a CIDR) via gateway and/or out of
    iface. An existing route to dst with other attributes is replaced.
    Returns changed."""
    default = dst in ("default", "0.0.0.0/0")
    net = ipaddress.ip_network("0.0.0.0/0" if default else dst)

    def body():
        with _ipr() as ipr:
            oif = _require(ipr, iface, netns)["index"] if iface is not None else None
            spec = {"dst": str(net.network_address), "dst_len": net.prefixlen}
            for r in _routes(ipr):
                if r["dst"] == spec["dst"] and r["dst_len"] == net.prefixlen:
                    same = ((gateway is None or r["gateway"] == gateway) and
                            (oif is None or r["oif"] == oif))
                    if same:
                        return False
            args = dict(spec)
            if gateway is not None:
                args["gateway"] = gateway
            if oif is not None:
                args["oif"] = oif
            _nl("route to %s" % dst, lambda: ipr.route("replace", **args))
            return True

    return run_in_netns(netns, body)


# ---------------------------------------------------------------- offloads


def _ethtool_value(sock, ifname, cmd, data=0):
    val = ctypes.create_string_buffer(struct.pack("II", cmd, data), 8)
    ifr = struct.pack("%dsP" % IFNAMSIZ, ifname.encode(), ctypes.addressof(val))
    ifr += b"\0" * (40 - len(ifr))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack("II", val.raw)[1]


def tx_checksum(ifname, enabled, netns=None):
    """Switch transmit checksum offload of ifname (like ethtool -K tx).

    An endpoint's interface must not leave its checksums to offload: its
    frames are encapsulated (or redirected) by XDP on the host side, which
    never completes a partial checksum, so the far side would drop them.
    Returns changed."""

    def body():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                cur = bool(_ethtool_value(s, ifname, ETHTOOL_GTXCSUM))
                if cur == bool(enabled):
                    return False
                _ethtool_value(s, ifname, ETHTOOL_STXCSUM, 1 if enabled else 0)
            except OSError as e:
                raise NetlinkError("tx checksum offload of %s: %s" % (ifname, e.strerror), e.errno)
            return True

    return run_in_netns(netns, body)


# ---------------------------------------------------------------- composed plumbing


def endpoint_veth(netns, host_ifname, ip, mac, host_netns=None, ifname="eth0", mtu=1450,
                  gateway=None, disable_ipv6=True):
    """Plumb an endpoint: a veth whose inside end is `ifname` in netns (the
    endpoint's namespace, created if needed) with ip ("a.b.c.d/len"), mac,
    mtu, a default route via gateway and transmit checksum offload off, and
    whose host end `host_ifname` sits up in host_netns.

    Returns {changed, ifindex, host_ifindex, host_mac, mac}: host_ifindex is
    what the agent and endpoint map entries are keyed by."""
    changed = netns_add(netns)
    tmp = "mzt%x" % (abs(hash((netns, host_ifname))) & 0xfffffff)
    if link(host_ifname, host_netns) is None:
        # create both ends next to each other, then move the inside one and
        # rename it: the final name may be taken in host_netns (eth0 is)
        changed |= veth_add(host_ifname, tmp, netns=host_netns)
        _move_rename(tmp, host_netns, netns, ifname)
    elif link(ifname, netns) is None:
        raise NetlinkError("%s exists in %s but %s is missing in %s" % (
            host_ifname, host_netns or "this namespace", ifname, netns), errno.EEXIST)
    if disable_ipv6:
        changed |= sysctl("net/ipv6/conf/%s/disable_ipv6" % ifname, 1, netns=netns)
    changed |= link_set(ifname, netns=netns, mac=mac, mtu=mtu)
    changed |= tx_checksum(ifname, False, netns=netns)
    changed |= link_set(ifname, netns=netns, up=True)
    changed |= link_set("lo", netns=netns, up=True)
    changed |= addr_add(ifname, ip, netns=netns)
    if gateway:
        changed |= route_add("default", gateway=gateway, iface=ifname, netns=netns)
    changed |= link_set(host_ifname, netns=host_netns, mtu=mtu, up=True)
    inside = link(ifname, netns)
    host = link(host_ifname, host_netns)
    return {"changed": changed, "ifindex": inside["index"], "mac": inside["mac"],
            "host_ifindex": host["index"], "host_mac": host["mac"]}


def bridge_veth(netns, ifname, bridge_netns, bridge, port_ifname, ip=None, mac=None, mtu=None,
                disable_ipv6=True):
    """Plumb a host into a shared segment: a veth whose end `ifname` sits up
    in netns (created if needed) with optional ip and mac, and whose other
    end `port_ifname` is a port of `bridge` (created if needed) in
    bridge_netns. disable_ipv6 keeps the segment quiet (no router or
    neighbour solicitations from the host, the port or the bridge).
    Returns {changed, ifindex, mac, port_ifindex}."""
    changed = netns_add(netns)
    if bridge_netns is not None:
        changed |= netns_add(bridge_netns)
    changed |= bridge_add(bridge, netns=bridge_netns)
    if link(ifname, netns) is None:
        changed |= veth_add(ifname, port_ifname, netns=netns, peer_netns=bridge_netns)
    if disable_ipv6:
        changed |= sysctl("net/ipv6/conf/%s/disable_ipv6" % ifname, 1, netns=netns)
        changed |= sysctl("net/ipv6/conf/%s/disable_ipv6" % port_ifname, 1, netns=bridge_netns)
        changed |= sysctl("net/ipv6/conf/%s/disable_ipv6" % bridge, 1, netns=bridge_netns)
    changed |= link_set(ifname, netns=netns, mac=mac, mtu=mtu)
    changed |= link_set(port_ifname, netns=bridge_netns, master=bridge, mtu=mtu, up=True)
    changed |= link_set(ifname, netns=netns, up=True)
    changed |= link_set("lo", netns=netns, up=True)
    if ip:
        changed |= addr_add(ifname, ip, netns=netns)
    here = link(ifname, netns)
    return {"changed": changed, "ifindex": here["index"], "mac": here["mac"],
            "port_ifindex": link(port_ifname, bridge_netns)["index"]}


def _move_rename(ifname, from_netns, to_netns, new_name):
    """Move a link to another namespace under a new name."""

    def body():
        with _ipr() as ipr:
            idx = _require(ipr, ifname, from_netns)["index"]
            fd = os.open(nsenter.netns_path(to_netns), os.O_RDONLY)
            try:
                _nl("moving %s to %s as %s" % (ifname, to_netns, new_name),
                    lambda: ipr.link("set", index=idx, net_ns_fd=fd, ifname=new_name))
            finally:
                os.close(fd)

    run_in_netns(from_netns, body)


def tx_checksum_enabled(ifname, netns=None):
    """Whether transmit checksum offload of ifname is on (like ethtool -k),
    read without changing it (for check mode)."""

    def body():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                return bool(_ethtool_value(s, ifname, ETHTOOL_GTXCSUM))
            except OSError as e:
                raise NetlinkError("tx checksum offload of %s: %s" % (ifname, e.strerror), e.errno)

    return run_in_netns(netns, body)
