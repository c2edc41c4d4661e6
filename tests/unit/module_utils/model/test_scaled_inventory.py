"""Scaled endpoints in the inventory: weighted backends, the scaled function
where their packets enter its stage, and what each host's instance of it
is given (the rendering)."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model import maglev
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import format_errors
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from unit_inventory import assert_one_defect, base

LB = "mizar_vpcs[0].networks[0].endpoints[2]"


def lb(inv):
    return inv["mizar_vpcs"][0]["networks"][0]["endpoints"][2]


def scaled_config(r, host):
    fns = [f for f in r[host]["functions"] if f["program"] == "scaled"]
    assert len(fns) == 1, r[host]["functions"]
    return fns[0]["config"]


def test_schema_ships():
    spec = fnreg.default_registry().get("scaled")
    assert spec.stages == ("on_xdp_scaled_ep",)
    assert spec.source.endswith("bpf/functions/scaled.bpf.c")
    assert spec.options == {}


def test_each_host_holding_the_endpoint_gets_its_ring_size_and_weighted_backends():
    inv = base()
    lb(inv)["backends"] = [{"name": "ep1", "weight": 3}, "ep2"]
    r = render_inventory(inv)
    want = {"endpoints": [{"vpc": "vpc1", "ip": "10.1.0.7", "name": "vpc1/net1/lb", "ring_size": 2039, "backends": [
        {"name": "ep1", "ip": "10.1.0.5", "weight": 3}, {"name": "ep2", "ip": "10.1.0.6", "weight": 1}]}]}
    # h3 balances (the bouncer of net1); h1 and h2 host ep1 and ep2, and deliver to them
    for host in ("h1", "h2", "h3"):
        assert scaled_config(r, host) == want, host
        assert "vpc1/net1/lb" in [e["name"] for e in r[host]["maps"]["endpoints"]], host
        assert r[host]["vnis"]["vpc1"] == 100


def test_a_host_holding_no_scaled_endpoint_gets_an_empty_list():
    inv = base()
    inv["hosts"]["h4"] = dict(inv["hosts"]["h1"], mizar_underlay_ip="192.168.50.4", mizar_underlay_mac="02:00:00:00:00:04")
    r = render_inventory(inv)
    assert scaled_config(r, "h4") == {"endpoints": []}


def test_draining_keeps_the_ring_size_and_all_drained_has_no_ring():
    inv = base()
    lb(inv)["backends"] = ["ep1", {"name": "ep2", "weight": 0}]
    r = render_inventory(inv)
    ep = scaled_config(r, "h3")["endpoints"][0]
    assert ep["ring_size"] == 2039  # as with both live: ep1 keeps its slots, ep2's go to ep1
    assert [b["weight"] for b in ep["backends"]] == [1, 0]
    # every backend drained is valid: established flows finish, no new flow starts
    lb(inv)["backends"] = [{"name": "ep1", "weight": 0}, {"name": "ep2", "weight": 0}]
    assert validate(inv) == []
    ep = scaled_config(render_inventory(inv), "h3")["endpoints"][0]
    assert ep["ring_size"] == 0


def test_ring_sizes_follow_the_backends():
    assert maglev.endpoint_ring_size([1] * 2) == 2039
    assert maglev.endpoint_ring_size([0, 0]) == 0
    assert maglev.endpoint_ring_size([1] * 40) == 65521
    assert maglev.endpoint_ring_size([1] * 4096) == 131071
    assert maglev.ring_chunks([1, 1]) == 8  # 2039 slots in chunks of 256


def _on(inv, hosts):
    inv["mizar_functions"][1]["hosts"] = hosts


@pytest.mark.parametrize("mutate,path,pattern", [
    (lambda inv: lb(inv).update(backends=[{"name": "ep1", "weight": "heavy"}]), LB + ".backends[0].weight",
     r"weight must be an integer 0\.\.65535 \(0 drains the backend\), not a string"),
    (lambda inv: lb(inv).update(backends=[{"name": "ep1", "weight": True}]), LB + ".backends[0].weight",
     r"weight must be an integer"),
    (lambda inv: lb(inv).update(backends=["ep1", {"name": "ep2", "weight": 70000}]), LB + ".backends[1].weight",
     r"weight 70000 is out of range: 0\.\.65535"),
    (lambda inv: lb(inv).update(backends=["ep1", {"name": "ep2", "weight": -1}]), LB + ".backends[1].weight",
     r"weight -1 is out of range"),
    (lambda inv: lb(inv).update(backends=[{"name": "ep1", "wieght": 2}]), LB + ".backends[0].wieght",
     r"unknown key 'wieght' of a backend \(did you mean \"weight\"\?\)"),
    (lambda inv: lb(inv).update(backends=[{"weight": 2}]), LB + ".backends[0].name", r"name is required"),
    (lambda inv: lb(inv).update(backends=["ep1", {"name": "ep1", "weight": 2}]), LB + ".backends[1]",
     r"backend 'ep1' is listed twice: list each backend once \(give it one weight\)"),
    (lambda inv: lb(inv).update(backends=[7]), LB + ".backends[0]",
     r"a backend is the name of an endpoint of the same VPC, or \{name, weight\}, not an integer"),
    (lambda inv: inv["mizar_vpcs"][0]["networks"][0]["endpoints"][0].update(bypass_decap=True), LB + ".backends[0]",
     r"backend 'ep1' is a bypass_decap endpoint"),
    (lambda inv: _on(inv, ["h3"]), LB,
     r"packets to scaled endpoint vpc1/net1/lb enter stage on_xdp_scaled_ep on h1, h2, which run no function "
     r"'scaled' there: declare one in mizar_functions \(program: scaled, stage: on_xdp_scaled_ep\) on h1, h2"),
    (lambda inv: inv["mizar_functions"][1].update(stage="on_xdp_tx"), "mizar_functions[1].stage",
     r"function scaled cannot run at on_xdp_tx: it runs at on_xdp_scaled_ep"),
    (lambda inv: inv["mizar_functions"][1].update(config={"rings": 3}), "mizar_functions[1].config.rings",
     r"unknown setting 'rings'"),
])
def test_one_defect(mutate, path, pattern):
    inv = base()
    if path == "mizar_functions[1].stage":  # the wrong stage leaves lb without its function too
        mutate(inv)
        errors = validate(inv)
        assert [e.path for e in errors] == [path, LB], format_errors(errors)
        return
    assert_one_defect(inv, mutate, path, pattern)


def test_the_ring_pool_must_hold_a_hosts_rings(monkeypatch):
    monkeypatch.setattr(maglev, "POOL_CHUNKS", 15)  # lb's ring takes 8 chunks, and 8 more while replaced
    errors = validate(base())
    assert [e.path for e in errors] == ["hostvars[h1]", "hostvars[h2]", "hostvars[h3]"]
    assert ("host h3 would hold the Maglev rings of 1 scaled endpoints, 16 chunks of 256 slots with the room to "
            "replace the largest, more than the 15 of the scaled function's ring pool") in errors[2].message


def test_backends_get_the_vips_they_serve_on_their_lo():
    """Direct server return: each backend's local endpoint lists the VIPs it
    replies from; an endpoint that backs nothing has no vips."""
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"].append(
        {"name": "lb2", "ip": "10.1.0.8", "type": "scaled", "backends": ["ep1"]})
    r = render_inventory(inv)
    local = dict((e["name"], e) for h in r for e in r[h]["local_endpoints"])
    assert local["vpc1/net1/ep1"]["vips"] == ["10.1.0.7", "10.1.0.8"]
    assert local["vpc1/net1/ep2"]["vips"] == ["10.1.0.7"]
    assert "vips" not in local["vpc1/net2/ep3"]
