"""A seeded differential fuzzer for the transit program.

Packets (well-formed tunnel packets, mutations of them, host traffic) are
built from bytes, run through the real transit program on real maps
(BPF_PROG_TEST_RUN), and each result is judged by an oracle written from
the transit rules of issue #8 (docs/architecture.md, "Fuzzing"), not from
the BPF source: the oracle reads only the world's entries (the dict given
to tables.converge) and the packet.

Every packet is a function of (seed, index) alone, so a violation is
reproduced with packet(seed, index).
"""
import collections
import ipaddress
import random
import struct
import time

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
VERDICT_NAMES = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}

GENEVE_PORT = 6081
ETH_IPV4, ETH_ARP, ETH_IPV6, ETH_BRIDGING = 0x0800, 0x0806, 0x86DD, 0x6558
NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3

# Invariants, as printed with a violation.
INV_HOST = "host traffic passes unchanged"
INV_MALFORMED = "malformed tunnel packets are never forwarded or delivered"
INV_VNI = "no delivery across VNIs, no VNI change"
INV_FORWARD = "forwarded frames well-formed (lengths, TTL, checksums, inner frame unchanged)"
INV_DELIVER = "delivered frame is the inner frame (documented rewrites only)"
INV_ROUTE = "verdict follows the world's tables"
INV_PEER = "a tunnel peer speaks only for the endpoints behind it"


def a2b(addr):
    return ipaddress.IPv4Address(addr).packed


