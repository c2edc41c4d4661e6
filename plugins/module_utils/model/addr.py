# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses and names of the overlay: strict IPv4, CIDR and MAC parsing,
the MACs and host-side interface names derived from (VNI, IP), and the
rules Linux puts on interface and namespace names.

Parsing is strict on purpose: an inventory is reviewed by people, so the
text must mean one thing ("010.1.0.5" or "10.1.0.5/16" are refused, with
the reason).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re
import socket

IFNAMSIZ = 16  # Linux: at most 15 characters and the NUL
MAX_VNI = (1 << 24) - 1

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
_NETNS = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(r"^%s\.%s\.%s\.%s\Z" % (_OCTET, _OCTET, _OCTET, _OCTET))


def parse_ipv4(text):
    """Dotted-quad IPv4 text -> its 32-bit integer. ValueError says why not."""
    if isinstance(text, str) and _IPV4.match(text):
        return int.from_bytes(socket.inet_aton(text), "big")
    return _ipv4_problem(text)


def _ipv4_problem(text):
    """The slow path of parse_ipv4: the reason text is not an address."""
    if not isinstance(text, str):
        raise ValueError("an IPv4 address must be a string like 10.1.0.5")
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("%r is not an IPv4 address (four numbers 0-255 joined by dots, e.g. 10.1.0.5)" % text)
    value = 0
    for part in parts:
        if not (part.isdigit() and part.isascii()) or len(part) > 3:
            raise ValueError("%r is not an IPv4 address (four numbers 0-255 joined by dots, e.g. 10.1.0.5)" % text)
        if len(part) > 1 and part[0] == "0":
            raise ValueError("%r has a leading zero, which is ambiguous (octal?): write %s"
                             % (text, ".".join(str(int(p)) if p.isdigit() else p for p in parts)))
        octet = int(part)
        if octet > 255:
            raise ValueError("%r is not an IPv4 address: %s is more than 255" % (text, part))
        value = (value << 8) | octet
    return value


def ip_text(value):
    """32-bit integer -> dotted quad."""
    return "%d.%d.%d.%d" % ((value >> 24) & 255, (value >> 16) & 255, (value >> 8) & 255, value & 255)


def mask(prefixlen):
    return (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF


def parse_cidr(text):
    """'10.1.0.0/16' -> (network integer, prefix length). Host bits must be zero."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError("%r is not a CIDR: write the network address and prefix length, e.g. 10.1.0.0/16" % (text,))
    addr, plen_text = text.split("/")
    net = parse_ipv4(addr)
    if not (plen_text.isdigit() and plen_text.isascii()) or int(plen_text) > 32 or \
            (len(plen_text) > 1 and plen_text[0] == "0"):
        raise ValueError("%r is not a CIDR: the prefix length after '/' must be 0 to 32" % text)
    plen = int(plen_text)
    if net & ~mask(plen) & 0xFFFFFFFF:
        raise ValueError("%r has host bits set: the network is %s/%d" % (text, ip_text(net & mask(plen)), plen))
    return net, plen


def cidr_text(net, plen):
    return "%s/%d" % (ip_text(net), plen)


def in_network(ip, net, plen):
    return (ip & mask(plen)) == net


def broadcast(net, plen):
    return net | (~mask(plen) & 0xFFFFFFFF)


def subnet_of(net, plen, outer_net, outer_plen):
    return plen >= outer_plen and (net & mask(outer_plen)) == outer_net


def overlaps(net_a, plen_a, net_b, plen_b):
    shorter = min(plen_a, plen_b)
    return (net_a & mask(shorter)) == (net_b & mask(shorter))


def parse_mac(text):
    """'02:AA:..' -> '02:aa:..' (lower case, colons). ValueError says why not."""
    if not isinstance(text, str) or not _MAC.match(text):
        raise ValueError("%r is not a MAC address: write six hex byte pairs joined by colons, e.g. 02:00:00:0a:01:05"
                         % (text,))
    mac = text.lower()
    if int(mac[:2], 16) & 1:
        raise ValueError("%s is a multicast MAC address: an interface needs a unicast one "
                         "(even first byte, e.g. 02:...)" % mac)
    if mac == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a usable MAC address")
    return mac


def _digest(vni, ip):
    return hashlib.sha256(("%d/%s" % (vni, ip)).encode("ascii")).digest()


def derived_mac(vni, ip):
    """The MAC of an endpoint or gateway with none given: 02 (locally
    administered, unicast) then the first 5 bytes of sha256("<vni>/<ip>")."""
    return "02:" + _digest(vni, ip)[:5].hex(":")


def veth_name(vni, ip):
    """Host-side veth of a netns endpoint: 'mz' + 10 hex of sha256("<vni>/<ip>")."""
    return "mz" + _digest(vni, ip)[:5].hex()


def derived(vni, ip):
    """(derived MAC, veth name) with one hash: both come from the same digest."""
    head = _digest(vni, ip)[:5]
    return "02:" + head.hex(":"), "mz" + head.hex()


def ifname_problem(name):
    """Why Linux would refuse name as an interface name, or None."""
    if not isinstance(name, str) or not name:
        return "an interface name must be a non-empty string"
    if len(name) >= IFNAMSIZ:
        return "%r is %d characters long; Linux interface names have at most %d" % (name, len(name), IFNAMSIZ - 1)
    if name in (".", ".."):
        return "%r is not a valid interface name" % name
    for ch in name:
        if ch in "/:" or ch.isspace() or not ch.isprintable():
            return "%r contains %r, which Linux does not allow in interface names" % (name, ch)
    return None


def netns_problem(name):
    """Why name is not a usable network namespace name, or None."""
    if not isinstance(name, str) or not _NETNS.match(name) or name in (".", ".."):
        return ("%r is not a usable network namespace name: use 1 to 64 letters, digits, '_', '.' or '-' "
                "(it becomes a file in /run/netns)" % (name,))
    return None


def name_problem(name):
    """Why name is not a usable VPC/network/endpoint/function name, or None."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        return ("%r is not a valid name: use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter "
                "or digit" % (name,))
    return None
