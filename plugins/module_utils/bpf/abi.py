# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
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
import struct

from ansible_collections.mizar.transit.plugins.module_utils.model import capacity

ABI_VERSION = 4
GENEVE_PORT = 6081

u8, u16, u32 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32
Mac = u8 * 6

# enum mzr_stage: a stage's slot is its place in capacity.STAGES
STAGES = dict((name, slot) for slot, name in enumerate(capacity.STAGES))
STAGE_NAMES = dict((v, k) for k, v in STAGES.items())
# a stage's chain of functions, in two banks (mzr_stages.h)
CHAIN_MAX = capacity.CHAIN_MAX
STAGE_BANK_SLOTS = CHAIN_MAX * len(STAGES)
STAGE_SLOTS = 2 * STAGE_BANK_SLOTS


def stage_slot(bank, stage, pos):
    """The mzr_stages slot of position pos of stage's chain (stage: its
    number) in bank 0 or 1."""
    return (bank * CHAIN_MAX + pos) * len(STAGES) + stage


def slot_place(slot):
    """(bank, stage number, position) of a mzr_stages slot."""
    return slot // STAGE_BANK_SLOTS, slot % len(STAGES), slot % STAGE_BANK_SLOTS // len(STAGES)


EP_TYPES = {"simple": 1, "scaled": 2, "gateway": 3}
EP_TYPE_NAMES = dict((v, k) for k, v in EP_TYPES.items())
EP_F_BYPASS_DECAP = 0x1
VPC_F_LOCAL_DIVIDER = 0x1
NET_F_LOCAL_BOUNCER = 0x1

# enum mzr_counter
COUNTERS = {
    "aborted": 0, "drop": 1, "pass": 2, "tx": 3, "redirect": 4,
    "bounce": 8, "divide": 9, "to_divider": 10, "arp_reply": 11, "decap": 12, "bypass": 13,
    "scaled": 14, "to_peer": 15, "agent_encap": 16, "agent_local": 17, "agent_pmtu": 18,
}
DROP_REASONS = {
    "geneve_trunc": 32, "geneve_version": 33, "geneve_optlen": 34, "geneve_proto": 35,
    "inner_trunc": 36, "inner_proto": 37, "inner_ip_bad": 38,
    "inner_arp_bad": 41, "ttl": 42, "unknown_vni": 43, "no_network": 44,
    "no_substrate": 45, "no_hops": 46, "loop": 47, "scaled_no_fn": 48, "to_gateway": 49,
    "adjust": 50, "agent_nocfg": 51, "agent_proto": 52, "agent_trunc": 53, "agent_spoof": 54, "no_endpoint": 55,
    "untrusted_src": 56, "geneve_critical": 57, "geneve_oam": 58, "outer_len": 59, "outer_ip_opts": 60,
    "arp_sender": 61, "arp_gratuitous": 62, "inner_ecn": 63, "agent_mcast": 64, "agent_arp_bad": 65,
    "agent_too_big": 66, "peer_src": 67, "peer_arp": 68,
    "tunnel_src": 69,
}
COUNTER_SLOTS = 96
# COUNTERS by what they count: the XDP verdicts the pipeline decided, and the
# paths a packet took through the transit program and through the agent
VERDICTS = ("aborted", "drop", "pass", "tx", "redirect")
PATHS = {
    "transit": ("bounce", "divide", "to_divider", "arp_reply", "decap", "bypass", "scaled", "to_peer"),
    "agent": ("agent_encap", "agent_local", "agent_pmtu"),
}


TAG_EMPTY = 0
TAG_DEAD = 0xFFFFFFFF
VNI_MAX = 0xFFFFFF  # a Geneve VNI is 24 bits; 0 is the empty slot's tag
H = capacity.MAX_HOPS


class IfCfg(ctypes.Structure):
    _fields_ = [("ip", u32), ("mac", Mac), ("mtu", u16), ("ifindex", u32), ("flags", u32)]


class Host(ctypes.Structure):
    _fields_ = [("ip", u32), ("mac", Mac), ("_pad", u16)]


class Endpoint(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("type", u8), ("flags", u8), ("host", u16), ("ifindex", u32),
                ("mac", Mac), ("_pad", u16)]


