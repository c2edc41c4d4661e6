# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning a shipped function's `config` into the entries of its maps.

Each shipped function with maps has a Configurator here: it reads what the
function's maps hold, compares it with the config (already checked against
the function's schema by the validator), and writes the difference so that
packets see either the old or the new configuration, whole.

The configurations are double-buffered: the set packets do not use is
written, then the active index flips to it. The set written is the one the
previous flip retired, and a packet that read the active index before that
flip may still be reading the retired set through its pointer (a function
looks the set up once per packet). So before it writes, a change waits until
every program that was running has finished (_retired_set_free(), an RCU
grace period): the retired set is then read by no packet, and however soon
two changes follow each other, no packet ever sees a set half rewritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import socket
import struct

from ansible_collections.mizar.transit.plugins.module_utils.bpf.abi import check_vni, ip_to_u32, mix32, slot_hash, \
    tuple_hash, u32_to_ip
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from ansible_collections.mizar.transit.plugins.module_utils.bpf.libbpf import Map, possible_cpus
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity, maglev
from ansible_collections.mizar.transit.plugins.module_utils.model.functions import duration_text, parse_bitrate, \
    parse_duration

u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64

ACL_MAX_RULES = 64
ACL_PROTOS = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17}
ACL_PROTO_NAMES = dict((v, k) for k, v in ACL_PROTOS.items())
ACL_DROP = 1


class AclRule(ctypes.Structure):
    _fields_ = [("vni", u32), ("src", u32), ("src_mask", u32), ("dst", u32), ("dst_mask", u32),
                ("proto", u8), ("action", u8), ("port", u16)]


class AclSet(ctypes.Structure):
    _fields_ = [("nrules", u32), ("rule", AclRule * ACL_MAX_RULES)]


C_NAMES = {AclRule: "mzr_acl_rule", AclSet: "mzr_acl_set"}  # the acl's codecs, by their C names


# bpf/functions/ratelimit.bpf.c
RL_MAX_LIMITS = 256
RL_IDS = 2 * RL_MAX_LIMITS  # a new configuration's new limits take indexes the one in use does not hold
RL_SLOTS = 1024
RL_PROBES = 16
RL_NO_LIMIT = 0xFFFFFFFF
RL_F_ENDPOINTS = 0x1
# the least a CPU takes from a shared clock at once, in ns of the rate: the
# cost of a batch is rounded up to whole ns, which this keeps below 0.1%
RL_MIN_BATCH_NS = 1000
NS = 10 ** 9


class RlSlot(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("id", u32), ("flags", u32)]


class RlLimit(ctypes.Structure):
    _fields_ = [("pps", u64), ("bps", u64), ("burst_ns", u64), ("pkt_batch", u64), ("pkt_cost_ns", u64),
                ("byte_batch", u64), ("byte_cost_ns", u64), ("gen", u32), ("_pad", u32)]


class RlSet(ctypes.Structure):
    _fields_ = [("nlimits", u32), ("gen", u32), ("slot", RlSlot * RL_SLOTS), ("limit", RlLimit * RL_IDS)]


class RlShared(ctypes.Structure):
    _fields_ = [("pkt_tat", u64), ("byte_tat", u64), ("_pad", u64 * 6)]


class RlLocal(ctypes.Structure):
    _fields_ = [("gen", u32), ("_pad", u32), ("pkt_tokens", u64), ("byte_tokens", u64), ("passed", u64),
                ("dropped", u64), ("passed_bytes", u64), ("dropped_bytes", u64)]


# A configuration as the control plane compares it: its limits, sorted by
# key, with what the inventory says of them (no indexes, nothing derived
# from the host)
class RlEntry(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32), ("pps", u64), ("bps", u64), ("burst_ns", u64)]


RL_C_NAMES = {RlSlot: "mzr_rl_slot", RlLimit: "mzr_rl_limit", RlSet: "mzr_rl_set", RlShared: "mzr_rl_shared",
              RlLocal: "mzr_rl_local"}


class FunctionConfigError(Exception):
    pass