def m2b(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def csum(data):
    """The Internet checksum (RFC 1071) of data (even length)."""
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def csum_ok(header):
    return csum(header) == 0


# ------------------------------------------------------------------ the oracle

Entry = collections.namedtuple("Entry", "vni ip kind mac host ifindex bypass")
Network = collections.namedtuple("Network", "vni net mask bouncers local")
Expect = collections.namedtuple("Expect", "verdict kind reason data")
# kind: "pass"            host traffic, or Geneve not for us: bytes unchanged
#       "malformed"       rules 2-5: must be dropped
#       "spoofed"         a tunnel peer's inner source is no endpoint behind it: must be dropped
#       "drop"            well-formed, dropped by routing (TTL, gateway, unknown VNI, ...)
#       "bypass"          XDP_REDIRECT, the whole packet unchanged
#       "decap"           XDP_REDIRECT, data = (inner frame as it must come out, inner IPv4 checksum valid in input)
#       "forward"         XDP_TX, data = (candidate hop IPs, inner dst MAC rewrite or None)
#       "arp_reply"       XDP_TX, data = (target MAC)


class World:
    """What the oracle knows of a world: its entries, decoded once."""

    def __init__(self, world):
        cfg = world["if_cfg"]
        self.x = a2b(cfg["ip"])
        self.mac = m2b(cfg["mac"])
        self.endpoints = {}
        self.macs = {}  # endpoint MAC -> VNI
        for e in world["endpoints"]:
            ent = Entry(e["vni"], a2b(e["ip"]), e.get("type", "simple"), m2b(e["mac"]),
                        a2b(e["host_ip"]) if e.get("host_ip") else None, e.get("ifindex", 0),
                        bool(e.get("bypass_decap")))
            self.endpoints[(ent.vni, ent.ip)] = ent
            self.macs.setdefault(ent.mac, set()).add(ent.vni)
        self.networks = []
        for n in world["networks"]:
            net = ipaddress.IPv4Network(n["cidr"])
            self.networks.append(Network(n["vni"], int(net.network_address), int(net.netmask),
                                         [a2b(b) for b in n["bouncers"]], bool(n.get("local_bouncer"))))
        self.networks.sort(key=lambda n: -bin(n.mask).count("1"))
        self.vpcs = dict((v["vni"], ([a2b(d) for d in v["dividers"]], bool(v.get("local_divider"))))
                         for v in world["vpcs"])
        self.hosts = dict((a2b(s["ip"]), m2b(s["mac"])) for s in world["substrate"])
        self.sources = set((a2b(s["ip"]), s["vni"]) for s in world.get("sources", []))
        self.vnis = sorted(set([k[0] for k in self.endpoints] + [n.vni for n in self.networks] + list(self.vpcs)))

    def trusted(self, src, vni):
        return src != self.x and ((src, 0) in self.sources or (src, vni) in self.sources)

    def speaks_for(self, src, vni, inner_src):
        """May trusted source src send vni's inner source inner_src? A
        transit host (trusted for any VNI) may send any; a tunnel peer
        (trusted for vni alone) only a simple endpoint's whose host it is."""
        if (src, 0) in self.sources:
            return True
        e = self.endpoints.get((vni, inner_src))
        return e is not None and e.kind == "simple" and not e.ifindex and e.host == src

    def network(self, vni, dst):
        d = int.from_bytes(dst, "big")
        for n in self.networks:
            if n.vni == vni and d & n.mask == n.net:
                return n
        return None


def _u16(b, o):
    return (b[o] << 8) | b[o + 1]


def _csum_replace16(check, old, new):
    """RFC 1624's HC' = ~(~HC + ~m + m'), folded as the program folds it."""
    total = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def bypassed(p, i, mac, arp):
    """The tunnel packet p as a bypass endpoint gets it: an IPv4 inner
    frame (at i) addressed to the endpoint's mac, the outer UDP checksum
    (when set) updated to match; ARP as it came."""
    if arp:
        return p
    out = bytearray(p)
    out[i:i + 6] = mac
    check = _u16(p, 40)
    if check:  # every word updates it, a running value of 0 included
        for k in range(0, 6, 2):
            check = _csum_replace16(check, _u16(p, i + k), _u16(mac, k))
        out[40:42] = (check or 0xFFFF).to_bytes(2, "big")
    return bytes(out)


def oracle(w, p):
    """What the transit program on world w must do with packet p."""
    n = len(p)
    # 1. Geneve to this host?
    if n < 34 or p[12] != 0x08 or p[13] != 0x00:
        return Expect(XDP_PASS, "pass", "not IPv4", None)
    if p[14] >> 4 != 4 or p[14] & 15 < 5:
        return Expect(XDP_PASS, "pass", "not an IPv4 header", None)
    ihl = (p[14] & 15) * 4
    if n < 14 + ihl + 8:
        return Expect(XDP_PASS, "pass", "too short for IPv4 and UDP", None)
    if p[23] != 17:
        return Expect(XDP_PASS, "pass", "not UDP", None)
    if _u16(p, 20) & 0x3FFF:
        return Expect(XDP_PASS, "pass", "outer fragment", None)
    if _u16(p, 14 + ihl + 2) != GENEVE_PORT:
        return Expect(XDP_PASS, "pass", "not the Geneve port", None)
    if p[30:34] != w.x:
        return Expect(XDP_PASS, "pass", "Geneve to another host", None)
    # 2. outer options
    if ihl != 20:
        return Expect(XDP_DROP, "malformed", "outer IPv4 options", None)
    # 3. lengths
    tot = _u16(p, 16)
    if tot != n - 14:
        return Expect(XDP_DROP, "malformed", "outer total length", None)
    if _u16(p, 38) != tot - 20:
        return Expect(XDP_DROP, "malformed", "UDP length", None)
    # 4. Geneve
    g = 42
    if n < g + 8:
        return Expect(XDP_DROP, "malformed", "Geneve header cut", None)
    vni = int.from_bytes(p[g + 4:g + 7], "big")
    if not w.trusted(p[26:30], vni):
        return Expect(XDP_DROP, "malformed", "untrusted source", None)
    if p[g] >> 6:
        return Expect(XDP_DROP, "malformed", "Geneve version", None)
    if _u16(p, g + 2) != ETH_BRIDGING:
        return Expect(XDP_DROP, "malformed", "Geneve protocol", None)
    if p[g + 1] & 0x80:
        return Expect(XDP_DROP, "malformed", "Geneve O bit", None)
    if p[g + 1] & 0x40:
        return Expect(XDP_DROP, "malformed", "Geneve C bit", None)
    o = g + 8
    end = o + (p[g] & 0x3F) * 4
    if end > n:
        return Expect(XDP_DROP, "malformed", "Geneve options past the end", None)
    while o < end:
        if o + 4 > end:
            return Expect(XDP_DROP, "malformed", "option TLV header cut", None)
        if p[o + 2] & 0x80:
            return Expect(XDP_DROP, "malformed", "critical option", None)
        o += 4 + (p[o + 3] & 31) * 4
    if o != end:
        return Expect(XDP_DROP, "malformed", "options overrun the option length", None)
    # 5. inner frame
    i = end
    inner = p[i:]
    if len(inner) < 14:
        return Expect(XDP_DROP, "malformed", "inner Ethernet cut", None)
    et = _u16(inner, 12)
    arp = et == ETH_ARP
    if et == ETH_IPV4:
        if len(inner) < 34:
            return Expect(XDP_DROP, "malformed", "inner IPv4 cut", None)
        if inner[14] >> 4 != 4 or inner[14] & 15 < 5:
            return Expect(XDP_DROP, "malformed", "inner IPv4 version/IHL", None)
        iihl = (inner[14] & 15) * 4
        itot = _u16(inner, 16)
        if itot < iihl or 14 + itot > len(inner):
            return Expect(XDP_DROP, "malformed", "inner IPv4 total length", None)
        src, dst = inner[26:30], inner[30:34]
    elif arp:
        if len(inner) < 42:
            return Expect(XDP_DROP, "malformed", "inner ARP cut", None)
        if inner[14:20] != b"\x00\x01\x08\x00\x06\x04":
            return Expect(XDP_DROP, "malformed", "inner ARP not Ethernet/IPv4", None)
        sha, spa, dst = inner[22:28], inner[28:32], inner[38:42]
        src = spa
        if spa == dst:
            return Expect(XDP_DROP, "malformed", "gratuitous ARP", None)
        if sha[0] & 1 or sha == b"\0" * 6:
            return Expect(XDP_DROP, "malformed", "ARP sender MAC", None)
        if 224 <= spa[0] < 240 or spa == b"\xff\xff\xff\xff" or spa == b"\0\0\0\0":
            return Expect(XDP_DROP, "malformed", "ARP sender address", None)
    else:
        return Expect(XDP_DROP, "malformed", "inner Ethertype not IPv4 or ARP", None)
    if not w.speaks_for(p[26:30], vni, src):
        return Expect(XDP_DROP, "spoofed", "tunnel peer: inner source not behind it", None)
    # 6. routing
    request = arp and _u16(inner, 20) == 1
    e = w.endpoints.get((vni, dst))
    if e is not None:
        if e.ifindex:
            if e.bypass:
                return Expect(XDP_REDIRECT, "bypass", "bypass endpoint", bypassed(p, i, e.mac, arp))
            out = bytearray(inner)
            out[0:6] = e.mac
            valid = True
            if arp:
                # no ECN field: the frame is not ECN-capable (RFC 6040 Not-ECT)
                if p[15] & 3 == CE:
                    return Expect(XDP_DROP, "drop", "CE over a non-IP frame (not-ECT)", None)
            else:
                valid = csum_ok(inner[14:14 + iihl])
                outer_ecn, inner_ecn = p[15] & 3, inner[15] & 3
                if outer_ecn == CE:
                    if inner_ecn == NOT_ECT:
                        return Expect(XDP_DROP, "drop", "CE over not-ECT", None)
                    out[15] = (inner[15] & 0xFC) | CE
                elif outer_ecn == ECT1 and inner_ecn == ECT0:
                    out[15] = (inner[15] & 0xFC) | ECT1
            return Expect(XDP_REDIRECT, "decap", "local endpoint", (bytes(out), valid))
        if request:
            return Expect(XDP_TX, "arp_reply", "ARP for a %s entry" % e.kind, e.mac)
        if e.kind == "gateway":
            return Expect(XDP_DROP, "drop", "to a gateway", None)
        if e.kind == "scaled":
            return Expect(XDP_DROP, "drop", "scaled endpoint, no function", None)
        if p[22] <= 1:
            return Expect(XDP_DROP, "drop", "TTL", None)
        return Expect(XDP_TX, "forward", "remote endpoint", ([e.host], None if arp else e.mac))
    net = w.network(vni, dst)
    if net is not None:
        if net.local:
            return Expect(XDP_DROP, "drop", "no such endpoint in a network bounced here", None)
        if p[22] <= 1:
            return Expect(XDP_DROP, "drop", "TTL", None)
        return Expect(XDP_TX, "forward", "to a bouncer of the network", (net.bouncers, None))
    vpc = w.vpcs.get(vni)
    if vpc is None:
        return Expect(XDP_DROP, "drop", "unknown VNI", None)
    if vpc[1]:
        return Expect(XDP_DROP, "drop", "no network (divider here)", None)
    if p[22] <= 1:
        return Expect(XDP_DROP, "drop", "TTL", None)
    return Expect(XDP_TX, "forward", "to a divider of the VPC", (vpc[0], None))


def check(w, p, verdict, out, exp):
    """None when (verdict, out) obeys every invariant for p, else (invariant, detail)."""
    vn = VERDICT_NAMES.get(verdict, str(verdict))
    if exp.kind == "pass":
        if verdict != XDP_PASS:
            return INV_HOST, "%s: %s, want XDP_PASS" % (exp.reason, vn)
        if out != p:
            return INV_HOST, "%s: passed with changed bytes" % exp.reason
        return None
    if verdict in (XDP_TX, XDP_REDIRECT):
        vni_bad = _vni_leak(w, p, verdict, out)
        if vni_bad:
            return INV_VNI, vni_bad
    if exp.kind in ("malformed", "spoofed"):
        if verdict != XDP_DROP:
            return INV_MALFORMED if exp.kind == "malformed" else INV_PEER, "%s: %s, want XDP_DROP" % (exp.reason, vn)
        return None
    if verdict != exp.verdict:
        return INV_ROUTE, "%s: %s, want %s" % (exp.reason, vn, VERDICT_NAMES[exp.verdict])
    if exp.kind == "drop":
        return None
    if exp.kind == "bypass":
        if out == exp.data:
            return None
        return INV_DELIVER, "bypass endpoint got other bytes than the tunnel packet with its inner frame addressed to it"
    if exp.kind == "decap":
        return _check_decap(p, out, exp)
    if exp.kind == "forward":
        return _check_forward(w, p, out, exp)
    return _check_arp_reply(w, p, out, exp)


def _vni_leak(w, p, verdict, out):
    """The VNI invariant, checked on any TX or REDIRECT of a Geneve packet to us."""
    vni = int.from_bytes(p[46:49], "big")
    if verdict == XDP_REDIRECT:
        if out == p:
            return None
        if len(out) < 6:
            return "redirected a %d-byte frame" % len(out)
        vnis = w.macs.get(bytes(out[0:6]))
        if vnis is not None and vni not in vnis:
            return "VNI %d packet delivered to an endpoint MAC of VNI %s" % (vni, sorted(vnis))
        return None
    if len(out) < 50:
        return "transmitted a %d-byte frame" % len(out)
    got = int.from_bytes(out[46:49], "big")
    if got != vni:
        return "transmitted with VNI %d, came with %d" % (got, vni)
    return None


def _check_decap(p, out, exp):
    want, valid = exp.data
    if len(out) != len(want):
        return INV_DELIVER, "decapsulated frame of %d bytes, want %d" % (len(out), len(want))
    if want[12:14] == b"\x08\x00":
        # the inner IPv4 checksum: any correct update of a changed TOS is fine;
        # valid in, valid out
        iihl = (want[14] & 15) * 4
        if out[:24] + out[26:] != want[:24] + want[26:]:
            return INV_DELIVER, "decapsulated frame differs (beyond the IPv4 checksum)"
        if out[15] == p[len(p) - len(want) + 15]:
            if out[24:26] != want[24:26]:
                return INV_DELIVER, "inner IPv4 checksum changed with an unchanged TOS"
        elif csum_ok(out[14:14 + iihl]) != valid:
            return INV_DELIVER, "inner IPv4 checksum %s after the ECN rewrite, %s before" % (
                "valid" if not valid else "wrong", "wrong" if not valid else "valid")
        return None
    if out != want:
        return INV_DELIVER, "decapsulated frame differs"
    return None


def _outer_ok(out, ttl, dst_ip, dst_mac, w):
    """The outer Ethernet/IPv4/UDP header of a frame this host transmits."""
    if len(out) < 50:
        return "frame of %d bytes" % len(out)
    if out[0:6] != dst_mac or out[6:12] != w.mac:
        return "outer MACs %s -> %s" % (out[6:12].hex(), out[0:6].hex())
    if out[12:14] != b"\x08\x00" or out[14] != 0x45 or out[23] != 17:
        return "outer header not IPv4 (no options)/UDP"
    if _u16(out, 16) != len(out) - 14 or _u16(out, 38) != len(out) - 34:
        return "outer lengths %d/%d for a %d-byte frame" % (_u16(out, 16), _u16(out, 38), len(out))
    if out[22] != ttl:
        return "outer TTL %d, want %d" % (out[22], ttl)
    if not csum_ok(out[14:34]):
        return "outer IPv4 checksum wrong"
    if out[26:30] != w.x or out[30:34] != dst_ip:
        return "outer addresses %s -> %s" % (out[26:30].hex(), out[30:34].hex())
    if _u16(out, 36) != GENEVE_PORT or out[40:42] != b"\0\0":
        return "outer UDP port or checksum"
    return None


def _check_forward(w, p, out, exp):
    hops, inner_mac = exp.data
    if len(out) != len(p):
        return INV_FORWARD, "forwarded %d bytes, came %d" % (len(out), len(p))
    hop = bytes(out[30:34])
    if hop not in hops:
        return INV_ROUTE, "forwarded to %s, want one of %s" % (
            ipaddress.IPv4Address(hop), [str(ipaddress.IPv4Address(h)) for h in hops])
    bad = _outer_ok(out, p[22] - 1, hop, w.hosts.get(hop, b"?"), w)
    if bad:
        return INV_FORWARD, bad
    # everything else as it came: TOS, id, flags, protocol, UDP source port, Geneve and on
    want = bytearray(p)
    want[0:12], want[22], want[24:34], want[40:42] = out[0:12], out[22], out[24:34], b"\0\0"
    if inner_mac is not None:
        i = 50 + (p[42] & 0x3F) * 4
        want[i:i + 6] = inner_mac
    if out != want:
        diff = [k for k in range(len(out)) if out[k] != want[k]]
        return INV_FORWARD, "bytes differ at offsets %s" % diff[:16]
    return None


def _check_arp_reply(w, p, out, exp):
    target_mac = exp.data
    bad = _outer_ok(out, 64, p[26:30], p[6:12], w)
    if bad:
        return INV_FORWARD, "ARP reply: " + bad
    if out[42] >> 6 or out[42 + 1] & 0xC0 or _u16(out, 44) != ETH_BRIDGING:
        return INV_FORWARD, "ARP reply: Geneve header"
    i = 50 + (out[42] & 0x3F) * 4
    req = p[50 + (p[42] & 0x3F) * 4:]
    rep = out[i:]
    sha, spa, tpa = req[22:28], req[28:32], req[38:42]
    want = (sha + target_mac + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02" + target_mac + tpa + sha + spa)
    if len(rep) < 42 or rep[:42] != want:
        return INV_FORWARD, "ARP reply frame %s, want %s" % (rep[:42].hex(), want.hex())
    return None


# ------------------------------------------------------------------ packet building

def eth(dst, src, ethertype):
    return dst + src + struct.pack("!H", ethertype)


def ipv4(src, dst, proto, payload, ttl=64, tos=0, ident=0, frag=0x4000, options=b"", good_csum=True):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(payload), ident, frag, ttl, proto, 0, src,
                    dst) + options
    if good_csum:
        c = csum(h)
        h = h[:10] + struct.pack("!H", c) + h[12:]
    return h + payload


def udp(sport, dport, payload, chk=0):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), chk) + payload


