"""The differential fuzzer (fuzz.py): its oracle against the fixture table,
its checker against outputs known to be wrong, then 100,000 seeded packets
through the real transit program on world "b", and more on worlds "h1" and
"tp" (tunnel peers with endpoints behind them)."""
import struct

import pytest

import fixtures as F
import fuzz

SEED = 8
COUNT = 100000
WORLD_B = fuzz.World(F.WORLD_B)
ORACLE_WORLDS = {"b": WORLD_B, "tp": fuzz.World(F.WORLD_TP)}
TRANSIT_B = [f for f in F.ALL if f.program == "transit" and f.world in ORACLE_WORLDS]


@pytest.mark.parametrize("f", TRANSIT_B, ids=[f.name for f in TRANSIT_B])
def test_oracle_agrees_with_fixture(f):
    """The oracle predicts every transit fixture's verdict, and accepts its
    exact output."""
    w = ORACLE_WORLDS[f.world]
    exp = fuzz.oracle(w, f.packet)
    assert fuzz.VERDICT_NAMES[exp.verdict] == F.VERDICTS[f.verdict], exp.reason
    assert fuzz.check(w, f.packet, f.verdict, f.output, exp) is None
    assert (exp.kind == "spoofed") == (f.counters.get("tunnel_src") == 1), exp.reason


def _judge(name, verdict, out):
    f = F.BY_NAME[name]
    bad = fuzz.check(WORLD_B, f.packet, verdict, bytes(out), fuzz.oracle(WORLD_B, f.packet))
    return bad and bad[0]


def _edit(name, offset, value):
    b = bytearray(F.BY_NAME[name].output)
    b[offset:offset + len(value)] = value
    return b


def _outer_csum(b):
    b[24:26] = b"\0\0"
    b[24:26] = struct.pack("!H", fuzz.csum(bytes(b[14:34])))
    return b


def test_checker_rejects_wrong_outputs():
    """Each invariant catches an output that breaks it."""
    bounce = F.BY_NAME["bouncer"]
    assert _judge("bouncer", F.XDP_TX, bounce.output) is None
    assert _judge("bouncer", F.XDP_TX, _outer_csum(_edit("bouncer", 22, b"\x40"))) == fuzz.INV_FORWARD  # TTL kept
    assert _judge("bouncer", F.XDP_TX, _edit("bouncer", 24, b"\0\0")) == fuzz.INV_FORWARD  # checksum
    assert _judge("bouncer", F.XDP_TX, _edit("bouncer", 40, b"\x12\x34")) == fuzz.INV_FORWARD  # UDP checksum
    assert _judge("bouncer", F.XDP_TX, _edit("bouncer", len(bounce.output) - 1, b"!")) == fuzz.INV_FORWARD
    assert _judge("bouncer", F.XDP_TX, bounce.output + b"\0") == fuzz.INV_FORWARD
    assert _judge("bouncer", F.XDP_TX, _edit("bouncer", 48, b"\xc8")) == fuzz.INV_VNI  # VNI 100 -> 200
    wrong_hop = _outer_csum(_edit("bouncer", 30, bytes([192, 168, 0, 1])))
    assert _judge("bouncer", F.XDP_TX, wrong_hop) == fuzz.INV_ROUTE
    assert _judge("bouncer", F.XDP_REDIRECT, bounce.output) == fuzz.INV_ROUTE
    assert _judge("same_ip_vni100", F.XDP_TX, F.BY_NAME["same_ip_vni100"].output) is None
    assert _judge("same_ip_vni100", F.XDP_TX, F.bounced(F.BY_NAME["same_ip_vni100"].packet, "h1")) \
        == fuzz.INV_FORWARD  # inner MAC not rewritten
    local = F.BY_NAME["local"]
    assert _judge("local", F.XDP_REDIRECT, local.output) is None
    assert _judge("local", F.XDP_REDIRECT, local.packet[50:]) == fuzz.INV_DELIVER  # MAC not rewritten
    assert _judge("local", F.XDP_REDIRECT, F.decapped(local.packet[50:], F.ep_mac(200, 5))) == fuzz.INV_VNI
    ecn = F.BY_NAME["ecn_ce_over_ect0"]
    assert _judge("ecn_ce_over_ect0", F.XDP_REDIRECT, ecn.output) is None
    assert _judge("ecn_ce_over_ect0", F.XDP_REDIRECT, _edit("ecn_ce_over_ect0", 24, b"\0\0")) == fuzz.INV_DELIVER
    assert _judge("arp_remote", F.XDP_TX, F.BY_NAME["arp_remote"].output) is None
    assert _judge("arp_remote", F.XDP_TX, _edit("arp_remote", len(F.BY_NAME["arp_remote"].output) - 1, b"\x09")) \
        == fuzz.INV_FORWARD  # reply to the wrong address
    assert _judge("ttl1", F.XDP_TX, F.bounced(F.BY_NAME["ttl1"].packet, "h2", ttl=0)) == fuzz.INV_ROUTE
    assert _judge("geneve_version", F.XDP_TX, F.BY_NAME["bouncer"].output) == fuzz.INV_MALFORMED
    assert _judge("untrusted_local", F.XDP_PASS, F.BY_NAME["untrusted_local"].packet) == fuzz.INV_MALFORMED
    assert _judge("ssh", F.XDP_DROP, F.BY_NAME["ssh"].packet) == fuzz.INV_HOST
    tp = ORACLE_WORLDS["tp"]
    spoofed = F.BY_NAME["peer_src_other_peer_relay"]  # what b would send if it trusted the peer's word
    relayed = F.bounced(spoofed.packet, "h1")
    assert fuzz.check(tp, spoofed.packet, F.XDP_TX, relayed, fuzz.oracle(tp, spoofed.packet))[0] == fuzz.INV_PEER
    assert _judge("ssh", F.XDP_PASS, _edit("ssh", 0, b"\x03")) == fuzz.INV_HOST


