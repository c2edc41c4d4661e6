"""ops/trace_hop.py's reading of a run, without root: which stage the
pipeline entered, by what it counted, and what each function of the stage's
chain decided, by the chain position the stage context reached."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import trace_hop

CHAIN = [{"name": "acl_on_xdp_redi", "prog_id": 7}, {"name": "rl_on_xdp_redir", "prog_id": 8}]
DROP, REDIRECT = 1, 4


@pytest.mark.parametrize("program,counted,out_ip,stage", [
    ("transit", {"drop": 1, "ttl": 1}, None, "on_xdp_drop"),
    ("transit", {"pass": 1}, None, "on_xdp_pass"),
    ("transit", {"tx": 1, "bounce": 1}, "192.168.77.2", "on_xdp_tx"),
    ("transit", {"redirect": 1, "decap": 1}, None, "on_xdp_redirect"),
    ("agent", {"redirect": 1, "agent_local": 1}, None, "on_xdp_redirect"),
    ("agent", {"redirect": 1, "agent_encap": 1, "divide": 1}, "192.168.77.2", "on_xdp_tx"),
    ("agent", {"redirect": 1, "agent_encap": 1}, "192.168.77.1", "on_xdp_redirect"),  # bypass_decap, this host
    ("agent", {"redirect": 1, "agent_encap": 1}, "192.168.77.3", None),  # to a remote bouncer: no stage
    ("agent", {"tx": 1, "arp_reply": 1}, None, "on_xdp_tx"),
    ("transit", {"tx": 1, "scaled": 1}, "192.168.77.2", "on_xdp_scaled_ep"),  # balanced to a backend's host
    ("transit", {"redirect": 1, "scaled": 1}, None, "on_xdp_scaled_ep"),  # delivered to the backend here
    ("agent", {"redirect": 1, "scaled": 1}, "192.168.77.2", "on_xdp_scaled_ep"),  # the agent's host balances
])
def test_the_stage_entered_follows_from_the_counters(program, counted, out_ip, stage):
    assert trace_hop._stage_of(program, counted, out_ip, "192.168.77.1") == stage


@pytest.mark.parametrize("reached,verdict,decisions", [
    (1, DROP, ["returned drop", "not run"]),  # the first returned its own verdict
    (2, DROP, ["passed", "returned drop"]),
    (3, REDIRECT, ["passed", "passed"]),      # both went on; the last found no next function
])
def test_each_functions_decision_follows_from_the_chain_position(reached, verdict, decisions):
    got = [f["decision"] for f in trace_hop._functions(CHAIN, reached, verdict, REDIRECT)]
    assert got == decisions
    assert [f["program"] for f in trace_hop._functions(CHAIN, reached, verdict, REDIRECT)] == [c["name"] for c in CHAIN]


def test_a_full_chain_that_let_the_packet_go_is_not_read_as_a_decision():
    chain = [{"name": "f%d" % i, "prog_id": i} for i in range(8)]
    assert set(f["decision"] for f in trace_hop._functions(chain, 8, REDIRECT, REDIRECT)) == {"passed"}
    last = trace_hop._functions(chain, 8, DROP, REDIRECT)
    assert [f["decision"] for f in last][-2:] == ["passed", "returned drop"]


def test_no_chain_no_decisions():
    assert trace_hop._functions([], 1, REDIRECT, REDIRECT) == []
