"""model/trace.py, the pure part of a trace: the frames an endpoint sends
(checked against scapy, an independent parser, checksums included) and the
headers of any frame decoded without ever raising."""
import os
import re

import pytest
import yaml
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from ansible_collections.mizar.transit.plugins.module_utils.model import trace
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import check

import packets

SRC_MAC, DST_MAC = "02:a1:61:4f:d9:36", "02:7f:c5:88:05:a1"


def _checksums_right(pkt):
    """scapy recomputes every checksum it is asked to: the frame's must be the same."""
    fresh = pkt.copy()
    del fresh[IP].chksum
    for layer in (ICMP, TCP, UDP):
        if layer in fresh:
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == bytes(pkt)


@pytest.mark.parametrize("proto", ["icmp", "tcp", "udp"])
def test_ipv4_frames_are_what_an_endpoint_sends(proto):
    frame = trace.ipv4_frame(SRC_MAC, DST_MAC, "10.0.1.10", "10.0.2.10", proto, 40000, 8080)
    pkt = Ether(frame)
    assert (pkt.src, pkt.dst) == (SRC_MAC, DST_MAC)
    ip = pkt[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.flags.DF, ip.len) == ("10.0.1.10", "10.0.2.10", 64, True, len(frame) - 14)
    assert _checksums_right(pkt)
    if proto == "icmp":
        assert (pkt[ICMP].type, pkt[ICMP].code) == (8, 0)
    elif proto == "tcp":
        assert (pkt[TCP].sport, pkt[TCP].dport, str(pkt[TCP].flags)) == (40000, 8080, "S")
    else:
        assert (pkt[UDP].sport, pkt[UDP].dport, pkt[UDP].len) == (40000, 8080, len(frame) - 34)


def test_an_arp_request_is_a_broadcast_who_has():
    pkt = Ether(trace.arp_request(SRC_MAC, "10.0.1.10", "10.0.1.99"))
    assert pkt.dst == "ff:ff:ff:ff:ff:ff" and pkt.src == SRC_MAC
    assert (pkt[ARP].op, pkt[ARP].hwsrc, pkt[ARP].psrc, pkt[ARP].pdst) == (1, SRC_MAC, "10.0.1.10", "10.0.1.99")


def test_a_geneve_packet_decodes_outer_and_inner():
    inner = trace.ipv4_frame(SRC_MAC, DST_MAC, "10.0.1.10", "10.0.2.10", "tcp", 40000, 80)
    frame = packets.outer("02:00:c0:a8:4d:01", "02:00:c0:a8:4d:03", "192.168.77.1", "192.168.77.3",
                          packets.geneve_header(100, packets.geneve_option()) + inner, ttl=63, sport=50123)
    d = trace.decode(frame)
    assert d["eth"] == {"src": "02:00:c0:a8:4d:01", "dst": "02:00:c0:a8:4d:03", "type": "0x0800"}
    assert (d["ip"]["src"], d["ip"]["dst"], d["ip"]["ttl"], d["ip"]["proto"], d["ip"]["checksum_ok"]) == \
        ("192.168.77.1", "192.168.77.3", 63, "udp", True)
    assert d["udp"] == {"sport": 50123, "dport": 6081, "len": len(frame) - 34}
    assert d["geneve"] == {"version": 0, "o": False, "c": False, "proto": "0x6558", "vni": 100, "optlen": 8}
    assert d["inner"] == trace.decode(inner)
    assert d["inner"]["tcp"] == {"sport": 40000, "dport": 80, "flags": 2}
    assert trace.summary(d) == (
        "02:00:c0:a8:4d:01 > 02:00:c0:a8:4d:03 192.168.77.1 > 192.168.77.3 udp ttl 63 50123 > 6081 | geneve vni 100 | "
        "02:a1:61:4f:d9:36 > 02:7f:c5:88:05:a1 10.0.1.10 > 10.0.2.10 tcp ttl 64 40000 > 80 [S]")
    assert trace.decode(frame.hex()) == d