def test_packets_are_a_function_of_seed_and_index():
    a, b = fuzz.Generator(F.WORLD_B), fuzz.Generator(F.WORLD_B)
    stream = list(a.packets(SEED, 200))
    assert len(stream) == 200
    assert stream == [b.packet(SEED, i) for i in range(200)]
    assert [a.packet(SEED, i) for i in range(50)] != [a.packet(SEED + 1, i) for i in range(50)]


def test_fuzz_transit(dp):
    """100,000 seeded packets through the transit program on world b: no
    invariant broken, and every path of the oracle visited."""
    res = fuzz.run(dp, F.WORLD_B, SEED, COUNT)
    report = "\n".join(fuzz.describe(v) for v in res.violations)
    assert not res.violations, "%d violation(s):\n%s" % (len(res.violations), report)
    assert res.count == COUNT
    for kind in ("pass", "malformed", "drop", "bypass", "decap", "forward", "arp_reply"):
        assert res.expected[kind] >= 200, (kind, dict(res.expected))
    for verdict in (F.XDP_DROP, F.XDP_PASS, F.XDP_TX, F.XDP_REDIRECT):
        assert res.verdicts[verdict] >= 500, dict(res.verdicts)


def _fuzz_other_world(dp, world, kinds):
    """20,000 packets on world, then world b again for the other tests:
    no invariant broken, and each of kinds predicted at least 100 times."""
    try:
        res = fuzz.run(dp, world, SEED, 20000)
    finally:
        dp.load_world(F.WORLD_B)
    report = "\n".join(fuzz.describe(v) for v in res.violations)
    assert not res.violations, "%d violation(s):\n%s" % (len(res.violations), report)
    for kind in kinds:
        assert res.expected[kind] >= 100, (kind, dict(res.expected))


def test_fuzz_transit_endpoint_host(dp):
    """World h1: an endpoint host (local and bypass endpoints, no networks,
    no VPCs)."""
    _fuzz_other_world(dp, F.WORLD_H1, ("pass", "malformed", "drop", "bypass", "decap"))


def test_fuzz_transit_tunnel_peers(dp):
    """World tp, where two tunnel peers have endpoints behind them: what a
    peer sends for its own endpoint is forwarded, delivered or answered;
    what it sends for any other address is dropped (tunnel_src)."""
    _fuzz_other_world(dp, F.WORLD_TP, ("pass", "malformed", "drop", "bypass", "decap", "forward", "arp_reply",
                                       "spoofed"))