def geneve(vni, options=b"", flags=0, proto=ETH_BRIDGING, version=0, optlen=None):
    words = len(options) // 4 if optlen is None else optlen
    return struct.pack("!BBH", (version << 6) | (words & 0x3F), flags, proto) + vni.to_bytes(3, "big") + b"\0" + options


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + sha + spa + tha + tpa


class Rng(random.Random):
    """random.Random with cheaper draws (randrange and choice cost several
    calls each, and the hot loop makes thousands of draws per second)."""

    def below(self, n):
        return int(self.random() * n)

    def between(self, a, b):
        return a + int(self.random() * (b - a))

    def pick(self, seq):
        return seq[int(self.random() * len(seq))]


class Generator:
    """Packets for one world, each a function of (seed, index)."""

    def __init__(self, world):
        self.world = world
        w = self.w = World(world)
        self.b_mac, self.x = w.mac, w.x
        self.trusted = sorted(set(s for s, v in w.sources if s != w.x))
        self.peers = sorted(set((s, v) for s, v in w.sources if v))
        self.behind = {}  # (tunnel peer, vni) -> the addresses of the endpoints behind it
        for (vni, addr), e in sorted(w.endpoints.items()):
            if e.kind == "simple" and (e.host, vni) in w.sources:
                self.behind.setdefault((e.host, vni), []).append(addr)
        self.addrs = {}
        for vni in set(list(w.vnis) + [999]):
            a = [k[1] for k in w.endpoints if k[0] == vni]
            for nw in w.networks:
                if nw.vni == vni:
                    base = nw.net
                    a += [(base + k).to_bytes(4, "big") for k in (1, 2, 7, 9, 77, 99, 200)]
            a += [a2b("10.0.0.%d" % k) for k in (1, 5, 6, 7, 8, 9, 50, 99)] + [a2b("10.0.5.5"), a2b("10.3.0.77"),
                                                                               a2b("10.3.1.20"), a2b("10.3.9.9")]
            self.addrs[vni] = sorted(set(a))
        self.vni_choices = list(w.vnis) * 2 + [999]
        self.entries = {}
        for vni, addr in sorted(w.endpoints):
            self.entries.setdefault(vni, []).append(addr)
        self.host_macs = sorted(w.hosts.items())

    # -- pieces

    def _mac(self, r):
        return bytes([r.below(256) & 0xFE | 0x02]) + r.randbytes(5)

    def _addr(self, r, vni):
        if r.random() < 0.85:
            return r.pick(self.addrs.get(vni) or self.addrs[999])
        return r.randbytes(4)

    def _inner(self, r, vni, own=None):
        """own: the inner source a tunnel peer may use, or None."""
        src, dst = self._addr(r, vni), self._addr(r, vni)
        if own is not None:
            src = own
        if r.random() < 0.45 and self.entries.get(vni):
            dst = r.pick(self.entries[vni])
        ent = self.w.endpoints.get((vni, dst))
        dmac = ent.mac if ent is not None and r.random() < 0.5 else (self._mac(r) if r.random() < 0.3 else
                                                                     m2b("02:99:00:00:00:01"))
        smac = self._mac(r)
        kind = r.random()
        if kind < 0.22:  # ARP
            op = 1 if r.random() < 0.75 else r.pick((2, 2, 3, 0, 0xFFFF))
            tha = b"\0" * 6 if op == 1 else self._mac(r)
            edst = b"\xff" * 6 if op == 1 else dmac
            sha = smac
            k = r.random()
            if k < 0.05:  # a sender no reply could reach
                sha = r.pick((b"\xff" * 6, b"\0" * 6, b"\x01\x00\x5e\x00\x00\x01", b"\x33\x33\0\0\0\1"))
            elif k < 0.1:
                src = r.pick((b"\0\0\0\0", b"\xff\xff\xff\xff", a2b("224.0.0.1"), a2b("239.1.2.3"),
                              a2b("240.0.0.1")))
            frame = eth(edst, smac, ETH_ARP) + arp(op, sha, src, tha, dst)
            if r.random() < 0.2:
                frame += bytes(r.below(20))  # Ethernet padding
            return frame
        tos = r.below(256) if r.random() < 0.5 else r.pick((0, 1, 2, 3))
        proto = r.pick((6, 17, 1))
        size = r.pick((0, 1, 8, 20, 64, r.below(400), r.below(400), r.between(400, 1500)))
        body = r.randbytes(size)
        if proto == 17:
            l4 = udp(r.below(65536), r.below(65536), body, r.below(65536) if r.random() < 0.3 else 0)
        elif proto == 6:
            l4 = struct.pack("!HHIIBBHHH", r.below(65536), r.pick((22, 80, 443, r.below(65536))),
                             r.getrandbits(32), r.getrandbits(32), 0x50, r.below(256), r.below(65536),
                             r.below(65536), 0) + body
        else:
            l4 = struct.pack("!BBHHH", r.pick((0, 8, 3, 11)), 0, r.below(65536), r.below(65536),
                             r.below(65536)) + body
        options = b""
        if r.random() < 0.15:
            options = bytes([1] * (4 * r.between(1, 4) - 1)) + b"\0"
        frag = 0x4000
        if r.random() < 0.15:
            frag = r.pick((0x2000, 0x2000 | r.between(1, 0x2000), r.between(1, 0x2000)))
        frame = eth(dmac, smac, ETH_IPV4) + ipv4(src, dst, proto, l4, ttl=r.pick((64, 1, 0, 255)), tos=tos,
                                                 ident=r.below(65536), frag=frag, options=options,
                                                 good_csum=r.random() < 0.9)
        if r.random() < 0.1:
            frame += bytes(r.between(1, 20))  # padding after the IPv4 packet
        return frame

    def _options(self, r):
        if r.random() < 0.6:
            return b""
        if r.random() < 0.1:  # many small TLVs, up to the 63 words the length field allows
            return b"".join(struct.pack("!HBB", r.below(65536), r.below(128), 0) for dummy in range(r.between(9, 64)))
        out = b""
        for dummy in range(r.pick((1, 1, 2, 3, 8))):
            data = r.randbytes(4 * r.pick((0, 1, 2, 4)))
            typ = r.below(128) if r.random() < 0.9 else r.between(128, 256)
            out += struct.pack("!HBB", r.below(65536), typ, (r.below(8) << 5) | len(data) // 4) + data
        return out[:252] if len(out) <= 252 else b""

    def _source(self, r, vni):
        k = r.random()
        if k < 0.87:
            return r.pick(self.trusted)
        if k < 0.93 and self.peers:
            return r.pick(self.peers)[0]
        if k < 0.96:
            return self.x
        return r.randbytes(4)

    def tunnel(self, r):
        """A well-formed Geneve packet to this host (well-formed at the outer
        layers; its inner frame and routing may still be anything)."""
        vni = r.pick(self.vni_choices) if r.random() < 0.9 else r.below(1 << 24)
        src = self._source(r, vni)
        own = None
        if (src, vni) in self.behind and r.random() < 0.6:  # a peer sending for its own endpoint
            own = r.pick(self.behind[(src, vni)])
        smac = self.w.hosts.get(src) or self._mac(r)
        flags = 0 if r.random() < 0.9 else r.below(256) & 0x3F
        gen = geneve(vni, self._options(r), flags=flags) + self._inner(r, vni, own)
        ttl = r.pick((64, 64, 64, 2, 1, 0, 255, r.below(256)))
        tos = r.pick((0, 0, 1, 2, 3, r.below(256)))
        frag = r.pick((0x4000, 0x4000, 0, 0x8000))
        options = b"" if r.random() < 0.97 else r.pick((b"\x01\x01\x01\x00", b"\x94\x04\x00\x00", bytes(40)))
        dmac = self.b_mac if r.random() < 0.95 else r.pick((b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01", r.randbytes(6)))
        payload = udp(r.below(65536), GENEVE_PORT, gen)
        header = ipv4(src, self.x, 17, payload, ttl=ttl, tos=tos, ident=r.below(65536), frag=frag,
                      options=options, good_csum=r.random() < 0.97)
        return eth(dmac, smac, ETH_IPV4) + header

    def host(self, r):
        """Traffic for the host itself (or Geneve for another host)."""
        k = r.below(9)
        smac, sip = self._mac(r), r.randbytes(4)
        if k == 0:  # SSH
            tcp = struct.pack("!HHIIBBHHH", r.between(1024, 65536), 22, r.getrandbits(32), 0, 0x50, 2, 65535, 0, 0)
            return eth(self.b_mac, smac, ETH_IPV4) + ipv4(sip, self.x, 6, tcp, ident=r.below(65536))
        if k == 1:  # ARP for the host
            return eth(b"\xff" * 6, smac, ETH_ARP) + arp(1, smac, sip, b"\0" * 6, self.x) + bytes(18)
        if k == 2:  # IPv6
            return eth(b"\x33\x33\xff\0\0\1", smac, ETH_IPV6) + struct.pack("!IHBB", 0x60000000, 8, 58, 255) \
                + r.randbytes(32) + r.randbytes(8)
        if k == 3:  # UDP to another port
            port = r.below(65536)
            port = port if port != GENEVE_PORT else 53
            return eth(self.b_mac, smac, ETH_IPV4) + ipv4(sip, self.x, 17, udp(r.below(65536), port,
                                                                               r.randbytes(r.below(100))))
        if k == 4:  # Geneve to another host
            dst = r.pick(list(self.w.hosts) + [r.randbytes(4)])
            pkt = bytearray(self.tunnel(r))
            pkt[30:34] = dst
            return bytes(pkt)
        if k == 5:  # an outer fragment of Geneve to us
            pkt = bytearray(self.tunnel(r))
            pkt[20:22] = struct.pack("!H", r.pick((0x2000, 0x6000, r.between(1, 0x2000))))
            return bytes(pkt)
        if k == 6:  # ICMP to the host
            return eth(self.b_mac, smac, ETH_IPV4) + ipv4(sip, self.x, 1, b"\x08\0\0\0" + r.randbytes(36))
        if k == 7:  # short frames (BPF_PROG_TEST_RUN takes no frame shorter than Ethernet's header)
            return r.randbytes(r.between(14, 60))
        return eth(self.b_mac, smac, r.below(65536)) + r.randbytes(r.below(80))  # any Ethertype

    def mutate(self, r, pkt):
        b = bytearray(pkt)
        k = r.below(8) if len(b) >= 64 else 0  # a cut packet: only bit flips
        if k == 0:  # bit flips anywhere
            for dummy in range(r.pick((1, 1, 2, 3))):
                o = r.below(len(b))
                b[o] ^= 1 << r.below(8)
        elif k == 1:  # bit flips in the headers that matter
            ihl = 50 + (b[42] & 0x3F) * 4
            o = r.below(min(len(b), ihl + 48))
            b[o] ^= 1 << r.below(8)
        elif k == 2:  # truncation, lengths left alone or fixed
            cut = r.between(14, len(b))
            b = b[:cut]
            if r.random() < 0.6:
                _fix_lengths(b)
        elif k == 3:  # outer length fields
            which = r.below(3)
            delta = r.pick((-20, -4, -1, 1, 2, 8, r.between(-300, 300)))
            if which in (0, 2):
                b[16:18] = struct.pack("!H", (_u16(b, 16) + delta) & 0xFFFF)
            if which in (1, 2):
                b[38:40] = struct.pack("!H", (_u16(b, 38) + delta) & 0xFFFF)
            _fix_outer_csum(b)
        elif k == 4:  # inner IPv4 total length, version, IHL
            i = 50 + (b[42] & 0x3F) * 4
            if len(b) >= i + 34:
                f = r.below(3)
                if f == 0:
                    b[i + 16:i + 18] = struct.pack("!H", r.below(65536) if r.random() < 0.3
                                                   else (_u16(b, i + 16) + r.pick((-1, 1, -20, 40))) & 0xFFFF)
                elif f == 1:
                    b[i + 14] = (r.below(16) << 4) | (b[i + 14] & 15)
                else:
                    b[i + 14] = (b[i + 14] & 0xF0) | r.below(16)
        elif k == 5:  # Geneve flags, version, protocol, option length
            f = r.below(4)
            if f == 0:
                b[43] = r.below(256)
            elif f == 1:
                b[42] = (r.below(4) << 6) | (b[42] & 0x3F)
            elif f == 2:
                b[44:46] = struct.pack("!H", r.pick((0x0800, 0x86DD, 0x0806, r.below(65536))))
            else:
                b[42] = (b[42] & 0xC0) | r.below(64)
        elif k == 6:  # random option TLVs, optlen fixed or not
            opts = r.randbytes(4 * r.between(1, 6))
            i = 50 + (b[42] & 0x3F) * 4
            b = b[:50] + opts + b[i:] if r.random() < 0.5 else b[:50] + opts + b[50:]
            b[42] = (b[42] & 0xC0) | (((i - 50 + len(opts)) // 4) & 0x3F if r.random() < 0.5 else len(opts) // 4)
            _fix_lengths(b)
        else:  # Ethertypes, outer or inner
            i = 50 + (b[42] & 0x3F) * 4
            o = 12 if r.random() < 0.3 else i + 12
            if o + 2 <= len(b):
                b[o:o + 2] = struct.pack("!H", r.pick((0x86DD, 0x8100, 0x88A8, 0x0806, 0x0800, r.below(65536))))
        return bytes(b)

    def _one(self, r):
        k = r.random()
        if k < 0.12:
            return self.host(r)
        pkt = self.tunnel(r)
        if k < 0.55:
            return pkt
        pkt = self.mutate(r, pkt)
        if k > 0.9:
            pkt = self.mutate(r, pkt)
        return pkt

    # Packets come in blocks of BLOCK, each block from its own generator
    # seeded by (seed, block): seeding costs more than a packet.
    BLOCK = 64

    def packets(self, seed, count):
        """Packets 0 .. count-1 of seed."""
        for block in range((count + self.BLOCK - 1) // self.BLOCK):
            r = Rng(seed * 1000003 + block)
            for dummy in range(min(self.BLOCK, count - block * self.BLOCK)):
                yield self._one(r)

    def packet(self, seed, index):
        """Packet index of seed, the same as packets(seed, ...) gives."""
        block, k = divmod(index, self.BLOCK)
        r = Rng(seed * 1000003 + block)
        for dummy in range(k):
            self._one(r)
        return self._one(r)


def _fix_outer_csum(b):
    if len(b) >= 34 and b[14] >> 4 == 4:
        ihl = (b[14] & 15) * 4
        if len(b) >= 14 + ihl:
            b[24:26] = b"\0\0"
            b[24:26] = struct.pack("!H", csum(bytes(b[14:14 + ihl])))


def _fix_lengths(b):
    """Outer IPv4 total length and UDP length to the frame's, checksum fixed."""
    if len(b) >= 34:
        b[16:18] = struct.pack("!H", (len(b) - 14) & 0xFFFF)
        if len(b) >= 42:
            b[38:40] = struct.pack("!H", (len(b) - 34) & 0xFFFF)
        _fix_outer_csum(b)


# ------------------------------------------------------------------ the run

def _same_hop(flows, p, out):
    """Among several bouncers or dividers, an IPv4 flow (VNI, inner source,
    inner destination) always goes to the same one."""
    i = 50 + (p[42] & 0x3F) * 4
    if p[i + 12:i + 14] != b"\x08\x00":
        return None
    key = (p[46:49], p[i + 26:i + 34])
    hop = flows.setdefault(key, bytes(out[30:34]))
    if hop != out[30:34]:
        return INV_ROUTE, "the flow went to %s before, now to %s" % (
            ipaddress.IPv4Address(hop), ipaddress.IPv4Address(bytes(out[30:34])))
    return None


Violation = collections.namedtuple("Violation", "seed index packet output verdict expected invariant detail")


def describe(v):
    return ("seed %d index %d: %s\n  %s\n  verdict %s, oracle %s (%s)\n  packet %s\n  output %s" % (
        v.seed, v.index, v.invariant, v.detail, VERDICT_NAMES.get(v.verdict, v.verdict),
        VERDICT_NAMES[v.expected.verdict], v.expected.reason, v.packet.hex(), v.output.hex()))


class Result:
    def __init__(self):
        self.count = 0
        self.verdicts = collections.Counter()
        self.expected = collections.Counter()
        self.reasons = collections.Counter()
        self.violations = []
        self.seconds = 0.0


def run(harness, world, seed, count, max_violations=10, program="transit"):
    """Run count packets of seed through the program; stop after
    max_violations. world is a world dict (already loaded by the caller or not)."""
    harness.load_world(world)
    gen = Generator(world)
    w = gen.w
    prog = harness.programs[program]
    res = Result()
    flows = {}
    t0 = time.monotonic()
    for index, p in enumerate(gen.packets(seed, count)):
        r = prog.test_run(p)
        exp = oracle(w, p)
        res.count += 1
        res.verdicts[r.retval] += 1
        res.expected[exp.kind] += 1
        res.reasons[exp.reason] += 1
        bad = check(w, p, r.retval, r.data, exp)
        if not bad and exp.kind == "forward" and len(exp.data[0]) > 1:
            bad = _same_hop(flows, p, r.data)
        if bad:
            res.violations.append(Violation(seed, index, p, r.data, r.retval, exp, bad[0], bad[1]))
            if len(res.violations) >= max_violations:
                break
    res.seconds = time.monotonic() - t0
    return res
