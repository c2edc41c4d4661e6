"""The acl function in its stages, through the real transit program: it drops
exactly the flows its rules name, in their VPC only, and otherwise leaves the
pipeline's verdict and output untouched."""
import ctypes
import os

import pytest

import fixtures as F
from harness import BPF_OUT
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, libbpf

VNIS = {"blue": 100, "red": 200, "green": 300}
ACL = fnconfig.configurator("acl")


@pytest.fixture(scope="module")
def acl(dp):
    obj = libbpf.BpfObject(os.path.join(BPF_OUT, "functions", "acl.bpf.o"), pin_root=dp.pin_dir).load()
    progs = {"on_xdp_redirect": obj.program("acl_on_xdp_redirect"), "on_xdp_tx": obj.program("acl_on_xdp_tx")}
    yield progs
    for stage in progs:
        dp.set_stage(stage, None)
    ACL.converge(dp.pin_dir, {"rules": []}, VNIS)
    obj.close()


def rule(**kw):
    r = {"vpc": "blue", "src": "0.0.0.0/0", "protocol": "any", "action": "drop"}
    r.update(kw)
    return r


CASES = [  # stage, fixture, rules, expected verdict
    ("on_xdp_redirect", "local", [rule(dst="10.0.0.7/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_redirect", "local", [rule(dst="10.0.0.7/32", protocol="udp", port=8)], F.XDP_REDIRECT),
    ("on_xdp_redirect", "local", [rule(dst="10.0.0.7/32", protocol="tcp")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "local", [rule(vpc="red", dst="10.0.0.0/24")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "local", [rule(src="10.0.0.5/32", dst="10.0.0.0/24")], F.XDP_DROP),
    ("on_xdp_redirect", "local", [rule(src="10.0.0.6/32", dst="10.0.0.0/24")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "arp_local", [rule(dst="10.0.0.0/24")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "bypass", [rule(dst="10.0.0.8/32", protocol="udp")], F.XDP_DROP),
    ("on_xdp_redirect", "bypass", [rule(dst="10.0.0.9/32")], F.XDP_REDIRECT),
    ("on_xdp_tx", "bouncer", [rule(dst="10.0.0.6/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_tx", "bouncer", [rule(dst="10.0.0.6/32", protocol="icmp")], F.XDP_TX),
    ("on_xdp_tx", "same_ip_vni200", [rule(dst="10.0.0.5/32")], F.XDP_TX),
    ("on_xdp_tx", "same_ip_vni200", [rule(vpc="red", dst="10.0.0.5/32")], F.XDP_DROP),
    ("on_xdp_tx", "bouncer", [], F.XDP_TX),
    # port rules hold over inner IPv4 options; a later fragment has no port, a first one has
    ("on_xdp_redirect", "local_ip_options", [rule(dst="10.0.0.7/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_tx", "inner_ip_options", [rule(dst="10.0.0.6/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_tx", "inner_fragment_mf", [rule(dst="10.0.0.6/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_redirect", "local_fragment", [rule(dst="10.0.0.7/32", protocol="udp", port=7)], F.XDP_REDIRECT),
    ("on_xdp_redirect", "local_fragment", [rule(dst="10.0.0.7/32", protocol="udp")], F.XDP_DROP),
    ("on_xdp_redirect", "agent_local_ip_options", [rule(dst="10.0.0.4/32", protocol="udp", port=7)], F.XDP_DROP),
    # the agent: a same-host delivery meets ON_XDP_REDIRECT as one over the substrate does
    ("on_xdp_redirect", "agent_local", [rule(dst="10.0.0.4/32")], F.XDP_DROP),
    ("on_xdp_redirect", "agent_local", [rule(src="10.0.0.5/32", dst="10.0.0.4/32", protocol="udp", port=7)],
     F.XDP_DROP),
    ("on_xdp_redirect", "agent_local", [rule(dst="10.0.0.6/32")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "agent_local", [rule(vpc="red", dst="10.0.0.4/32")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "agent_local_bypass", [rule(dst="10.0.0.10/32", protocol="udp")], F.XDP_DROP),
    ("on_xdp_redirect", "agent_local_bypass", [rule(dst="10.0.0.4/32")], F.XDP_REDIRECT),
    ("on_xdp_redirect", "agent_arp_request_local", [rule(dst="10.0.0.0/24")], F.XDP_REDIRECT),
    # ... and the bouncer host's own endpoints meet its ON_XDP_TX rules
    ("on_xdp_tx", "agent_self_bouncer", [rule(dst="10.0.0.6/32", protocol="udp", port=7)], F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer", [rule(dst="10.0.0.6/32", protocol="tcp")], F.XDP_REDIRECT),
    ("on_xdp_tx", "agent_self_bouncer_divider", [rule(dst="10.0.5.0/24")], F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer_arp", [rule(dst="10.0.0.0/24")], F.XDP_TX),
    # a plain encapsulation to a remote bouncer: that bouncer's ON_XDP_TX decides
    ("on_xdp_tx", "agent_encap", [rule(dst="10.0.0.6/32")], F.XDP_REDIRECT),
]


@pytest.mark.parametrize("stage,fixture,rules,verdict", CASES,
                         ids=["%s-%s-%d" % (c[0], c[1], i) for i, c in enumerate(CASES)])
def test_acl_verdicts(dp, acl, stage, fixture, rules, verdict):
    f = F.BY_NAME[fixture]
    ACL.converge(dp.pin_dir, {"rules": rules}, VNIS)
    dp.set_stage(stage, acl[stage])
    try:
        got, out, counters = dp.run_fixture(f)
    finally:
        dp.set_stage(stage, None)
    assert F.VERDICTS[got] == F.VERDICTS[verdict]
    assert out == f.output  # dropped or not, the packet is the pipeline's
    assert counters == f.counters  # the pipeline counted its own verdict


def _stats(dp):
    with libbpf.Map.from_pin(os.path.join(dp.pin_dir, "mzr_acl_stats")) as m:
        return [sum(int.from_bytes(v, "little") for v in m.lookup(i.to_bytes(4, "little"))) for i in (0, 1)]


def test_acl_counts(dp, acl):
    ACL.converge(dp.pin_dir, {"rules": [rule(dst="10.0.0.7/32")]}, VNIS)
    before = _stats(dp)
    dp.set_stage("on_xdp_redirect", acl["on_xdp_redirect"])
    try:
        dp.run_fixture(F.BY_NAME["local"])
        dp.run_fixture(F.BY_NAME["bypass"])
    finally:
        dp.set_stage("on_xdp_redirect", None)
    seen, dropped = (a - b for a, b in zip(_stats(dp), before))
    assert (seen, dropped) == (2, 1)


def test_acl_converge_is_idempotent_and_honours_check_mode(dp, acl):
    cfg = {"rules": [rule(dst="10.0.0.7/32", protocol="tcp", port=22)]}
    ACL.converge(dp.pin_dir, {"rules": []}, VNIS)
    changed, before, after = ACL.converge(dp.pin_dir, cfg, VNIS, check_mode=True)
    assert changed and before == {"rules": []}
    assert after == {"rules": [dict(cfg["rules"][0], src="0.0.0.0/0")]}
    assert ACL.converge(dp.pin_dir, {"rules": []}, VNIS)[0] is False  # check mode wrote nothing
    assert ACL.converge(dp.pin_dir, cfg, VNIS)[0] is True
    assert ACL.converge(dp.pin_dir, cfg, VNIS)[0] is False


def test_acl_unknown_vpc_is_an_error(dp, acl):
    with pytest.raises(fnconfig.FunctionConfigError, match="rules\\[0\\].vpc: no VPC named 'nope'"):
        ACL.converge(dp.pin_dir, {"rules": [rule(vpc="nope", dst="10.0.0.0/8")]}, VNIS)


@pytest.mark.parametrize("codec", sorted(fnconfig.C_NAMES, key=fnconfig.C_NAMES.get), ids=fnconfig.C_NAMES.get)
def test_acl_codec_matches_btf(codec):
    with libbpf.Btf.from_elf(os.path.join(BPF_OUT, "functions", "acl.bpf.o")) as btf:
        desc = btf.describe(btf.find_struct(fnconfig.C_NAMES[codec]))
    assert desc[2] == ctypes.sizeof(codec)
    assert [(m, off) for m, off, dummy in desc[3]] == [(n, getattr(codec, n).offset) for n, dummy in codec._fields_]


@pytest.mark.parametrize("vni", [0, 0x1000064])
def test_acl_vni_off_the_wire_is_an_error(dp, acl, vni):
    """A rule of a VPC whose VNI does not fit 24 bits would match another
    VPC's packets: refused, and the active set is left alone."""
    ACL.converge(dp.pin_dir, {"rules": [rule(dst="10.0.0.7/32")]}, VNIS)
    before = ACL.converge(dp.pin_dir, {"rules": [rule(dst="10.0.0.7/32")]}, VNIS, check_mode=True)
    message = r"rules\[0\].vpc: the VNI of VPC 'big', %d is not a VNI" % vni
    with pytest.raises(fnconfig.FunctionConfigError, match=message):
        ACL.converge(dp.pin_dir, {"rules": [rule(vpc="big", dst="10.0.0.0/8")]}, dict(VNIS, big=vni))
    assert ACL.converge(dp.pin_dir, {"rules": [rule(dst="10.0.0.7/32")]}, VNIS, check_mode=True) == before