class Member(ctypes.Structure):
    _fields_ = [("vni", u32), ("vip", u32), ("ip", u32), ("_pad", u32)]


# ABI 3 and before: mzr_backends[slot], the backends of one scaled endpoint,
# read only to migrate an upgraded host's maps to mzr_members (bpf/loader.py)
LEGACY_BACKENDS_MAP = "mzr_backends"
LEGACY_MAX_BACKENDS = 32


class LegacyBackendSet(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("n", u32), ("backend_ip", u32 * LEGACY_MAX_BACKENDS)]


class Network(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("plen", u8), ("flags", u8), ("nbouncers", u16), ("bouncer", u16 * H),
                ("_pad", u32)]


class Vpc(ctypes.Structure):
    _fields_ = [("vni", u32), ("flags", u8), ("nplens", u8), ("ndividers", u16),
                ("plens", u8 * capacity.MAX_PLENS), ("divider", u16 * H),
                ("npeer_plens", u8), ("peer_plens", u8 * capacity.MAX_PLENS), ("_pad", u8 * 7)]


class Peer(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("plen", u8), ("src_plen", u8), ("ndividers", u16), ("src_ip", u32),
                ("peer_vni", u32), ("divider", u16 * H), ("_pad", u32)]


class StageCtx(ctypes.Structure):
    _fields_ = [("vni", u32), ("ifindex", u32), ("flags", u32), ("verdict", u32), ("next", u32), ("end", u32)]


class Source(ctypes.Structure):
    _fields_ = [("ip", u32), ("vni", u32)]


class Agent(ctypes.Structure):
    _fields_ = [("ifindex", u32), ("vni", u32), ("ip", u32), ("mac", Mac), ("nbouncers", u16),
                ("bouncer", u16 * H), ("_pad", u32)]


# C struct name for every codec, for the BTF comparison.
C_NAMES = {
    IfCfg: "mzr_if_cfg", Host: "mzr_host", Endpoint: "mzr_endpoint", Member: "mzr_member",
    Network: "mzr_network", Vpc: "mzr_vpc", Agent: "mzr_agent", StageCtx: "mzr_stage_ctx",
    Source: "mzr_source", Peer: "mzr_peer",
}


# ---------------------------------------------------------------- scalars


def ip_to_u32(ip):
    """Dotted IPv4 -> the little-endian integer of its network-order bytes."""
    return int.from_bytes(socket.inet_aton(ip), "little") if ip else 0


def u32_to_ip(v):
    return socket.inet_ntoa(int(v).to_bytes(4, "little"))


def check_vni(vni, field="vni"):
    """vni, if it fits the wire's 24 bits and is not 0; else ValueError
    (the encapsulation would carry only its low 24 bits: another VNI)."""
    if isinstance(vni, bool) or not isinstance(vni, int) or not 0 < vni <= VNI_MAX:
        raise ValueError("%s %r is not a VNI: 24 bits, 1 to %d" % (field, vni, VNI_MAX))
    return vni


NO_MAC = bytes(6)


def mac_to_bytes(mac):
    if not mac:
        return NO_MAC
    try:
        b = bytes.fromhex(mac.replace(":", ""))
    except ValueError:
        raise ValueError("bad MAC %r" % mac)
    if len(b) != 6 or len(mac) != 17:
        raise ValueError("bad MAC %r" % mac)
    return b


def bytes_to_mac(b):
    return bytes(b).hex(":")


def _put_mac(field, mac):
    ctypes.memmove(field, mac_to_bytes(mac), 6)


def mix32(h):
    """mzr_mix32() of bpf/include/mzr_hash.h."""
    return _mix32(h)


def _mix32(h):
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def slot_hash(a, b):
    """mzr_slot_hash() of bpf/include/mzr_tables.h."""
    return _mix32((a * 0x9E3779B1 + b) & 0xFFFFFFFF)


def flow_hash(src, dst):
    """mzr_flow_hash() of bpf/include/mzr_hash.h, on dotted IPv4 addresses."""
    a, b = ip_to_u32(src), ip_to_u32(dst)
    return _mix32(((a ^ b) + 0x9E3779B9 * (a & b)) & 0xFFFFFFFF)


