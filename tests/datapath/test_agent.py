"""The agent's outer header, beyond single fixtures: the outer UDP source
port spreads the flows between two endpoints (RFC 8926 section 3.3) and
keeps the fragments of one datagram together."""
import fixtures as F


def _sport(out):
    return int.from_bytes(out[34:36], "big")


def _run(dp, name):
    f = F.BY_NAME[name]
    verdict, out, dummy = dp.run_fixture(f)
    assert (verdict, out) == (f.verdict, f.output), name
    return _sport(out)


def test_distinct_flows_between_two_endpoints_get_distinct_ports(dp):
    names = ["agent_encap", "agent_sport_udp_dport", "agent_sport_udp_sport", "agent_sport_tcp_80",
             "agent_sport_tcp_443", "agent_sport_icmp", "agent_sport_frag_first"]
    ports = [_run(dp, n) for n in names]
    assert len(set(ports)) == len(ports), dict(zip(names, ports))
    assert all(0xC000 <= p <= 0xFFFF for p in ports)


def test_fragments_of_a_datagram_share_the_port(dp):
    first, last = _run(dp, "agent_sport_frag_first"), _run(dp, "agent_sport_frag_last")
    assert first == last == F.abi.outer_sport("10.0.0.5", "10.0.0.6", 17)


def test_many_flows_spread_over_many_ports(dp):
    """64 UDP flows between the same two endpoints: the substrate sees (almost) as many outer ports."""
    dp.load_world(F.WORLD_H1)
    ports = set()
    for n in range(64):
        r = dp.run("agent", F._udp5(sport=33000 + n), F.LO)
        assert r.retval == F.XDP_REDIRECT
        ports.add(_sport(r.data))
    assert len(ports) >= 60, len(ports)


def test_ip_options_do_not_move_the_ports(dp):
    """The ports are read after the options: the same flow with and without them, the same outer port."""
    assert _run(dp, "agent_sport_ip_options") == _run(dp, "agent_encap")
