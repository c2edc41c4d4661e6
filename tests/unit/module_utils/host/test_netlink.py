"""Reading pyroute2's messages with whichever pyroute2 is installed (targets
have 0.7 or 0.9).

The messages are encoded by pyroute2 and decoded back from the bytes, the
way replies from the kernel are, so the parsers see what they see on a host.
"""
import os
import re
import socket

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(netlink.__file__)))


def decoded(cls, fields, attrs):
    """A cls message with fields and attrs, as decoded from its bytes."""
    msg = cls()
    for name, value in fields.items():
        msg[name] = value
    msg["attrs"] = attrs
    msg.encode()
    out = cls(bytes(msg.data))
    out.decode()
    return out


def test_a_veth_port_of_a_bridge():
    msg = decoded(ifinfmsg, {"index": 7, "flags": netlink.IFF_UP}, [
        ("IFLA_IFNAME", "mzep1"), ("IFLA_ADDRESS", "02:00:00:00:00:05"), ("IFLA_MTU", 1450), ("IFLA_MASTER", 4),
        ("IFLA_LINK", 9), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})])
    assert netlink.parse_link(msg) == {"index": 7, "ifname": "mzep1", "mac": "02:00:00:00:00:05", "mtu": 1450,
                                       "up": True, "kind": "veth", "master": 4, "peer_index": 9}


def test_a_link_without_kind_master_or_peer():
    msg = decoded(ifinfmsg, {"index": 1, "flags": 0x8}, [
        ("IFLA_IFNAME", "lo"), ("IFLA_ADDRESS", "00:00:00:00:00:00"), ("IFLA_MTU", 65536)])
    assert netlink.parse_link(msg) == {"index": 1, "ifname": "lo", "mac": "00:00:00:00:00:00", "mtu": 65536,
                                       "up": False, "kind": None, "master": None, "peer_index": None}


def test_an_address():
    msg = decoded(ifaddrmsg, {"family": socket.AF_INET, "prefixlen": 24, "index": 7}, [
        ("IFA_ADDRESS", "10.0.0.2"), ("IFA_LOCAL", "10.0.0.2"), ("IFA_LABEL", "eth0")])
    assert netlink.parse_addr(msg) == "10.0.0.2/24"


def test_a_default_route_has_no_destination_attribute():
    msg = decoded(rtmsg, {"family": socket.AF_INET, "dst_len": 0, "table": 254}, [
        ("RTA_TABLE", 254), ("RTA_GATEWAY", "10.0.0.1"), ("RTA_OIF", 7)])
    assert netlink.parse_route(msg) == {"dst": "0.0.0.0", "dst_len": 0, "gateway": "10.0.0.1", "oif": 7}


def test_a_connected_route():
    msg = decoded(rtmsg, {"family": socket.AF_INET, "dst_len": 24, "table": 254}, [
        ("RTA_TABLE", 254), ("RTA_DST", "10.0.0.0"), ("RTA_PREFSRC", "10.0.0.2"), ("RTA_OIF", 7)])
    assert netlink.parse_route(msg) == {"dst": "10.0.0.0", "dst_len": 24, "gateway": None, "oif": 7}


def test_attributes_are_read_with_get_attr():
    """msg.get("IFLA_...") finds attributes in pyroute2 0.9 only: in 0.7 it
    returns None, and every reader above would pass on 0.9 alone."""
    attr = re.compile(r"""\.get\(\s*["'](IFLA|IFA|RTA|NDA)_""")
    found = []
    read = []
    for top, _dirs, files in os.walk(PLUGINS):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                read.append(name)
                with open(path) as f:
                    for number, line in enumerate(f, 1):
                        if attr.search(line) and not line.lstrip().startswith("#"):
                            found.append("%s:%d" % (os.path.relpath(path, PLUGINS), number))
    assert "netlink.py" in read and "endpoint.py" in read
    assert found == []


def test_pyroute2_versions():
    assert netlink.version_tuple("0.7.2") == (0, 7, 2)
    assert netlink.version_tuple("0.9.7") == (0, 9, 7)
    assert netlink.version_tuple("0.7.12.post1") == (0, 7, 12)
    assert netlink.version_tuple("1.0rc1") == (1, 0, 0)
    assert netlink.version_tuple("0.6.13") < netlink.PYROUTE2_MIN <= netlink.version_tuple("0.7.2")
    assert netlink.HAS_PYROUTE2 and netlink.PYROUTE2_REQUIREMENT == "pyroute2 >= 0.7.2"
