# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# Apache License 2.0 (see LICENSE)
"""Codecs for the map ABI in bpf/include/mzr_abi.h.

Each ctypes structure mirrors one C struct field for field; a test compares
their sizes and offsets with the BTF of the compiled objects. A MapSpec turns
the logical entries the renderer produces (dicts with dotted IPs and
colon MACs) into key/value bytes and back.

Addresses: C fields of type __be32 hold the wire bytes, so here they are
stored as the little-endian integer of those bytes (what a load on the
x86/arm64 hosts we run on gives).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import socket

from ansible_collections.mizar.transit.plugins.module_utils import capacity

ABI_VERSION = 1
GENEVE_PORT = 6081

u8, u16, u32 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32
Mac = u8 * 6

STAGES = {
    "on_xdp_tx": 0,
    "on_xdp_pass": 1,
    "on_xdp_redirect": 2,
    "on_xdp_drop": 3,
    "on_xdp_scaled_ep": 4,
}
STAGE_NAMES = dict((v, k) for k, v in STAGES.items())

EP_TYPES = {"simple": 1, "scaled": 2, "gateway": 3}
EP_TYPE_NAMES = dict((v, k) for k, v in EP_TYPES.items())
EP_F_BYPASS_DECAP = 0x1
VPC_F_LOCAL_DIVIDER = 0x1

# enum mzr_counter
COUNTERS = {
    "aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4,
    "bounce": 8, "divide": 9, "to_divider": 10, "arp_reply": 11, "decap": 12, "bypass": 13,
    "scaled": 14, "agent_encap": 16, "agent_local": 17,
}
DROP_REASONS = {
    "geneve_trunc": 32, "geneve_version": 33, "geneve_optlen": 34, "geneve_proto": 35,
    "inner_trunc": 36, "inner_proto": 37, "inner_ip_bad": 38, "inner_ip_opts": 39,
    "inner_frag": 40, "inner_arp_bad": 41, "ttl": 42, "unknown_vni": 43, "no_network": 44,
    "no_substrate": 45, "no_hops": 46, "loop": 47, "scaled_no_fn": 48, "to_gateway": 49,
    "adjust": 50, "agent_nocfg": 51, "agent_proto": 52, "agent_trunc": 53, "agent_spoof": 54,
}
COUNTER_SLOTS = 64


class IfCfg(ctypes.Structure):
    _fields_ = [("ip", u32), ("mac", Mac), ("_pad", u16), ("ifindex", u32), ("flags", u32)]


class EpKey(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32)]


class EpVal(ctypes.Structure):
    _fields_ = [
        ("type", u8), ("flags", u8), ("nbackends", u8), ("_pad", u8),
        ("host_ip", u32), ("ifindex", u32), ("mac", Mac), ("_pad2", u16),
        ("backend_ip", u32 * capacity.MAX_BACKENDS),
    ]


class NetKey(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("vni", u32), ("ip", u32)]


class NetVal(ctypes.Structure):
    _fields_ = [("nbouncers", u32), ("bouncer_ip", u32 * capacity.MAX_HOPS)]


class VpcKey(ctypes.Structure):
    _fields_ = [("vni", u32)]


class VpcVal(ctypes.Structure):
    _fields_ = [("flags", u32), ("ndividers", u32), ("divider_ip", u32 * capacity.MAX_HOPS)]


class SubKey(ctypes.Structure):
    _fields_ = [("ip", u32)]


class SubVal(ctypes.Structure):
    _fields_ = [("mac", Mac), ("_pad", u16)]


class AgentKey(ctypes.Structure):
    _fields_ = [("ifindex", u32)]


class AgentVal(ctypes.Structure):
    _fields_ = [
        ("vni", u32), ("ip", u32), ("mac", Mac), ("_pad", u16),
        ("nbouncers", u32), ("bouncer_ip", u32 * capacity.MAX_HOPS),
    ]


# C struct name for every codec, for the BTF comparison.
C_NAMES = {
    IfCfg: "mzr_if_cfg", EpKey: "mzr_ep_key", EpVal: "mzr_ep_val", NetKey: "mzr_net_key",
    NetVal: "mzr_net_val", VpcKey: "mzr_vpc_key", VpcVal: "mzr_vpc_val", SubKey: "mzr_sub_key",
    SubVal: "mzr_sub_val", AgentKey: "mzr_agent_key", AgentVal: "mzr_agent_val",
}


# ---------------------------------------------------------------- scalars


def ip_to_u32(ip):
    """Dotted IPv4 -> the little-endian integer of its network-order bytes."""
    return int.from_bytes(socket.inet_aton(ip), "little") if ip else 0


def u32_to_ip(v):
    return socket.inet_ntoa(int(v).to_bytes(4, "little"))


def mac_to_bytes(mac):
    if not mac:
        return b"\0" * 6
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError("bad MAC %r" % mac)
    return bytes(int(p, 16) for p in parts)


def bytes_to_mac(b):
    return ":".join("%02x" % x for x in bytes(b))


def _hops(arr, ips, what):
    if len(ips) > len(arr):
        raise ValueError("%d %s, at most %d fit" % (len(ips), what, len(arr)))
    for i, ip in enumerate(ips):
        arr[i] = ip_to_u32(ip)
    return len(ips)


def _unhops(arr, n):
    return [u32_to_ip(arr[i]) for i in range(min(n, len(arr)))]


def _put_mac(field, mac):
    ctypes.memmove(field, mac_to_bytes(mac), 6)


# ---------------------------------------------------------------- map specs


class MapSpec:
    """How one map's logical entries become bytes. Subclasses define
    key_of(entry), encode_value(entry) and decode(key, value)."""

    pin_name = None
    key_type = None
    value_type = None

    def key_of(self, entry):
        raise NotImplementedError

    def encode_value(self, entry):
        raise NotImplementedError

    def decode(self, key, value):
        raise NotImplementedError

    def encode(self, entry):
        return self.key_of(entry), self.encode_value(entry)

    def _k(self, raw):
        return self.key_type.from_buffer_copy(raw)

    def _v(self, raw):
        return self.value_type.from_buffer_copy(raw)


class IfCfgSpec(MapSpec):
    """{ip, mac, ifindex} -> the single entry of mzr_if_cfg."""

    pin_name = "mzr_if_cfg"
    key_type = u32
    value_type = IfCfg

    def key_of(self, entry):
        return bytes(u32(0))

    def encode_value(self, entry):
        v = IfCfg(ip=ip_to_u32(entry["ip"]), ifindex=entry["ifindex"], flags=entry.get("flags", 0))
        _put_mac(v.mac, entry["mac"])
        return bytes(v)

    def decode(self, key, value):
        v = self._v(value)
        return {"ip": u32_to_ip(v.ip), "mac": bytes_to_mac(v.mac), "ifindex": v.ifindex, "flags": v.flags}


class EndpointSpec(MapSpec):
    """{vni, ip, type, host_ip, ifindex, mac, bypass_decap, backends}."""

    pin_name = "mzr_endpoints"
    key_type = EpKey
    value_type = EpVal

    def key_of(self, entry):
        return bytes(EpKey(vni=entry["vni"], ip=ip_to_u32(entry["ip"])))

    def encode_value(self, entry):
        v = EpVal(type=EP_TYPES[entry.get("type", "simple")],
                  flags=EP_F_BYPASS_DECAP if entry.get("bypass_decap") else 0,
                  host_ip=ip_to_u32(entry.get("host_ip")), ifindex=entry.get("ifindex") or 0)
        _put_mac(v.mac, entry.get("mac"))
        v.nbackends = _hops(v.backend_ip, entry.get("backends") or [], "backends")
        return bytes(v)

    def decode(self, key, value):
        k, v = self._k(key), self._v(value)
        return {
            "vni": k.vni, "ip": u32_to_ip(k.ip), "type": EP_TYPE_NAMES.get(v.type, str(v.type)),
            "host_ip": u32_to_ip(v.host_ip) if v.host_ip else None, "ifindex": v.ifindex,
            "mac": bytes_to_mac(v.mac), "bypass_decap": bool(v.flags & EP_F_BYPASS_DECAP),
            "backends": _unhops(v.backend_ip, v.nbackends),
        }


class NetworkSpec(MapSpec):
    """{vni, cidr, bouncers} in the LPM trie keyed by (VNI, prefix)."""

    pin_name = "mzr_networks"
    key_type = NetKey
    value_type = NetVal

    def key_of(self, entry):
        addr, _, plen = entry["cidr"].partition("/")
        return bytes(NetKey(prefixlen=32 + int(plen or 32), vni=entry["vni"], ip=ip_to_u32(addr)))

    def encode_value(self, entry):
        v = NetVal()
        v.nbouncers = _hops(v.bouncer_ip, entry["bouncers"], "bouncers")
        return bytes(v)

    def decode(self, key, value):
        k, v = self._k(key), self._v(value)
        return {"vni": k.vni, "cidr": "%s/%d" % (u32_to_ip(k.ip), k.prefixlen - 32),
                "bouncers": _unhops(v.bouncer_ip, v.nbouncers)}


class VpcSpec(MapSpec):
    """{vni, dividers, local_divider}."""

    pin_name = "mzr_vpcs"
    key_type = VpcKey
    value_type = VpcVal

    def key_of(self, entry):
        return bytes(VpcKey(vni=entry["vni"]))

    def encode_value(self, entry):
        v = VpcVal(flags=VPC_F_LOCAL_DIVIDER if entry.get("local_divider") else 0)
        v.ndividers = _hops(v.divider_ip, entry.get("dividers") or [], "dividers")
        return bytes(v)

    def decode(self, key, value):
        k, v = self._k(key), self._v(value)
        return {"vni": k.vni, "dividers": _unhops(v.divider_ip, v.ndividers),
                "local_divider": bool(v.flags & VPC_F_LOCAL_DIVIDER)}


class SubstrateSpec(MapSpec):
    """{ip, mac}."""

    pin_name = "mzr_substrate"
    key_type = SubKey
    value_type = SubVal

    def key_of(self, entry):
        return bytes(SubKey(ip=ip_to_u32(entry["ip"])))

    def encode_value(self, entry):
        v = SubVal()
        _put_mac(v.mac, entry["mac"])
        return bytes(v)

    def decode(self, key, value):
        return {"ip": u32_to_ip(self._k(key).ip), "mac": bytes_to_mac(self._v(value).mac)}


class AgentSpec(MapSpec):
    """{ifindex, vni, ip, mac, bouncers}."""

    pin_name = "mzr_agents"
    key_type = AgentKey
    value_type = AgentVal

    def key_of(self, entry):
        return bytes(AgentKey(ifindex=entry["ifindex"]))

    def encode_value(self, entry):
        v = AgentVal(vni=entry["vni"], ip=ip_to_u32(entry["ip"]))
        _put_mac(v.mac, entry.get("mac"))
        v.nbouncers = _hops(v.bouncer_ip, entry["bouncers"], "bouncers")
        return bytes(v)

    def decode(self, key, value):
        k, v = self._k(key), self._v(value)
        return {"ifindex": k.ifindex, "vni": v.vni, "ip": u32_to_ip(v.ip), "mac": bytes_to_mac(v.mac),
                "bouncers": _unhops(v.bouncer_ip, v.nbouncers)}


# rendered map name -> spec
SPECS = {
    "if_cfg": IfCfgSpec(),
    "endpoints": EndpointSpec(),
    "networks": NetworkSpec(),
    "vpcs": VpcSpec(),
    "substrate": SubstrateSpec(),
    "agents": AgentSpec(),
}

COUNTERS_MAP = "mzr_counters"
STAGES_MAP = "mzr_stages"
DATA_MAPS = tuple(s.pin_name for s in SPECS.values()) + (COUNTERS_MAP,)


def sum_counters(values_per_key):
    """{slot: [per-cpu 8-byte values]} -> {name: total} for verdicts and drop reasons."""
    totals = {}
    for names in (COUNTERS, DROP_REASONS):
        for name, slot in names.items():
            per_cpu = values_per_key.get(slot) or []
            totals[name] = sum(int.from_bytes(b, "little") for b in per_cpu)
    return totals