def test_a_garbled_frame_decodes_as_far_as_it_goes():
    inner = trace.ipv4_frame(SRC_MAC, DST_MAC, "10.0.1.10", "10.0.2.10", "icmp")
    frame = packets.outer("02:00:c0:a8:4d:01", "02:00:c0:a8:4d:03", "192.168.77.1", "192.168.77.3",
                          packets.geneve_header(100) + inner)
    for cut in range(len(frame) + 1):
        d = trace.decode(frame[:cut])
        assert isinstance(trace.summary(d), str)
    assert trace.decode(frame[:10]) == {"cut": "eth"}
    assert trace.decode(frame[:20])["cut"] == "ip"
    bad = bytearray(frame)
    bad[24] ^= 0xFF
    assert trace.decode(bytes(bad))["ip"]["checksum_ok"] is False
    arp = trace.decode(trace.arp_request(SRC_MAC, "10.0.1.10", "10.0.1.99"))
    assert trace.summary(arp) == "ARP who-has 10.0.1.99 tell 10.0.1.10 (02:a1:61:4f:d9:36)"


# ---------------------------------------------------------------- the walk, on the shipped lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
LAB = os.path.join(ROOT, "inventories", "lab")


@pytest.fixture(scope="module")
def lab():
    """(model, renderings) of the shipped lab inventory, read without Ansible."""
    with open(os.path.join(LAB, "hosts.yml")) as f:
        hosts = yaml.safe_load(f)["all"]["children"]["mizar_hosts"]["hosts"]
    with open(os.path.join(LAB, "group_vars", "all.yml")) as f:
        tenants = yaml.safe_load(f)
    inventory = dict(tenants, hosts=dict((h, dict(v, mizar_interface="eth0")) for h, v in hosts.items()))
    return check(inventory)[0], render_inventory(inventory, offline=True)


def _start(lab, src, dst, **kw):
    return trace.start(lab[0], lab[1], src, dst, **kw)


@pytest.mark.parametrize("kw,says", [
    (dict(src="nosuch", dst="10.0.1.11"), "src: 'nosuch' is no endpoint of any transit host"),
    (dict(src="blue1", dst="10.9.9.9"), "dst: 10.9.9.9 is outside VPC blue (10.0.0.0/16) of blue/web/blue1"),
    (dict(src="blue1", dst="10.0.1.300"), "dst: '10.0.1.300' is not an IPv4 address"),
    (dict(src="blue1", dst="10.0.1.11", proto="sctp"), "proto: 'sctp' is not a protocol the trace sends"),
    (dict(src="blue1", dst="10.0.1.11", dport=80), "sport, dport: ICMP has no ports"),
    (dict(src="blue1", dst="10.0.1.11", proto="tcp", dport=70000), "dport: 70000 is not a port number"),
    (dict(src="blue1", dst="10.0.1.11", mode="guess"), "mode: 'guess' is not one of live, model, compare"),
    (dict(src="blue1", dst="10.0.1.11", max_hops=0), "max_hops: 0 is not between 1 and 64"),
])
def test_bad_requests_name_their_field(lab, kw, says):
    with pytest.raises(trace.TraceError, match=re.escape(says)):
        _start(lab, kw.pop("src"), kw.pop("dst"), **kw)


def test_the_frame_is_addressed_as_the_endpoint_would(lab):
    renderings = lab[1]
    gateway = next(e["mac"] for e in renderings["mzh1"]["maps"]["endpoints"] if e["name"] == "blue/web/gateway")
    blue2 = next(e["mac"] for e in renderings["mzh1"]["maps"]["endpoints"] if e["name"] == "blue/web/blue2")
    off = _start(lab, "blue1", "10.0.2.10")
    assert (off["request"]["via"], trace.decode(off["request"]["frame"])["eth"]["dst"]) == ("gateway", gateway)
    assert off["next"] == {"host": "mzh1", "program": "agent", "iface": off["request"]["endpoint"]["iface"],
                           "pin_dir": "/sys/fs/bpf/mizar", "frame": off["request"]["frame"]}
    near = _start(lab, "blue/web/blue1", "10.0.1.11", proto="udp", dport=53)
    assert (near["request"]["via"], trace.decode(near["request"]["frame"])["eth"]["dst"]) == ("neighbour", blue2)
    assert trace.decode(near["request"]["frame"])["udp"]["dport"] == 53
    unknown = _start(lab, "blue1", "10.0.1.99")
    assert unknown["request"]["kind"] == "arp"
    assert trace.decode(unknown["request"]["frame"])["arp"]["tpa"] == "10.0.1.99"