def tuple_hash(src, dst, proto=0, ports=b""):
    """mzr_tuple_hash() of bpf/include/mzr_hash.h: dotted IPv4 addresses, the
    IP protocol number, and the first four bytes of the transport header
    (source and destination port) as they are on the wire, or b"" (no ports:
    a fragment, a protocol without ports, ARP)."""
    ports = int.from_bytes(ports, "little") if ports else 0
    return _mix32(((ip_to_u32(src) ^ ports) + 0x9E3779B9 * (ip_to_u32(dst) ^ proto)) & 0xFFFFFFFF)


def outer_sport(src, dst, proto=0, ports=b""):
    """The outer UDP source port the agent gives a flow: 0xc000 | hash >> 18."""
    return 0xC000 | (tuple_hash(src, dst, proto, ports) >> 18)


def pick(hops, src, dst):
    """The hop the datapath picks for the flow src -> dst among hops."""
    return hops[(flow_hash(src, dst) * len(hops)) >> 32]


def _cidr(cidr):
    addr, dummy, plen = cidr.partition("/")
    plen = int(plen or 32)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    net = int.from_bytes(socket.inet_aton(addr), "big") & mask
    return net.to_bytes(4, "big"), plen


# ---------------------------------------------------------------- table codecs
#
# A codec knows one map: the logical key of an entry, the home slot of a
# key, and how an entry becomes the slot's bytes and back. Hosts are
# referred to by substrate slot: encode takes host_slot(ip) -> slot, decode
# host_ip(slot) -> ip.


class FlatCodec:
    pin_name = None
    ctype = None
    slots = None
    key_len = 4  # the leading bytes of a slot that identify its entry (its key, in binary)

    def key(self, entry):
        raise NotImplementedError

    def hash_words(self, entry):
        raise NotImplementedError

    def home(self, entry):
        return slot_hash(*self.hash_words(entry)) & (self.slots - 1)

    def encode(self, entry, host_slot):
        raise NotImplementedError

    def encode_all(self, entries, host_slot):
        """[encode(entry) for entry in entries]; a codec of numerous
        entries does it in one loop."""
        return [self.encode(e, host_slot) for e in entries]

    def decode(self, raw, host_ip):
        raise NotImplementedError

    def bin_key(self, raw):
        """The binary key of a slot's (or an encoded entry's) bytes."""
        return raw[:self.key_len]


def _slots(arr, ips, host_slot):
    for i, ip in enumerate(ips):
        arr[i] = host_slot(ip)
    return len(ips)


def _ips(arr, n, host_ip):
    return [host_ip(arr[i]) for i in range(min(n, len(arr)))]


class EndpointCodec(FlatCodec):
    """{vni, ip, type, host_ip, ifindex, mac, bypass_decap}. The most
    numerous entries: packed with struct, not ctypes (same layout, the BTF
    test checks the ctypes twin). A scaled endpoint's backends are not in
    its entry but in mzr_members (MemberCodec); decode gives backends [],
    which Snapshot.logical() fills from there."""

    pin_name = "mzr_endpoints"
    ctype = Endpoint
    slots = capacity.EP_SLOTS
    layout = struct.Struct("<I4sBBHI6sH")
    key_len = 8  # vni, ip

    def key(self, entry):
        return (entry["vni"], entry["ip"])

    def hash_words(self, entry):
        return entry["vni"], ip_to_u32(entry["ip"])

    def encode(self, entry, host_slot):
        return self.encode_all((entry,), host_slot)[0]

    def encode_all(self, entries, host_slot):
        """Every entry's bytes in one loop, with the lookups bound once: a
        host's 100,000 endpoints are encoded on every run, even one that
        changes nothing."""
        pack, aton, fromhex, types, out = self.layout.pack, socket.inet_aton, bytes.fromhex, EP_TYPES, []
        for entry in entries:
            get = entry.get
            kind = get("type") or "simple"
            ifindex = get("ifindex") or 0
            host = host_slot(entry["host_ip"]) if kind == "simple" and not ifindex else 0
            vni = entry["vni"]
            if vni.__class__ is not int or not 0 < vni <= VNI_MAX:
                check_vni(vni)
            mac = get("mac")
            raw_mac = fromhex(mac.replace(":", "")) if mac else NO_MAC
            if len(raw_mac) != 6 or (mac and len(mac) != 17):
                raw_mac = mac_to_bytes(mac)  # which says what is wrong with it
            out.append(pack(vni, aton(entry["ip"]), types[kind], EP_F_BYPASS_DECAP if get("bypass_decap") else 0,
                            host, ifindex, raw_mac, 0))
        return out

    def bin_key_of(self, key):
        """The binary key of a logical key (vni, ip)."""
        return struct.pack("<I4s", key[0], socket.inet_aton(key[1]))

    def decode(self, raw, host_ip):
        vni, ip, etype, flags, host, ifindex, mac, dummy = self.layout.unpack(raw)
        kind = EP_TYPE_NAMES.get(etype, str(etype))
        return {
            "vni": vni, "ip": socket.inet_ntoa(ip), "type": kind,
            "host_ip": host_ip(host) if host else None, "ifindex": ifindex,
            "mac": bytes_to_mac(mac), "bypass_decap": bool(flags & EP_F_BYPASS_DECAP),
            "backends": [],
        }


