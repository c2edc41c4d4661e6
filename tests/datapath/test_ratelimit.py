"""The ratelimit function at ON_XDP_REDIRECT, through the real transit program
and agent: a packet within its limit goes on with the pipeline's verdict and
output, one over it is dropped and counted on its limit, and the packets of
an endpoint without a limit go on untouched.

Each packet is its own BPF_PROG_TEST_RUN (with repeat, the kernel would run
the program again on the packet it already rewrote). The rates are chosen so
that the outcome does not depend on how long the test takes: a limit of one
packet (or one frame's bits) per second with a burst of 1 ms passes the
first packet and drops the rest; a limit of a million per second with a
burst of 10 ms passes every one of a few dozen."""
import os

import pytest

import fixtures as F
from harness import BPF_OUT, assert_codec_matches_btf
from ansible_collections.mizar.transit.plugins.module_utils.bpf import fnconfig, libbpf

VNIS = {"blue": 100, "red": 200}
RL = fnconfig.configurator("ratelimit")
OBJ = os.path.join(BPF_OUT, "functions", "ratelimit.bpf.o")
STAGE = "on_xdp_redirect"


@pytest.fixture(scope="module")
def rl(dp):
    obj = libbpf.BpfObject(OBJ, pin_root=dp.pin_dir).load()
    prog = obj.program("ratelimit_on_xdp_redirect")
    yield prog
    dp.set_stage(STAGE, None)
    RL.converge(dp.pin_dir, {"limits": []}, VNIS)
    obj.close()


def limit(ip=None, vpc="blue", burst="1ms", **rates):
    out = dict(vpc=vpc, burst=burst, **rates)
    if ip:
        out["ip"] = ip
    return out


def run(dp, rl, limits, fixture, n):
    """Configure limits (each test starts from none, so its limits are
    fresh), run fixture n times; the verdicts, each output checked to be
    the pipeline's and the pipeline's counters to count its own verdict."""
    f = F.BY_NAME[fixture]
    RL.converge(dp.pin_dir, {"limits": []}, VNIS)
    RL.converge(dp.pin_dir, {"limits": limits}, VNIS)
    dp.set_stage(STAGE, rl)
    verdicts = []
    try:
        for dummy in range(n):
            got, out, counters = dp.run_fixture(f)
            assert out == f.output  # passed or dropped, the packet is the pipeline's, byte for byte
            assert counters == f.counters  # the pipeline counted its own verdict
            verdicts.append(F.VERDICTS[got])
    finally:
        dp.set_stage(STAGE, None)
    return verdicts


def stats(dp):
    return dict(((s["vpc"], s.get("ip")), (s["passed"], s["dropped"])) for s in RL.stats(dp.pin_dir, VNIS))


REDIRECT, DROP = F.VERDICTS[F.XDP_REDIRECT], F.VERDICTS[F.XDP_DROP]
ONE_THEN_DROPS = [REDIRECT] + [DROP] * 9


@pytest.mark.parametrize("fixture,ip", [("local", "10.0.0.7"), ("bypass", "10.0.0.8"), ("agent_local", "10.0.0.4"),
                                        ("agent_local_bypass", "10.0.0.10")])
def test_over_the_packet_rate_dropped_and_counted(dp, rl, fixture, ip):
    assert run(dp, rl, [limit(ip, pps=1)], fixture, 10) == ONE_THEN_DROPS
    assert stats(dp) == {("blue", ip): (1, 9)}


@pytest.mark.parametrize("fixture,ip", [("local", "10.0.0.7"), ("bypass", "10.0.0.8"), ("agent_local", "10.0.0.4")])
def test_over_the_bit_rate_dropped(dp, rl, fixture, ip):
    frame = len(F.BY_NAME[fixture].output)  # the frame as delivered: what bps counts
    assert run(dp, rl, [limit(ip, bps=8 * frame)], fixture, 10) == ONE_THEN_DROPS
    assert [(s["passed_bytes"], s["dropped_bytes"]) for s in RL.stats(dp.pin_dir, VNIS)] == [(frame, 9 * frame)]


@pytest.mark.parametrize("rates", [dict(pps=1000000), dict(bps="10gbit"), dict(pps=1000000, bps=10 ** 10)])
def test_under_the_limit_passes(dp, rl, rates):
    assert run(dp, rl, [limit("10.0.0.7", burst="10ms", **rates)], "local", 40) == [REDIRECT] * 40
    assert stats(dp) == {("blue", "10.0.0.7"): (40, 0)}


@pytest.mark.parametrize("limits", [
    [limit("10.0.0.8", pps=1)],           # another endpoint of the VPC
    [limit("10.0.0.7", vpc="red", pps=1)],  # the same address in another VPC
    [limit(vpc="red", pps=1)],            # another VPC as a whole
    [],
], ids=["neighbour", "same-ip-other-vpc", "other-vpc", "none"])
def test_unlimited_endpoint_untouched(dp, rl, limits):
    assert run(dp, rl, limits, "local", 20) == [REDIRECT] * 20
    assert all(counts == (0, 0) for counts in stats(dp).values())


