"""One hop of a trace (ops/trace_hop.py) through the live programs of a lab
in namespaces: the frame an endpoint sends runs through its agent, then
through the transit program of the host the output goes to, with the real
maps and stage table. Each hop names its verdict, its path and drop reason
by the datapath's counters, the stage's functions and what each decided,
and the interface a redirect goes to; outputs are checked byte for byte.

VPC A (VNI 1000), 10.0.0.0/24, bouncer h3:

  a1 10.0.0.2 on h1    a2 10.0.0.3 on h1    a3 10.0.0.4 on h2
"""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, stages
from ansible_collections.mizar.transit.plugins.module_utils.model import trace
from ansible_collections.mizar.transit.plugins.module_utils.ops import trace_hop

from .conftest import BPF_OUT, RUN
from .topology import Lab, deltas

A = 1000
BLOCKED, OPEN = 7777, 7778
ACL_OBJ = os.path.join(BPF_OUT, "functions", "acl.bpf.o")


@pytest.fixture(scope="module")
def lab():
    prefix = "%s-trh" % RUN
    lab = Lab(prefix, BPF_OUT)
    lab.destroy()
    lab.vpc(A, "10.0.0.0/24", bouncers=["h3"])
    lab.endpoint("a1", A, "10.0.0.2", "h1")
    lab.endpoint("a2", A, "10.0.0.3", "h1")
    lab.endpoint("a3", A, "10.0.0.4", "h2")
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy_checked()


def hop(lab, host, frame, program, iface=None, pin_dir=None):
    """trace_hop's result for frame through program on host (in its namespace)."""
    params = dict(frame=frame.hex(), program=program, iface=iface,
                  pin_dir=pin_dir or lab.loaders[host].pin_dir)
    return nsenter.run_in_netns(lab.ns(host), trace_hop.ensure, trace_hop.Spec.from_params(params))


def frame_from(lab, src, dst, proto="udp", dport=OPEN):
    s, d = lab.endpoints[src], lab.endpoints[dst]
    return trace.ipv4_frame(s.mac, d.mac, s.ip, d.ip, proto, 40000, dport)


def test_same_host_delivery_by_the_agent(lab):
    frame = frame_from(lab, "a1", "a2")
    res = hop(lab, "h1", frame, "agent", lab.endpoints["a1"].host_ifname)
    assert res["changed"] is False
    assert res["verdict"] == "redirect" and res["runs"] == 1
    assert res["counted"] == {"redirect": 1, "agent_local": 1}
    assert res["drop_reason"] is None
    assert res["stage"] == "on_xdp_redirect" and res["functions"] == []
    assert res["target"] == {"ifindex": lab.endpoints["a2"].host_ifindex, "iface": lab.endpoints["a2"].host_ifname}
    assert bytes.fromhex(res["frame_out"]) == frame


def test_a_packet_across_hosts_hop_by_hop(lab):
    frame = frame_from(lab, "a1", "a3")
    h1, h2, h3 = (lab.hosts[h]["ip"] for h in ("h1", "h2", "h3"))
    # the agent: Geneve to the bouncer h3, out of the NIC, no stage
    first = hop(lab, "h1", frame, "agent", lab.endpoints["a1"].host_ifname)
    assert first["verdict"] == "redirect" and first["counted"] == {"redirect": 1, "agent_encap": 1}
    assert first["stage"] is None and first["target"]["iface"] == "eth0"
    out = first["headers_out"]
    assert (out["ip"]["src"], out["ip"]["dst"], out["geneve"]["vni"]) == (h1, h3, A)
    assert bytes.fromhex(first["frame_out"])[-len(frame):] == frame
    # the bouncer: to a3's host, TX, stage on_xdp_tx
    second = hop(lab, "h3", bytes.fromhex(first["frame_out"]), "transit")
    assert second["verdict"] == "tx" and second["counted"] == {"tx": 1, "bounce": 1}
    assert second["stage"] == "on_xdp_tx" and second["target"] is None
    out = second["headers_out"]
    assert (out["ip"]["src"], out["ip"]["dst"], out["ip"]["ttl"]) == (h3, h2, 63)
    assert out["inner"]["ip"] == trace.decode(frame)["ip"]
    # a3's host: decapsulated, to a3's interface
    third = hop(lab, "h2", bytes.fromhex(second["frame_out"]), "transit")
    assert third["verdict"] == "redirect" and third["counted"] == {"redirect": 1, "decap": 1}
    assert third["stage"] == "on_xdp_redirect"
    assert third["target"]["iface"] == lab.endpoints["a3"].host_ifname
    assert bytes.fromhex(third["frame_out"]) == frame


