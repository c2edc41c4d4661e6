"""plan() of the endpoint backend on recorded states: a fresh host gets
every step, a converged one none, each drifted attribute exactly its step;
the list form plans every endpoint before any step, and exclusive adds the
removal of the endpoints the list leaves out."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint

from states import endpoint_item, endpoint_spec, state, texts

NS, IF = "mzrece0", "mzrecv0"
INNER = "eth0 in %s" % NS


def test_a_fresh_host_gets_every_step_in_order():
    assert texts(endpoint.plan(endpoint_spec(), state("endpoint_fresh"))) == [
        "create network namespace %s" % NS,
        "create veth %s <-> %s" % (IF, INNER),
        "disable IPv6 on %s" % INNER,
        "set the MAC of %s to 02:00:0a:00:01:0a" % INNER,
        "set the MTU of %s to 1450" % INNER,
        "turn transmit checksum offload off on %s" % INNER,
        "set %s up" % INNER,
        "set lo in %s up" % NS,
        "add address 10.0.1.10/24 to %s" % INNER,
        "add the default route in %s via 10.0.1.1 dev eth0" % NS,
        "set the MTU of %s to 1450" % IF,
        "set %s up" % IF,
        "attach mzr_pass (native mode) to %s" % INNER,
        "attach mzr_agent (native mode) to %s" % IF,
    ]


def test_a_converged_host_gets_an_empty_plan():
    assert endpoint.plan(endpoint_spec(), state("endpoint_converged")) == []


def _drifted(edit):
    st = state("endpoint_converged")
    edit(st["endpoints"][0])
    return texts(endpoint.plan(endpoint_spec(), st))


@pytest.mark.parametrize("edit, step", [
    (lambda ep: ep["inner"].update(mtu=1400), "set the MTU of %s to 1450" % INNER),
    (lambda ep: ep["host"].update(mtu=9000), "set the MTU of %s to 1450" % IF),
    (lambda ep: ep["inner"].update(mac="02:00:00:00:00:99"), "set the MAC of %s to 02:00:0a:00:01:0a" % INNER),
    (lambda ep: ep["inner"].update(tx_csum=True), "turn transmit checksum offload off on %s" % INNER),
    (lambda ep: ep["inner"].update(ipv6_off=False), "disable IPv6 on %s" % INNER),
    (lambda ep: ep["inner"].update(up=False), "set %s up" % INNER),
    (lambda ep: ep.update(lo_up=False), "set lo in %s up" % NS),
    (lambda ep: ep["inner"].update(addrs=["10.0.1.10/24", "10.9.9.9/24"]), "remove address 10.9.9.9/24 from %s" % INNER),
    (lambda ep: ep["inner"].update(route={"gateway": "10.0.1.99", "oif": 2}),
     "replace the default route in %s via 10.0.1.1 dev eth0 (was via 10.0.1.99)" % NS),
    (lambda ep: ep.update({"pass": None}), "attach mzr_pass (native mode) to %s" % INNER),
    (lambda ep: ep["agent"].update(mode="generic"),
     "switch mzr_agent on %s from generic to native mode (detach, then attach: %s passes no traffic in between)"
     % (IF, IF)),
    (lambda ep: ep["agent"].update(prog_id=7),
     "replace mzr_agent (id 7) on %s with the datapath's current one (id 41402)" % IF),
])
def test_one_drifted_attribute_gives_exactly_its_step(edit, step):
    assert _drifted(edit) == [step]


def test_a_foreign_program_and_a_missing_datapath_are_refused():
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/ep1: mzrecv0 runs XDP program x"):
        _drifted(lambda ep: ep["agent"].update(ours=False, name="x"))
    st = state("endpoint_fresh")
    st["endpoints"][0]["programs"] = {"agent": None, "pass": None}
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/ep1: pin_dir: no datapath is loaded"):
        endpoint.plan(endpoint_spec(), st)


def test_absent_takes_everything_away_and_then_nothing():
    spec = endpoint_spec(state="absent")
    assert texts(endpoint.plan(spec, state("endpoint_converged"))) == [
        "detach mzr_pass from %s" % INNER, "detach mzr_agent from %s" % IF,
        "delete veth %s (and %s)" % (IF, INNER), "delete network namespace %s" % NS]
    assert endpoint.plan(spec, state("endpoint_fresh")) == []


def _two(second):
    """A list-form state: the recorded converged endpoint, then second's."""
    st = state("endpoint_converged")
    st["endpoints"].append(state(second)["endpoints"][0])
    return st


TWO = [endpoint_item(), endpoint_item(name="blue/web/ep2", iface="mzrecv1", netns="mzrece1", ip="10.0.1.11",
                                      mac="02:00:0a:00:01:0b")]


def test_the_list_form_plans_the_endpoints_that_need_it_and_names_them():
    steps = texts(endpoint.plan(endpoint_spec(items=TWO), _two("endpoint_fresh")))
    assert steps[0] == "blue/web/ep2: create network namespace mzrece1"
    assert all(s.startswith("blue/web/ep2: ") for s in steps) and len(steps) == 14
    assert endpoint.plan(endpoint_spec(items=TWO[:1]), state("endpoint_converged")) == []


def test_a_refusal_of_one_endpoint_comes_before_any_step():
    st = _two("endpoint_converged")
    st["endpoints"][1]["host"]["kind"] = "dummy"
    st["endpoints"][1]["paired"] = False
    st["endpoints"][0]["inner"]["mtu"] = 1400  # the first one has work: it must not be planned alone
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/ep2 \(endpoints\[1\]\): iface: mzrecv1 "
                                                     r"exists on this host and is not a veth"):
        endpoint.plan(endpoint_spec(items=TWO), st)