class PrefixCodec(FlatCodec):
    """A table keyed by (vni, cidr), homed by (vni | plen << 24, address):
    networks, and the peer routes looked up like them."""

    key_len = 9  # vni, ip, plen

    def key(self, entry):
        net, plen = _cidr(entry["cidr"])
        return (entry["vni"], "%s/%d" % (socket.inet_ntoa(net), plen))

    def hash_words(self, entry):
        net, plen = _cidr(entry["cidr"])
        return entry["vni"] | (plen << 24), int.from_bytes(net, "little")


class NetworkCodec(PrefixCodec):
    """{vni, cidr, bouncers, local_bouncer}."""

    pin_name = "mzr_networks"
    ctype = Network
    slots = capacity.NET_SLOTS

    def encode(self, entry, host_slot):
        net, plen = _cidr(entry["cidr"])
        v = Network(vni=check_vni(entry["vni"]), ip=int.from_bytes(net, "little"), plen=plen,
                    flags=NET_F_LOCAL_BOUNCER if entry.get("local_bouncer") else 0)
        v.nbouncers = _slots(v.bouncer, entry["bouncers"], host_slot)
        return bytes(v)

    def decode(self, raw, host_ip):
        v = Network.from_buffer_copy(raw)
        return {"vni": v.vni, "cidr": "%s/%d" % (u32_to_ip(v.ip), v.plen),
                "bouncers": _ips(v.bouncer, v.nbouncers, host_ip),
                "local_bouncer": bool(v.flags & NET_F_LOCAL_BOUNCER)}


def _plens(entry, field, what):
    plens = sorted(set(entry.get(field) or []), reverse=True)
    if len(plens) > capacity.MAX_PLENS:
        raise ValueError("VNI %d: %d %s prefix lengths, at most %d"
                         % (entry["vni"], len(plens), what, capacity.MAX_PLENS))
    return plens


class VpcCodec(FlatCodec):
    """{vni, dividers, local_divider}; the prefix lengths to try come from
    the networks this host holds for the VNI (entry["plens"]) and from its
    peer routes (entry["peer_plens"])."""

    pin_name = "mzr_vpcs"
    ctype = Vpc
    slots = capacity.VPC_SLOTS

    def key(self, entry):
        return entry["vni"]

    def hash_words(self, entry):
        return entry["vni"], 0

    def encode(self, entry, host_slot):
        plens = _plens(entry, "plens", "network")
        peer_plens = _plens(entry, "peer_plens", "peer route")
        v = Vpc(vni=check_vni(entry["vni"]), flags=VPC_F_LOCAL_DIVIDER if entry.get("local_divider") else 0,
                nplens=len(plens), npeer_plens=len(peer_plens))
        for i, p in enumerate(plens):
            v.plens[i] = p
        for i, p in enumerate(peer_plens):
            v.peer_plens[i] = p
        v.ndividers = _slots(v.divider, entry.get("dividers") or [], host_slot)
        return bytes(v)

    def decode(self, raw, host_ip):
        v = Vpc.from_buffer_copy(raw)
        return {"vni": v.vni, "dividers": _ips(v.divider, v.ndividers, host_ip),
                "local_divider": bool(v.flags & VPC_F_LOCAL_DIVIDER),
                "plens": [v.plens[i] for i in range(min(v.nplens, capacity.MAX_PLENS))],
                "peer_plens": [v.peer_plens[i] for i in range(min(v.npeer_plens, capacity.MAX_PLENS))]}