def _result(verdict, frame_out, counted, stage=None, functions=(), target=None, drop_reason=None):
    """What mizar.transit.trace_hop returns, for the walk's tests."""
    return {"verdict": verdict, "frame_out": frame_out.hex(), "counted": counted, "stage": stage,
            "functions": list(functions), "target": target, "drop_reason": drop_reason, "prog_id": 1}


def _tunnel(frm, to, vni, inner, ttl=64):
    return packets.outer("02:00:00:00:00:01", "02:00:00:00:00:02", frm, to, packets.geneve_header(vni) + inner,
                         ttl=ttl)


def test_the_walk_follows_the_outer_destination_to_the_next_host(lab):
    state = _start(lab, "blue2", "10.0.2.10", mode="compare")
    frame = bytes.fromhex(state["request"]["frame"])
    state = trace.step(state, _result("redirect", _tunnel("192.168.77.2", "192.168.77.1", 100, frame),
                                      {"redirect": 1, "agent_encap": 1}, target={"ifindex": 2, "iface": "eth0"}),
                       lab[1])
    assert state["next"]["host"] == "mzh1" and state["next"]["program"] == "transit"
    assert state["hops"][0]["role"] == "to a bouncer"
    state = trace.step(state, _result("tx", _tunnel("192.168.77.1", "192.168.77.3", 100, frame, 63),
                                      {"tx": 1, "to_divider": 1}, stage="on_xdp_tx"), lab[1])
    assert state["next"]["host"] == "mzh3" and state["hops"][1]["role"] == "to a divider"
    acl = [{"pos": 0, "program": "acl_on_xdp_redi", "prog_id": 9, "decision": "returned drop"}]
    state = trace.step(state, _result("drop", frame, {"redirect": 1, "decap": 1}, stage="on_xdp_redirect",
                                      functions=acl, target={"ifindex": 5, "iface": "x"}), lab[1])
    assert state["done"] and state["outcome"] == "dropped"
    assert state["hops"][2]["dropped_by"] == "acl-blue"
    assert state["verdict"] == "blue/web/blue2 -> 10.0.2.10: dropped at mzh3 (hop 3) by function acl-blue (on_xdp_redirect)"
    assert [r["agree"] for r in state["compare"]["hops"]] == [True, True, False]
    assert state["compare"]["agree"] is False
    assert trace.lines(state)[-1] == state["verdict"]


def test_the_walk_ends_on_delivery_and_at_the_hop_limit(lab):
    state = _start(lab, "blue2", "10.0.1.12")
    iface = next(e["iface"] for e in lab[1]["mzh2"]["local_endpoints"] if e["name"] == "blue/web/blue3")
    frame = bytes.fromhex(state["request"]["frame"])
    done = trace.step(state, _result("redirect", frame, {"redirect": 1, "agent_local": 1}, stage="on_xdp_redirect",
                                     target={"ifindex": 7, "iface": iface}), lab[1])
    assert done["outcome"] == "delivered" and done["hops"][0]["delivered_to"] == "blue/web/blue3"
    assert done["hops"][0]["role"] == "local delivery"
    state = _start(lab, "blue2", "10.0.2.10", max_hops=1)
    cut = trace.step(state, _result("redirect", _tunnel("192.168.77.2", "192.168.77.1", 100, frame),
                                    {"redirect": 1, "agent_encap": 1}, target={"ifindex": 2, "iface": "eth0"}), lab[1])
    assert cut["outcome"] == "hop_limit" and cut["next"] is None


def test_model_mode_walks_the_rendering(lab):
    state = _start(lab, "bluedb1", "10.0.1.10", mode="model")
    assert state["done"] and state["next"] is None and state["outcome"] == "delivered"
    assert [(h["host"], h["path"], h["role"]) for h in state["model"]["hops"]] == [
        ("mzh3", "agent_encap", "to a bouncer"), ("mzh2", "to_divider", "to a divider"), ("mzh3", "divide", "divider"),
        ("mzh1", "decap", "local delivery")]
    assert state["verdict"] == "blue/db/bluedb1 -> 10.0.1.10: delivered to blue/web/blue1 (model, 4 hops)"
    red = _start(lab, "red1", "10.0.2.10", mode="model")
    assert red["outcome"] == "dropped" and red["model"]["hops"][-1] == {
        "n": 2, "host": "mzh3", "path": "drop", "drop_reason": "no_hops", "role": "drop"}
