"""The counters where monitoring reads them: real packets through the
transit program attached to a veth, with the acl and ratelimit functions
chained at ON_XDP_REDIRECT, then transit_info's backend (ops/transit_info.py)
and the Prometheus text made of its result, read back with prometheus_client's
parser. Every counter is asserted by name and exact value."""
import pytest

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, fnconfig, stages
from ansible_collections.mizar.transit.plugins.module_utils.model import functions, metrics
from ansible_collections.mizar.transit.plugins.module_utils.ops import transit_info

from packets import XDP_DROP, XDP_PASS, XDP_REDIRECT, geneve_bad_version, geneve_header, geneve_icmp, outer, \
    plain_udp, udp_to

from .conftest import BPF_OUT
from . import test_loader
from .test_loader import H1, H2, MAC, VNI, desired, run_attached

ld = test_loader.ld  # the fixture: a Loader in a namespace with the veth a0 <-> a1

STAGE = "on_xdp_redirect"
VNIS = {"blue": VNI}
BLOCKED = 7777
ACL = {"rules": [{"vpc": "blue", "src": "0.0.0.0/0", "dst": "0.0.0.0/0", "protocol": "udp", "port": BLOCKED,
                  "action": "drop"}]}
# one packet a second for the whole VPC, a burst of 1 us: the first packet
# passes, and every other within the second is dropped
LIMIT = {"limits": [{"vpc": "blue", "pps": 1, "burst": "1us"}]}


def udp_to_endpoint(dport):
    """UDP from 10.0.0.3 (on H2) to the local endpoint 10.0.0.2, tunnelled from H2."""
    inner = udp_to("02:0a:00:00:00:03", "02:0a:00:00:00:02", "10.0.0.3", "10.0.0.2", dport)
    return outer(MAC[H2], MAC[H1], H2, H1, geneve_header(VNI) + inner)


@pytest.fixture
def chained(ld):
    """The datapath of test_loader's desired() on a0, with the acl then
    ratelimit at ON_XDP_REDIRECT, configured with ACL and LIMIT."""
    ld.load()
    ld.converge(desired(2))
    ld.attach("transit", "a0")
    objs = []
    try:
        progs = []
        for obj, prog in (("acl", "acl_on_xdp_redirect"), ("ratelimit", "ratelimit_on_xdp_redirect")):
            o, p = stages.load_stage(ld.pin_dir, "%s/functions/%s.bpf.o" % (BPF_OUT, obj), prog)
            objs.append(o)
            progs.append(p)
        stages.Stages(ld.pin_dir).set_chain(STAGE, progs)
    finally:
        for o in objs:
            o.close()
    fnconfig.configurator("acl").converge(ld.maps_dir, ACL, VNIS)
    fnconfig.configurator("ratelimit").converge(ld.maps_dir, LIMIT, VNIS)
    return ld


def info_of(d):
    spec = transit_info.Spec(d.pin_dir, functions.default_registry().counter_maps())
    return transit_info.ensure(spec)