def _prefix(cidr):
    addr, dummy, plen = cidr.partition("/")
    plen = int(plen or 32)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    net = int.from_bytes(socket.inet_aton(addr), "big") & mask
    # as the datapath loads them: network-order bytes read little-endian
    return (int.from_bytes(net.to_bytes(4, "big"), "little"),
            int.from_bytes(mask.to_bytes(4, "big"), "little"))


def _unprefix(net, mask):
    m = int.from_bytes(mask.to_bytes(4, "little"), "big")
    plen = bin(m).count("1")
    return "%s/%d" % (socket.inet_ntoa(net.to_bytes(4, "little")), plen)


def _vni(vni_of, vpc, here):
    """The VNI of VPC vpc, checked; the error names here (the item)."""
    if vpc not in vni_of:
        raise FunctionConfigError("%s.vpc: no VPC named %r" % (here, vpc))
    try:
        return check_vni(vni_of[vpc], "the VNI of VPC %r," % vpc)
    except ValueError as e:
        raise FunctionConfigError("%s.vpc: %s" % (here, e))


def _retired_set_free():
    """Wait until no packet reads the set the last flip retired: every
    packet that read the old active index had entered its program before
    that flip, and the wait returns once every program running now has
    finished (libbpf.wait_for_programs). Called before the retired set, the
    one a change fills, is written."""
    libbpf.wait_for_programs()


def _active(sets, active):
    """(slot, bytes) of the set of a double-buffered function packets use now."""
    cur = int.from_bytes(active.lookup(bytes(4)), "little") & 1
    return cur, sets.lookup(cur.to_bytes(4, "little"))


class Acl:
    """Rules of bpf/functions/acl.bpf.c: double-buffered in mzr_acl_sets,
    selected by mzr_acl_active."""

    maps = ("mzr_acl_sets", "mzr_acl_active")

    def encode(self, config, vni_of):
        rules = config.get("rules") or []
        if len(rules) > ACL_MAX_RULES:
            raise FunctionConfigError("acl: %d rules, at most %d" % (len(rules), ACL_MAX_RULES))
        s = AclSet(nrules=len(rules))
        for i, r in enumerate(rules):
            vni = _vni(vni_of, r.get("vpc"), "acl: rules[%d]" % i)
            src, smask = _prefix(r.get("src") or "0.0.0.0/0")
            dst, dmask = _prefix(r["dst"])
            port = int(r.get("port") or 0)
            s.rule[i] = AclRule(vni=vni, src=src, src_mask=smask, dst=dst, dst_mask=dmask,
                                proto=ACL_PROTOS[r.get("protocol", "any")], action=ACL_DROP,
                                port=socket.htons(port))
        return bytes(s)

    def decode(self, raw, vpc_of):
        s = AclSet.from_buffer_copy(raw)
        out = []
        for i in range(min(s.nrules, ACL_MAX_RULES)):
            r = s.rule[i]
            rule = {"vpc": vpc_of.get(r.vni, r.vni), "src": _unprefix(r.src, r.src_mask),
                    "dst": _unprefix(r.dst, r.dst_mask), "protocol": ACL_PROTO_NAMES.get(r.proto, r.proto),
                    "action": "drop"}
            if r.port:
                rule["port"] = socket.ntohs(r.port)
            out.append(rule)
        return {"rules": out}

    def current(self, pin_dir):
        """The bytes of the rule set in use (compare with encode())."""
        with Map.from_pin(os.path.join(pin_dir, "mzr_acl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_acl_active")) as active:
            return _active(sets, active)[1]

    def converge(self, pin_dir, config, vni_of, check_mode=False):
        """Returns (changed, before, after) with configs in inventory terms."""
        vpc_of = dict((v, k) for k, v in vni_of.items())
        with Map.from_pin(os.path.join(pin_dir, "mzr_acl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_acl_active")) as active:
            cur, have = _active(sets, active)
            want = self.encode(config, vni_of)
            before = self.decode(have, vpc_of)
            if have == want:
                return False, before, before
            if not check_mode:
                nxt = (cur ^ 1).to_bytes(4, "little")
                _retired_set_free()  # a packet from before the last flip may still read it
                sets.update(nxt, want)  # the inactive set, whole
                active.update(bytes(4), nxt)  # one aligned word: the flip
            return True, before, self.decode(want, vpc_of)