def test_arp_is_no_endpoints_packet(dp, rl):
    """An endpoint's limit holds its IPv4 packets: ARP to it goes on."""
    assert run(dp, rl, [limit("10.0.0.7", pps=1)], "arp_local", 5) == [REDIRECT] * 5


def test_vpc_limit_holds_every_endpoint_of_the_vpc(dp, rl):
    assert run(dp, rl, [limit(pps=1)], "local", 3) == [REDIRECT, DROP, DROP]
    f = F.BY_NAME["bypass"]
    dp.set_stage(STAGE, rl)
    try:
        got, out, dummy = dp.run_fixture(f)  # another endpoint: the same bucket, spent
    finally:
        dp.set_stage(STAGE, None)
    assert (F.VERDICTS[got], out) == (DROP, f.output)
    assert stats(dp) == {("blue", None): (1, 3)}


def test_endpoint_and_vpc_limits_both_hold(dp, rl):
    """A packet must pass both; the limit that refuses it counts the drop,
    and the one that would have passed it takes nothing."""
    limits = [limit("10.0.0.7", burst="10ms", pps=1000000), limit(pps=1)]
    assert run(dp, rl, limits, "local", 4) == [REDIRECT, DROP, DROP, DROP]
    assert stats(dp) == {("blue", "10.0.0.7"): (1, 0), ("blue", None): (1, 3)}
    limits = [limit("10.0.0.7", pps=1), limit(burst="10ms", pps=1000000)]
    assert run(dp, rl, limits, "local", 4) == [REDIRECT, DROP, DROP, DROP]
    assert stats(dp) == {("blue", "10.0.0.7"): (1, 3), ("blue", None): (1, 0)}


def test_a_limit_keeps_its_state_while_its_key_stays(dp, rl):
    """Changing a limit's rate, or adding others, keeps its bucket and
    counters; removing it and adding it again starts it afresh."""
    mine = limit("10.0.0.7", pps=1)
    assert run(dp, rl, [mine], "local", 2) == [REDIRECT, DROP]
    dp.set_stage(STAGE, rl)
    try:
        for limits in ([mine, limit("10.0.0.8", pps=5)], [dict(mine, pps=2)]):
            assert RL.converge(dp.pin_dir, {"limits": limits}, VNIS)[0]
            assert F.VERDICTS[dp.run_fixture(F.BY_NAME["local"])[0]] == DROP  # still spent
        assert stats(dp) == {("blue", "10.0.0.7"): (1, 3)}
        RL.converge(dp.pin_dir, {"limits": [limit("10.0.0.8", pps=5)]}, VNIS)
        RL.converge(dp.pin_dir, {"limits": [mine]}, VNIS)
        assert stats(dp) == {("blue", "10.0.0.7"): (0, 0)}
        assert F.VERDICTS[dp.run_fixture(F.BY_NAME["local"])[0]] == REDIRECT
    finally:
        dp.set_stage(STAGE, None)


def test_converge_is_idempotent_and_honours_check_mode(dp, rl):
    cfg = {"limits": [limit("10.0.0.7", vpc="blue", burst="20ms", pps=100, bps="10mbit"), limit(vpc="red", bps=8000)]}
    RL.converge(dp.pin_dir, {"limits": []}, VNIS)
    changed, before, after = RL.converge(dp.pin_dir, cfg, VNIS, check_mode=True)
    assert changed and before == {"limits": []}
    assert after == {"limits": [{"vpc": "blue", "ip": "10.0.0.7", "burst": "20ms", "pps": 100, "bps": 10000000},
                                {"vpc": "red", "burst": "1ms", "bps": 8000}]}
    assert RL.converge(dp.pin_dir, {"limits": []}, VNIS)[0] is False  # check mode wrote nothing
    assert RL.converge(dp.pin_dir, cfg, VNIS)[0] is True
    assert RL.converge(dp.pin_dir, cfg, VNIS)[0] is False
    # the order of the limits is no change
    assert RL.converge(dp.pin_dir, {"limits": cfg["limits"][::-1]}, VNIS)[0] is False
    assert RL.current(dp.pin_dir) == RL.encode(cfg, VNIS)


def test_unknown_vpc_is_an_error(dp, rl):
    RL.converge(dp.pin_dir, {"limits": [limit("10.0.0.7", pps=5)]}, VNIS)
    before = RL.current(dp.pin_dir)
    with pytest.raises(fnconfig.FunctionConfigError, match=r"limits\[0\].vpc: no VPC named 'nope'"):
        RL.converge(dp.pin_dir, {"limits": [limit("10.0.0.7", vpc="nope", pps=1)]}, VNIS)
    assert RL.current(dp.pin_dir) == before


@pytest.mark.parametrize("codec", sorted(fnconfig.RL_C_NAMES, key=fnconfig.RL_C_NAMES.get), ids=fnconfig.RL_C_NAMES.get)
def test_codec_matches_btf(codec):
    assert_codec_matches_btf(OBJ, fnconfig.RL_C_NAMES[codec], codec)
