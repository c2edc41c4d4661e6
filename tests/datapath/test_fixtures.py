"""Every row of the fixture table through the real programs: verdict, exact
output bytes, and exactly the counters that must move."""
import pytest
from scapy.layers.l2 import Ether

import fixtures as F


def _show(data):
    return Ether(data).show(dump=True)


@pytest.mark.parametrize("f", F.ALL, ids=[f.name for f in F.ALL])
def test_fixture(dp, f):
    verdict, out, counters = dp.run_fixture(f)
    assert F.VERDICTS[verdict] == F.VERDICTS[f.verdict], f.description
    if out != f.output:
        pytest.fail("%s: output differs\n--- got\n%s\n--- want\n%s\ngot  %s\nwant %s" % (
            f.description, _show(out), _show(f.output), out.hex(), f.output.hex()))
    assert counters == f.counters, f.description


def test_divider_choice_is_stable_and_spread(dp):
    """The bouncer a divider picks is a function of the flow: the same flow
    always gets the same one, and many flows use every bouncer."""
    dp.load_world(F.WORLD_B)
    chosen = {}
    for n in range(64):
        src = "10.3.1.%d" % (n + 2)
        inner = F.P.inner_ipv4(F.ep_mac(300, 9), F.GW_MAC, src, "10.3.0.77")
        pkt = F.enc(inner, vni=300)
        outs = set()
        for dummy in range(3):
            r = dp.run("transit", pkt)
            assert r.retval == F.XDP_TX
            outs.add(r.data[:6])
        assert len(outs) == 1, "a flow changed bouncer"
        mac = ":".join("%02x" % b for b in outs.pop())
        assert mac == F.mac(F.host_of(F.pick([F.ip("h4"), F.ip("h5")], src, "10.3.0.77")))
        chosen[src] = mac
    assert set(chosen.values()) == {F.mac("h4"), F.mac("h5")}