def samples(text):
    """{(metric, label values other than host): value} of the text, parsed."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = dict(s.labels)
            assert labels.pop("host") == "h1"
            out[(s.name,) + tuple(v for dummy, v in sorted(labels.items()))] = s.value
    return out


def test_counters_by_name_after_real_packets(chained):
    d = chained
    verdicts = [run_attached(d, "a0", p).retval for p in (
        plain_udp(),                                       # not Geneve: the host's own
        geneve_bad_version(H1, src=H2),                    # malformed Geneve from a transit host
        geneve_bad_version(H1),                            # Geneve from no transit host at all
        udp_to_endpoint(BLOCKED),                          # decapsulated; the ACL drops it
        geneve_icmp(H2, H1, MAC[H1], VNI, "10.0.0.3", "10.0.0.2"),  # within the VPC's limit
        geneve_icmp(H2, H1, MAC[H1], VNI, "10.0.0.3", "10.0.0.2"),  # over it: ratelimit drops
        udp_to_endpoint(BLOCKED + 1),                      # past the ACL, over the limit
    )]
    assert verdicts == [XDP_PASS, XDP_DROP, XDP_DROP, XDP_DROP, XDP_REDIRECT, XDP_DROP, XDP_DROP]

    info = info_of(d)
    assert info["changed"] is False
    # the pipeline's verdicts are counted before the stage's functions run:
    # the four decapsulated packets count as redirect, whatever the chain did
    assert info["verdicts"] == {"aborted": 0, "drop": 2, "pass": 1, "tx": 0, "redirect": 4}
    assert info["paths"] == {
        "transit": {"bounce": 0, "divide": 0, "to_divider": 0, "arp_reply": 0, "decap": 4, "bypass": 0, "scaled": 0,
                    "to_peer": 0},
        "agent": {"agent_encap": 0, "agent_local": 0, "agent_pmtu": 0}}
    assert info["drop_reasons"] == dict((r, 1 if r in ("geneve_version", "untrusted_src") else 0)
                                        for r in abi.DROP_REASONS)
    assert info["drops"] == {"geneve_version": 1, "untrusted_src": 1}  # as before: the reasons with drops
    assert info["functions"] == {
        "acl": {"counters": {"seen": 4, "dropped": 1}, "stages": [STAGE]},
        "ratelimit": {"counters": {"passed": 1, "dropped": 2}, "stages": [STAGE]}}

    got = samples(metrics.exposition("h1", info))
    assert got[("mizar_transit_up",)] == 1
    assert dict((k[1], v) for k, v in got.items() if k[0] == "mizar_transit_verdict_packets_total") == \
        dict((k, float(v)) for k, v in info["verdicts"].items())
    assert dict((k[1:], v) for k, v in got.items() if k[0] == "mizar_transit_path_packets_total") == dict(
        ((path, prog), float(n)) for prog, paths in info["paths"].items() for path, n in paths.items())
    drops = dict((k[1], v) for k, v in got.items() if k[0] == "mizar_transit_drop_packets_total")
    assert drops["geneve_version"] == 1 and drops["untrusted_src"] == 1 and drops["ttl"] == 0
    assert sum(drops.values()) == 2 and set(drops) == set(abi.DROP_REASONS)
    assert dict((k[1:], v) for k, v in got.items() if k[0] == "mizar_transit_function_packets_total") == {
        ("seen", "acl"): 4.0, ("dropped", "acl"): 1.0, ("passed", "ratelimit"): 1.0, ("dropped", "ratelimit"): 2.0}
    assert dict((k[1:], v) for k, v in got.items() if k[0] == "mizar_transit_function_stage_info") == {
        ("acl", STAGE): 1.0, ("ratelimit", STAGE): 1.0}


def test_a_function_that_is_not_installed_is_not_reported(ld):
    ld.load()
    info = info_of(ld)
    assert info["functions"] == {} and info["stages"][STAGE] is None
    assert info["verdicts"] == dict((v, 0) for v in abi.VERDICTS)


def test_a_declared_map_of_another_shape_is_refused_naming_the_function(chained):
    spec = transit_info.Spec(chained.pin_dir, {"mine": {"map": "mzr_rl_local", "counters": ["a", "b"]}})
    with pytest.raises(transit_info.InfoError) as e:
        transit_info.ensure(spec)
    assert "function mine: its counters map mzr_rl_local is not a per-CPU array of 2 __u64 slots or more" in \
        str(e.value)


@pytest.mark.parametrize("declared,message", [
    ({"x": {"map": "mzr_acl_stats"}}, "function_counters.x: give map (the counters map's pin name) and counters"),
    ({"x": {"map": "../etc", "counters": ["a"]}}, "function_counters.x.map: '../etc' is not a map's pin name"),
    ({"x": {"map": "m", "counters": ["a", "a"]}}, "function_counters.x.counters: a list of distinct names"),
])
def test_bad_declarations_are_refused_before_reading(declared, message):
    with pytest.raises(transit_info.InfoError) as e:
        transit_info.Spec("/sys/fs/bpf/none", declared)
    assert message in str(e.value)