def test_exclusive_removes_the_served_endpoints_the_list_leaves_out():
    st = state("endpoint_converged")
    st["unlisted"] = [{"name": "mzold", "iface": "mzold", "netns": None,
                       "state": dict(state("endpoint_fresh")["endpoints"][0],
                                     agent={"mode": "native", "name": "mzr_agent", "ours": True, "prog_id": 41402},
                                     host={"index": 9, "kind": "veth", "mac": "02:00:00:00:00:09", "mtu": 1450,
                                           "peer_index": 3, "up": True},
                                     links={"agent": True, "pass": False})}]
    assert endpoint.plan(endpoint_spec(items=TWO[:1]), st) == []  # reported, not removed
    assert texts(endpoint.plan(endpoint_spec(items=TWO[:1], exclusive=True), st)) == [
        "mzold: detach mzr_agent from mzold"]


@pytest.mark.parametrize("field, other", [("iface", dict(iface="mzrecv0")), ("netns", dict(netns="mzrece0")),
                                          ("name", dict(name="blue/web/ep1"))])
def test_two_items_may_not_share_a_name_interface_or_namespace(field, other):
    items = [endpoint_item(), dict(TWO[1], **other)]
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/ep\d \(endpoints\[1\]\): %s: .* is "
                                                     r"endpoints\[0\]'s %s too" % (field, field)):
        endpoint_spec(items=items)


def test_the_list_absent_and_exclusive_removes_the_listed_and_every_other_served_endpoint():
    """What teardown.yml asks for in one call per host: the inventory's
    endpoints (the list) removed, and every other endpoint the datapath
    serves with them; once gone, the same call plans nothing."""
    st = state("endpoint_converged")
    st["unlisted"] = [{"name": "mzrecv1", "iface": "mzrecv1", "netns": "mzrece1",
                       "state": state("endpoint_converged")["endpoints"][0]}]
    spec = endpoint_spec(items=TWO[:1], exclusive=True, state="absent")
    removal = ["detach mzr_pass from eth0 in %s", "detach mzr_agent from %s", "delete veth %s (and eth0 in %s)",
               "delete network namespace %s"]
    assert texts(endpoint.plan(spec, st)) == (
        ["blue/web/ep1: " + s % a for s, a in zip(removal, (NS, IF, (IF, NS), NS))]
        + ["mzrecv1: " + s % a for s, a in zip(removal, ("mzrece1", "mzrecv1", ("mzrecv1", "mzrece1"), "mzrece1"))])
    assert endpoint.plan(spec, state("endpoint_fresh")) == []


# ---------------------------------------------------------------- a backend of scaled endpoints (direct server return)


def test_a_backend_gets_its_vips_on_lo_and_arp_kept_to_eth0():
    spec = endpoint_spec(vips=["10.0.1.100", "10.0.1.99"])
    assert [ep.vips for ep in spec.endpoints] == [["10.0.1.99/32", "10.0.1.100/32"]]
    assert texts(endpoint.plan(spec, state("endpoint_converged"))) == [
        "set the MTU of %s to 1442" % INNER,  # room for the option: 1500 - 50 - 8
        "set arp_ignore of eth0 in %s to 1" % NS, "set arp_announce of eth0 in %s to 2" % NS,
        "add VIP 10.0.1.99/32 to lo in %s" % NS, "add VIP 10.0.1.100/32 to lo in %s" % NS,
        "set the MTU of %s to 1442" % IF]
    st = state("endpoint_converged")
    st["endpoints"][0].update(lo_vips=["10.0.1.99/32", "10.0.1.100/32"])
    st["endpoints"][0]["inner"].update(arp=("1", "2"), mtu=1442)
    st["endpoints"][0]["host"].update(mtu=1442)
    assert endpoint.plan(spec, st) == []
    # a VIP it no longer backs leaves lo; the ARP settings stay
    assert texts(endpoint.plan(endpoint_spec(vips=["10.0.1.100"]), st)) == ["remove VIP 10.0.1.99/32 from lo in %s" % NS]
    assert texts(endpoint.plan(endpoint_spec(), st)) == [
        "set the MTU of %s to 1450" % INNER, "remove VIP 10.0.1.99/32 from lo in %s" % NS,
        "remove VIP 10.0.1.100/32 from lo in %s" % NS, "set the MTU of %s to 1450" % IF]


@pytest.mark.parametrize("vips, problem", [
    (["10.0.1.300"], r"vips\[0\]: "),
    (["10.0.1.10"], r"vips\[0\]: 10.0.1.10 is the endpoint's own address"),
    (["10.0.1.99", "10.0.1.99"], r"vips\[1\]: 10.0.1.99 is listed twice"),
])
def test_bad_vips_are_refused_naming_the_item(vips, problem):
    with pytest.raises(endpoint.EndpointError, match=r"^endpoint blue/web/ep1: " + problem):
        endpoint_spec(vips=vips)


def test_a_backend_leaves_room_for_the_scaled_functions_option():
    assert endpoint.max_mtu(1500) == 1450 and endpoint.max_mtu(1500, backend=True) == 1442
    assert endpoint.max_mtu(9000, bypass_decap=True, backend=True) == 9000
    assert [ep.mtu for ep in endpoint_spec(vips=["10.0.1.100"]).endpoints] == [1442]
    with pytest.raises(endpoint.EndpointError, match=r"mtu: 1450 is above 1442, .* and 8 of the scaled function's option"):
        ep = endpoint_spec(vips=["10.0.1.100"], mtu=1450).endpoints[0]
        ep.resolve_mtu(1500)