class PeerCodec(PrefixCodec):
    """{vni, cidr, peer_vni, dividers, src_cidr}: on a divider of the VPC
    of vni, the CIDR of a VPC peered with it (peer_vni), the peer's
    dividers, and the VPC's own CIDR (the sources that may cross). Keyed
    and homed like a network."""

    pin_name = "mzr_peers"
    ctype = Peer
    slots = capacity.PEER_SLOTS

    def encode(self, entry, host_slot):
        net, plen = _cidr(entry["cidr"])
        src, src_plen = _cidr(entry["src_cidr"])
        vni, peer_vni = check_vni(entry["vni"]), check_vni(entry["peer_vni"], "peer_vni")
        if peer_vni == vni:
            raise ValueError("peer_vni %d is the VNI the packet has: a peer route leads to another VPC" % vni)
        v = Peer(vni=vni, ip=int.from_bytes(net, "little"), plen=plen, src_plen=src_plen,
                 src_ip=int.from_bytes(src, "little"), peer_vni=peer_vni)
        v.ndividers = _slots(v.divider, entry["dividers"], host_slot)
        return bytes(v)

    def decode(self, raw, host_ip):
        v = Peer.from_buffer_copy(raw)
        return {"vni": v.vni, "cidr": "%s/%d" % (u32_to_ip(v.ip), v.plen), "peer_vni": v.peer_vni,
                "dividers": _ips(v.divider, v.ndividers, host_ip),
                "src_cidr": "%s/%d" % (u32_to_ip(v.src_ip), v.src_plen)}


class AgentCodec(FlatCodec):
    """{ifindex, vni, ip, mac, bouncers}."""

    pin_name = "mzr_agents"
    ctype = Agent
    slots = capacity.AGENT_SLOTS

    def key(self, entry):
        return entry["ifindex"]

    def hash_words(self, entry):
        return entry["ifindex"], 0

    def encode(self, entry, host_slot):
        v = Agent(ifindex=entry["ifindex"], vni=check_vni(entry["vni"]), ip=ip_to_u32(entry["ip"]))
        _put_mac(v.mac, entry.get("mac"))
        v.nbouncers = _slots(v.bouncer, entry["bouncers"], host_slot)
        return bytes(v)

    def decode(self, raw, host_ip):
        v = Agent.from_buffer_copy(raw)
        return {"ifindex": v.ifindex, "vni": v.vni, "ip": u32_to_ip(v.ip), "mac": bytes_to_mac(v.mac),
                "bouncers": _ips(v.bouncer, v.nbouncers, host_ip)}


class SourceCodec(FlatCodec):
    """{ip, vni}: an outer source a Geneve packet may come from; vni 0: any
    VNI (a transit host), else the one VNI of a tunnel peer. Homed by the
    address alone (mzr_source_find() probes one run for all its VNIs);
    the address is the tag."""

    pin_name = "mzr_sources"
    ctype = Source
    slots = capacity.SRC_SLOTS
    layout = struct.Struct("<4sI")
    key_len = 8  # ip, vni

    def key(self, entry):
        return (entry["ip"], entry.get("vni") or 0)

    def hash_words(self, entry):
        return ip_to_u32(entry["ip"]), 0

    def encode(self, entry, host_slot):
        ip = socket.inet_aton(entry["ip"])
        if ip in (b"\0\0\0\0", b"\xff\xff\xff\xff"):
            raise ValueError("%s cannot be a tunnel source" % entry["ip"])
        vni = entry.get("vni") or 0
        return self.layout.pack(ip, vni and check_vni(vni))

    def decode(self, raw, host_ip):
        ip, vni = self.layout.unpack(raw)
        return {"ip": socket.inet_ntoa(ip), "vni": vni}