def _batch(rate, unit_ns, burst_ns, ncpus):
    """(units a CPU takes at once, their cost in ns) for a rate of `rate`
    units per unit_ns ns: burst / (2 * ncpus) worth of it, so that what all
    CPUs hold unspent stays within half the burst; at least one unit and
    RL_MIN_BATCH_NS. The cost is rounded up: never above the rate."""
    target = max(burst_ns // (2 * ncpus), RL_MIN_BATCH_NS)
    batch = max(1, rate * target // unit_ns)
    return batch, -(-batch * unit_ns // rate)


def rl_limit(entry, ncpus, gen):
    """An RlLimit of an RlEntry, its batches sized for ncpus CPUs."""
    lim = RlLimit(pps=entry.pps, bps=entry.bps, burst_ns=entry.burst_ns, gen=gen)
    if entry.pps:
        lim.pkt_batch, lim.pkt_cost_ns = _batch(entry.pps, NS, entry.burst_ns, ncpus)
    if entry.bps:
        lim.byte_batch, lim.byte_cost_ns = _batch(entry.bps, 8 * NS, entry.burst_ns, ncpus)
    return lim


def rl_entries(s):
    """{(vni, ip): (id, RlEntry)} of the limits in an RlSet."""
    out = {}
    for slot in s.slot:
        if slot.vni and slot.id != RL_NO_LIMIT and slot.id < RL_IDS:
            lim = s.limit[slot.id]
            entry = RlEntry(vni=slot.vni, ip=slot.ip, pps=lim.pps, bps=lim.bps, burst_ns=lim.burst_ns)
            out[(slot.vni, slot.ip)] = (slot.id, entry)
    return out


def rl_build(entries, old, ncpus):
    """The RlSet of entries ([RlEntry], sorted) to replace old (the RlSet
    in use): a limit whose key old holds keeps its index and state (its
    generation); a new one takes an index old does not use and a new
    generation. Returns (the set, the indexes whose state starts afresh)."""
    had = rl_entries(old)
    taken = set(i for i, dummy in had.values())
    free = (i for i in range(RL_IDS) if i not in taken)
    s = RlSet(nlimits=len(entries), gen=old.gen)
    fresh = []
    vpcs = {}  # vni -> [id of the VPC's own limit, flags]
    for e in entries:
        key = (e.vni, e.ip)
        if key in had:
            i = had[key][0]
            gen = old.limit[i].gen
        else:
            i = next(free)
            s.gen = s.gen % 0xFFFFFFFF + 1  # never 0: a CPU's zeroed state holds no generation
            gen = s.gen
            fresh.append(i)
        s.limit[i] = rl_limit(e, ncpus, gen)
        vpc = vpcs.setdefault(e.vni, [RL_NO_LIMIT, 0])
        if e.ip:
            vpc[1] |= RL_F_ENDPOINTS
            _rl_place(s, RlSlot(vni=e.vni, ip=e.ip, id=i))
        else:
            vpc[0] = i
    for vni in sorted(vpcs):
        _rl_place(s, RlSlot(vni=vni, ip=0, id=vpcs[vni][0], flags=vpcs[vni][1]))
    return s, fresh


def _rl_place(s, entry):
    home = slot_hash(entry.vni, entry.ip)
    for i in range(RL_PROBES):
        k = (home + i) & (RL_SLOTS - 1)
        if not s.slot[k].vni:
            s.slot[k] = entry
            return
    raise FunctionConfigError("ratelimit: no free slot within %d of the home of VNI %d, %s: the limits do not fit "
                              "the table" % (RL_PROBES, entry.vni, u32_to_ip(entry.ip)))


class Ratelimit:
    """Limits of bpf/functions/ratelimit.bpf.c: double-buffered in
    mzr_rl_sets, selected by mzr_rl_active; each limit's shared clocks in
    mzr_rl_shared and each CPU's budget and counters in mzr_rl_local.

    The bytes compared (encode(), current()) are the configuration alone,
    its limits sorted by key: what converge() writes also holds indexes and
    batch sizes that depend on the set in use and the host's CPUs."""

    maps = ("mzr_rl_sets", "mzr_rl_active", "mzr_rl_shared", "mzr_rl_local")

    def entries(self, config, vni_of):
        """[RlEntry] of config, sorted by key."""
        limits = config.get("limits") or []
        if len(limits) > RL_MAX_LIMITS:
            raise FunctionConfigError("ratelimit: %d limits, at most %d" % (len(limits), RL_MAX_LIMITS))
        out = {}
        for i, lim in enumerate(limits):
            here = "ratelimit: limits[%d]" % i
            vni = _vni(vni_of, lim.get("vpc"), here)
            try:
                entry = RlEntry(vni=vni, ip=ip_to_u32(lim.get("ip")), pps=int(lim.get("pps") or 0),
                                bps=parse_bitrate(lim.get("bps") or 0), burst_ns=parse_duration(lim.get("burst")))
            except (ValueError, OSError, TypeError) as e:
                raise FunctionConfigError("%s: %s" % (here, e))
            if not (entry.pps or entry.bps) or not entry.burst_ns:
                raise FunctionConfigError("%s: needs a rate (pps or bps) and a burst above 0" % here)
            if (vni, entry.ip) in out:
                raise FunctionConfigError("%s: VPC %s, %s is limited twice" % (here, lim["vpc"], lim.get("ip") or
                                                                               "as a whole"))
            out[(vni, entry.ip)] = entry
        return [out[k] for k in sorted(out)]

    def encode(self, config, vni_of):
        return b"".join(bytes(e) for e in self.entries(config, vni_of))

    def decode(self, raw, vpc_of):
        size = ctypes.sizeof(RlEntry)
        out = []
        for off in range(0, len(raw) - size + 1, size):
            e = RlEntry.from_buffer_copy(raw, off)
            lim = {"vpc": vpc_of.get(e.vni, e.vni), "burst": duration_text(e.burst_ns)}
            if e.ip:
                lim["ip"] = u32_to_ip(e.ip)
            if e.pps:
                lim["pps"] = e.pps
            if e.bps:
                lim["bps"] = e.bps
            out.append(lim)
        return {"limits": out}

    @staticmethod
    def _active(sets, active):
        """(slot, RlSet) of the set packets use now."""
        cur, raw = _active(sets, active)
        return cur, RlSet.from_buffer_copy(raw)

    @staticmethod
    def _canonical(s):
        had = rl_entries(s)
        return b"".join(bytes(had[k][1]) for k in sorted(had))

    def current(self, pin_dir):
        """The configuration in use, as encode() gives it."""
        with Map.from_pin(os.path.join(pin_dir, "mzr_rl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_rl_active")) as active:
            return self._canonical(self._active(sets, active)[1])

    def converge(self, pin_dir, config, vni_of, check_mode=False):
        """Returns (changed, before, after) with configs in inventory terms."""
        vpc_of = dict((v, k) for k, v in vni_of.items())
        entries = self.entries(config, vni_of)
        want = b"".join(bytes(e) for e in entries)
        with Map.from_pin(os.path.join(pin_dir, "mzr_rl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_rl_active")) as active, \
                Map.from_pin(os.path.join(pin_dir, "mzr_rl_shared")) as shared:
            cur, old = self._active(sets, active)
            have = self._canonical(old)
            before = self.decode(have, vpc_of)
            if have == want:
                return False, before, before
            if not check_mode:
                new, fresh = rl_build(entries, old, possible_cpus())
                # a packet from before the last flip may still read the retired
                # set, and charge the shared clocks of its indexes
                _retired_set_free()
                for i in fresh:  # indexes the set in use does not hold: no packet reads them once the wait is over
                    shared.update(i.to_bytes(4, "little"), bytes(RlShared()))
                nxt = (cur ^ 1).to_bytes(4, "little")
                sets.update(nxt, bytes(new))  # the inactive set, whole
                active.update(bytes(4), nxt)  # one aligned word: the flip
            return True, before, self.decode(want, vpc_of)

    def stats(self, pin_dir, vni_of):
        """Each limit in use with its counters summed over the CPUs that hold
        its generation: [{vpc, ip (absent for a VPC), passed, dropped,
        passed_bytes, dropped_bytes}], sorted by key."""
        vpc_of = dict((v, k) for k, v in vni_of.items())
        with Map.from_pin(os.path.join(pin_dir, "mzr_rl_sets")) as sets, \
                Map.from_pin(os.path.join(pin_dir, "mzr_rl_active")) as active, \
                Map.from_pin(os.path.join(pin_dir, "mzr_rl_local")) as local:
            s = self._active(sets, active)[1]
            out = []
            for (vni, ip), (i, dummy) in sorted(rl_entries(s).items()):
                row = {"vpc": vpc_of.get(vni, vni), "passed": 0, "dropped": 0, "passed_bytes": 0, "dropped_bytes": 0}
                if ip:
                    row["ip"] = u32_to_ip(ip)
                for raw in local.lookup(i.to_bytes(4, "little")):
                    loc = RlLocal.from_buffer_copy(raw)
                    if loc.gen == s.limit[i].gen:
                        for k in ("passed", "dropped", "passed_bytes", "dropped_bytes"):
                            row[k] += getattr(loc, k)
                out.append(row)
            return out


# bpf/functions/scaled.bpf.c
LB_MAX_VIPS = capacity.MAX_SCALED
LB_COUNTERS = (("new", 0), ("established", 1), ("moved", 2), ("local", 3), ("remote", 4), ("at_backend", 5),
               ("no_vip", 8), ("no_backend", 9), ("forged", 10), ("not_here", 11), ("malformed", 12),
               ("too_big", 13), ("adjust", 14), ("no_route", 15))


class LbVipKey(ctypes.Structure):
    _fields_ = [("vni", u32), ("ip", u32)]


class LbVip(ctypes.Structure):
    _fields_ = [("ring", u32), ("size", u32), ("nbackends", u32), ("_pad", u32)]


class LbMemberKey(ctypes.Structure):
    _fields_ = [("vni", u32), ("vip", u32), ("ip", u32)]


class LbMember(ctypes.Structure):
    _fields_ = [("weight", u32)]


class LbChunk(ctypes.Structure):
    _fields_ = [("ip", u32 * maglev.CHUNK_SLOTS)]


class LbFlow(ctypes.Structure):
    _fields_ = [("vni", u32), ("src", u32), ("dst", u32), ("sport", u16), ("dport", u16), ("proto", u8),
                ("_pad", u8 * 3)]


class LbConn(ctypes.Structure):
    _fields_ = [("backend", u32)]


LB_C_NAMES = {LbVipKey: "mzr_lb_vip_key", LbVip: "mzr_lb_vip", LbMemberKey: "mzr_lb_member_key",
              LbMember: "mzr_lb_member", LbChunk: "mzr_lb_chunk", LbFlow: "mzr_lb_flow", LbConn: "mzr_lb_conn"}


def lb_slot(size, vni, src, dst, proto=0, ports=b""):
    """The ring slot of a flow (scaled.bpf.c: lb_backend), on dotted addresses
    and the transport header's first four bytes as on the wire (b"": none)."""
    return mix32(tuple_hash(src, dst, proto, ports) ^ vni) % size


def lb_ring(backends, size):
    """The ring of a scaled endpoint as the function's maps hold it: each
    slot's backend as a u32 of its address, from [(ip, weight)]."""
    if not size:
        return []
    ips = [ip_to_u32(ip) for ip, dummy in backends]
    return [ips[i] for i in maglev.ring(list(backends), size)]


class Scaled:
    """Scaled endpoints of bpf/functions/scaled.bpf.c: each VIP's entry in
    mzr_lb_vips, its backends in mzr_lb_members, its Maglev ring in
    consecutive chunks of mzr_lb_ring; the flows in mzr_lb_conns are the
    datapath's own.

    The bytes compared (encode(), current()) are the configuration alone:
    per VIP, sorted by key, its ring size and its backends with their
    weights, sorted by address. The ring follows from them (maglev.ring(),
    the same on every host); where it lies in the pool does not count."""

    maps = ("mzr_lb_vips", "mzr_lb_members", "mzr_lb_ring", "mzr_lb_conns", "mzr_lb_counters")

    def entries(self, config, vni_of):
        """{(vni, ip): (ring size, [(backend ip, weight)], sorted)} of config."""
        eps = config.get("endpoints") or []
        if len(eps) > LB_MAX_VIPS:
            raise FunctionConfigError("scaled: %d scaled endpoints, at most %d" % (len(eps), LB_MAX_VIPS))
        out = {}
        for i, ep in enumerate(eps):
            here = "scaled: endpoints[%d]" % i
            vni = _vni(vni_of, ep.get("vpc"), here)
            backends = {}
            try:
                vip = ip_to_u32(ep.get("ip"))
                for b in ep.get("backends") or []:
                    weight = b.get("weight", 1)
                    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= maglev.MAX_WEIGHT:
                        raise ValueError("backend %s: weight %r is not an integer 0..%d"
                                         % (b.get("ip"), weight, maglev.MAX_WEIGHT))
                    backends[ip_to_u32(b.get("ip"))] = weight
            except (ValueError, OSError, TypeError, AttributeError) as e:
                raise FunctionConfigError("%s: %s" % (here, e))
            size = ep.get("ring_size")
            want = maglev.endpoint_ring_size(list(backends.values()))
            if size != want:
                raise FunctionConfigError("%s.ring_size: %r, where %d backends (%s drained) make %d"
                                          % (here, size, len(backends), "all" if not want else "some or none", want))
            if (vni, vip) in out:
                raise FunctionConfigError("%s: VPC %s, %s is listed twice" % (here, ep.get("vpc"), ep.get("ip")))
            out[(vni, vip)] = (size, sorted(backends.items()))
        return out

    @staticmethod
    def _bytes(entries):
        out = []
        for (vni, vip) in sorted(entries):
            size, backends = entries[(vni, vip)]
            out.append(struct.pack("<IIII", vni, vip, size, len(backends)))
            out.extend(struct.pack("<II", ip, weight) for ip, weight in backends)
        return b"".join(out)

    def encode(self, config, vni_of):
        return self._bytes(self.entries(config, vni_of))

    def decode(self, raw, vpc_of):
        out, off = [], 0
        while off + 16 <= len(raw):
            vni, vip, size, n = struct.unpack_from("<IIII", raw, off)
            off += 16
            backends = []
            for dummy in range(n):
                ip, weight = struct.unpack_from("<II", raw, off)
                off += 8
                backends.append({"ip": u32_to_ip(ip), "weight": weight})
            out.append({"vpc": vpc_of.get(vni, vni), "ip": u32_to_ip(vip), "ring_size": size, "backends": backends})
        return {"endpoints": out}

    @staticmethod
    def _read(vips, members):
        """({(vni, vip): LbVip}, {(vni, vip): {ip: weight}}) as the maps hold them."""
        have = {}
        for k, v in vips.items():
            key = LbVipKey.from_buffer_copy(k)
            have[(key.vni, key.ip)] = LbVip.from_buffer_copy(v)
        sets = {}
        for k, v in members.items():
            key = LbMemberKey.from_buffer_copy(k)
            sets.setdefault((key.vni, key.vip), {})[key.ip] = LbMember.from_buffer_copy(v).weight
        return have, sets

    @staticmethod
    def _canonical(have, sets):
        return Scaled._bytes(dict((k, (v.size, sorted(sets.get(k, {}).items()))) for k, v in have.items()))

    def _open(self, pin_dir, names):
        return [Map.from_pin(os.path.join(pin_dir, n)) for n in names]

    def current(self, pin_dir):
        """The configuration in use, as encode() gives it."""
        vips, members = self._open(pin_dir, ("mzr_lb_vips", "mzr_lb_members"))
        with vips, members:
            return self._canonical(*self._read(vips, members))

    def converge(self, pin_dir, config, vni_of, check_mode=False):
        """Returns (changed, before, after) with configs in inventory terms.

        Per VIP whose backends or weights change: its new ring goes into
        free chunks of the pool, its new backends into mzr_lb_members, then
        its entry in mzr_lb_vips is replaced (packets switch rings at once),
        then the backends that left are removed. A VIP that goes is removed
        entry first, backends after."""
        vpc_of = dict((v, k) for k, v in vni_of.items())
        want = self.entries(config, vni_of)
        vips, members, ring = self._open(pin_dir, ("mzr_lb_vips", "mzr_lb_members", "mzr_lb_ring"))
        with vips, members, ring:
            have, sets = self._read(vips, members)
            before = self._canonical(have, sets)
            after = self._bytes(want)
            if before == after:
                d = self.decode(before, vpc_of)
                return False, d, d
            if not check_mode:
                self._apply(want, have, sets, vips, members, ring)
            return True, self.decode(before, vpc_of), self.decode(after, vpc_of)

    @staticmethod
    def _apply(want, have, sets, vips, members, ring):
        used = dict((k, (v.ring, -(-v.size // maglev.CHUNK_SLOTS))) for k, v in have.items() if v.size)
        for key in sorted(want):
            size, backends = want[key]
            old = have.get(key)
            if old is not None and old.size == size and sorted(sets.get(key, {}).items()) == backends:
                continue
            start = 0
            if size:
                chunks = -(-size // maglev.CHUNK_SLOTS)
                start = _lb_free(used, chunks)
                slots = lb_ring([(u32_to_ip(ip), w) for ip, w in backends], size)
                slots += [0] * (chunks * maglev.CHUNK_SLOTS - size)
                ring.update_batch(((start + c).to_bytes(4, "little"),
                                   bytes(LbChunk((u32 * maglev.CHUNK_SLOTS)(
                                       *slots[c * maglev.CHUNK_SLOTS:(c + 1) * maglev.CHUNK_SLOTS]))))
                                  for c in range(chunks))
                used[("new",) + key] = (start, chunks)
            vni, vip = key
            keep = dict(backends)
            for ip, weight in backends:
                members.update(bytes(LbMemberKey(vni, vip, ip)), bytes(LbMember(weight)))
            vips.update(bytes(LbVipKey(vni, vip)), bytes(LbVip(start, size, len(backends))))  # the switch
            for ip in sets.get(key, {}):
                if ip not in keep:
                    members.delete(bytes(LbMemberKey(vni, vip, ip)))
            used.pop(key, None)
            if size:
                used[key] = used.pop(("new",) + key)
        for key in sorted(set(have) - set(want)):
            vni, vip = key
            vips.delete(bytes(LbVipKey(vni, vip)))
            for ip in sets.get(key, {}):
                members.delete(bytes(LbMemberKey(vni, vip, ip)))
        for key in sorted(set(sets) - set(have) - set(want)):  # backends an interrupted run left
            for ip in sets[key]:
                members.delete(bytes(LbMemberKey(key[0], key[1], ip)))

    def stats(self, pin_dir):
        """The function's counters summed over CPUs: {name: count}."""
        with Map.from_pin(os.path.join(pin_dir, "mzr_lb_counters")) as counters:
            out = {}
            for name, idx in LB_COUNTERS:
                out[name] = sum(int.from_bytes(v, "little") for v in counters.lookup(idx.to_bytes(4, "little")))
            return out


def _lb_free(used, chunks):
    """The first chunk of a free run of chunks in the pool, given the runs
    used ({key: (start, length)})."""
    start = 0
    for s, n in sorted(used.values()):
        if s - start >= chunks:
            break
        start = max(start, s + n)
    if start + chunks > maglev.POOL_CHUNKS:
        raise FunctionConfigError("scaled: no run of %d free chunks in the ring pool of %d: the rings of this "
                                  "host's scaled endpoints do not fit it" % (chunks, maglev.POOL_CHUNKS))
    return start


CONFIGURATORS = {"acl": Acl(), "ratelimit": Ratelimit(), "scaled": Scaled()}


def configurator(program):
    """The Configurator of a shipped function, or None (no maps to fill)."""
    return CONFIGURATORS.get(program)