def test_a_drop_is_named_by_its_reason(lab):
    a1 = lab.endpoints["a1"]
    spoofed = trace.ipv4_frame(a1.mac, lab.endpoints["a3"].mac, "10.0.0.99", "10.0.0.4", "icmp")
    res = hop(lab, "h1", spoofed, "agent", a1.host_ifname)
    assert res["verdict"] == "drop" and res["drop_reason"] == "agent_spoof"
    assert res["counted"] == {"drop": 1, "agent_spoof": 1} and res["stage"] == "on_xdp_drop"


def test_not_geneve_passes_to_the_host(lab):
    res = hop(lab, "h2", frame_from(lab, "a1", "a3"), "transit")
    assert res["verdict"] == "pass" and res["counted"] == {"pass": 1} and res["stage"] == "on_xdp_pass"


def test_the_trace_adds_exactly_what_it_says(lab):
    before = lab.counters("h1")
    hop(lab, "h1", frame_from(lab, "a1", "a2"), "agent", lab.endpoints["a1"].host_ifname)
    after = lab.counters("h1")
    assert deltas(before, after) == {"redirect": 1, "agent_local": 1}


@pytest.fixture
def acl_on_h2(lab):
    pin_dir = lab.loaders["h2"].pin_dir
    st = stages.Stages(pin_dir)
    st.install("on_xdp_redirect", ACL_OBJ, "acl_on_xdp_redirect")
    rules = [{"vpc": "A", "src": "0.0.0.0/0", "dst": "0.0.0.0/0", "protocol": "udp", "port": BLOCKED,
              "action": "drop"}]
    fnconfig.configurator("acl").converge(os.path.join(pin_dir, "maps"), {"rules": rules}, {"A": A})
    yield
    st.remove("on_xdp_redirect")


def test_stage_functions_run_and_their_decisions_are_named(lab, acl_on_h2):
    for port, verdict, decision in ((BLOCKED, "drop", "returned drop"), (OPEN, "redirect", "passed")):
        frame = frame_from(lab, "a1", "a3", dport=port)
        out = hop(lab, "h1", frame, "agent", lab.endpoints["a1"].host_ifname)["frame_out"]
        out = hop(lab, "h3", bytes.fromhex(out), "transit")["frame_out"]
        res = hop(lab, "h2", bytes.fromhex(out), "transit")
        assert res["verdict"] == verdict, port
        # the pipeline decided to deliver; the function decided the rest
        assert res["counted"] == {"redirect": 1, "decap": 1}, port
        assert res["stage"] == "on_xdp_redirect"
        assert [(f["pos"], f["program"], f["decision"]) for f in res["functions"]] == \
            [(0, "acl_on_xdp_redi", decision)], port


def test_a_host_without_the_program_says_so(lab, tmp_path):
    frame = frame_from(lab, "a1", "a2")
    with pytest.raises(trace_hop.TraceHopError, match="no datapath loaded at %s" % tmp_path):
        hop(lab, "h1", frame, "agent", lab.endpoints["a1"].host_ifname, pin_dir=str(tmp_path))
    with pytest.raises(trace_hop.TraceHopError, match="no agent program attached to nosuch0"):
        hop(lab, "h1", frame, "agent", "nosuch0")


def test_bad_frames_are_refused_naming_the_field():
    with pytest.raises(trace_hop.TraceHopError, match="frame: not hexadecimal"):
        trace_hop.Spec.from_params(dict(frame="zz", program="transit", iface=None, pin_dir="/x"))
    with pytest.raises(trace_hop.TraceHopError, match="frame: 3 bytes"):
        trace_hop.Spec.from_params(dict(frame="000102", program="transit", iface=None, pin_dir="/x"))
    with pytest.raises(trace_hop.TraceHopError, match="iface: the agent"):
        trace_hop.Spec.from_params(dict(frame="00" * 60, program="agent", iface=None, pin_dir="/x"))