class MemberCodec(FlatCodec):
    """{vni, vip, ip}: ip is a backend of the scaled endpoint vip of VPC
    vni. Keyed and homed by all three (mzr_member_find() of
    bpf/include/mzr_tables.h); the plan derives these entries from the
    scaled endpoints' backends (tables.members_of())."""

    pin_name = "mzr_members"
    ctype = Member
    slots = capacity.MEMBER_SLOTS
    layout = struct.Struct("<I4s4sI")
    key_len = 12  # vni, vip, ip

    def key(self, entry):
        return (entry["vni"], entry["vip"], entry["ip"])

    def hash_words(self, entry):
        return entry["vni"] ^ _mix32(ip_to_u32(entry["vip"])), ip_to_u32(entry["ip"])

    def encode(self, entry, host_slot):
        return self.layout.pack(check_vni(entry["vni"]), socket.inet_aton(entry["vip"]),
                                socket.inet_aton(entry["ip"]), 0)

    def decode(self, raw, host_ip):
        vni, vip, ip, dummy = self.layout.unpack(raw)
        return {"vni": vni, "vip": socket.inet_ntoa(vip), "ip": socket.inet_ntoa(ip)}


def encode_if_cfg(entry):
    v = IfCfg(ip=ip_to_u32(entry["ip"]), ifindex=entry["ifindex"], flags=entry.get("flags", 0),
              mtu=entry.get("mtu") or 0)
    _put_mac(v.mac, entry["mac"])
    return bytes(v)


def decode_if_cfg(raw):
    v = IfCfg.from_buffer_copy(raw)
    return {"ip": u32_to_ip(v.ip), "mac": bytes_to_mac(v.mac), "ifindex": v.ifindex, "flags": v.flags,
            "mtu": v.mtu}


def encode_host(entry):
    v = Host(ip=ip_to_u32(entry["ip"]))
    _put_mac(v.mac, entry["mac"])
    return bytes(v)


def decode_host(raw):
    v = Host.from_buffer_copy(raw)
    return {"ip": u32_to_ip(v.ip), "mac": bytes_to_mac(v.mac)} if v.ip else None


def decode_legacy_backends(raw):
    """(owner key, [ips]) of an ABI 3 backend set's slot, or None for a free slot."""
    v = LegacyBackendSet.from_buffer_copy(raw)
    if not v.vni:
        return None
    return (v.vni, u32_to_ip(v.ip)), [u32_to_ip(v.backend_ip[i]) for i in range(min(v.n, LEGACY_MAX_BACKENDS))]


# rendered map name -> codec of its flat table
TABLES = {
    "endpoints": EndpointCodec(),
    "networks": NetworkCodec(),
    "vpcs": VpcCodec(),
    "agents": AgentCodec(),
    "sources": SourceCodec(),
    "peers": PeerCodec(),
    "members": MemberCodec(),
}

IF_CFG_MAP = "mzr_if_cfg"
SUBSTRATE_MAP = "mzr_substrate"
STAGE_CTX_MAP = "mzr_stage_ctx"
COUNTERS_MAP = "mzr_counters"
STAGES_MAP = "mzr_stages"
STAGE_BANK_MAP = "mzr_stage_bank"
DATA_MAPS = tuple(c.pin_name for c in TABLES.values()) + (
    IF_CFG_MAP, SUBSTRATE_MAP, COUNTERS_MAP)


def sum_slots(values_per_key, names):
    """{slot: [per-cpu 8-byte values]} -> {name: total} for names ({name: slot})."""
    return dict((name, sum(int.from_bytes(b, "little") for b in values_per_key.get(slot) or []))
                for name, slot in names.items())


def sum_counters(values_per_key):
    """{slot: [per-cpu 8-byte values]} -> {name: total} for verdicts and drop reasons."""
    totals = sum_slots(values_per_key, COUNTERS)
    totals.update(sum_slots(values_per_key, DROP_REASONS))
    return totals
