"""model/diagram.py: the topology graph and the tenant summary of an
inventory, pure (no Graphviz): what each cluster, node and arrow says."""
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import diagram
from ansible_collections.mizar.transit.plugins.module_utils.model.errors import InvalidInventory
from unit_inventory import base

from .test_peering import peered


def clusters(graph):
    """{id: cluster} of every cluster, nested ones included."""
    found = {}
    todo = list(graph["clusters"])
    while todo:
        c = todo.pop()
        found[c["id"]] = c
        todo += c["clusters"]
    return found


def nodes(graph):
    """{id: node} of every node, in clusters or not."""
    found = dict((n["id"], n) for n in graph["nodes"])
    for c in clusters(graph).values():
        found.update((n["id"], n) for n in c["nodes"])
    return found


def arrows(graph):
    """{(from, to)}: the edges as drawn (an edge with dir=back points at its tail)."""
    return set((e["head"], e["tail"]) if e["attrs"].get("dir") == "back" else (e["tail"], e["head"])
               for e in graph["edges"])


def with_peer():
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"].append(
        {"name": "ext1", "ip": "10.1.0.20", "tunnel_peer": "vtep1", "mac": "02:00:0a:01:00:14"})
    inv["mizar_tunnel_peers"] = [{"name": "vtep1", "ip": "192.168.60.7", "mac": "02:00:00:00:06:07"}]
    return inv


def test_vpcs_and_networks_are_nested_clusters_with_their_vni_cidr_and_roles():
    g = diagram.diagram(base())
    found = clusters(g)
    vpc1, vpc2 = found["vpc/vpc1"], found["vpc/vpc2"]
    assert vpc1["label"] == ["VPC vpc1   VNI 100   10.1.0.0/16", "dividers h3"]
    assert vpc2["label"] == ["VPC vpc2   VNI 200   10.1.0.0/16", "same addresses as vpc1, kept apart by VNI"]
    assert [c["id"] for c in vpc1["clusters"]] == ["net/vpc1/net1", "net/vpc1/net2"]
    assert found["net/vpc1/net1"]["label"] == ["network net1   10.1.0.0/24", "bouncers h3"]
    endpoints = [n["id"] for n in found["net/vpc1/net1"]["nodes"]]
    assert endpoints == ["ep/vpc1/net1/ep1", "ep/vpc1/net1/ep2", "ep/vpc1/net1/lb"]
    assert vpc1["attrs"]["fillcolor"] != vpc2["attrs"]["fillcolor"]


def test_hosts_carry_their_address_and_roles():
    g = diagram.diagram(base())
    found = nodes(g)
    assert found["host/h1"]["label"] == ["h1  192.168.50.1", "bouncer of vpc2/net1"]
    assert found["host/h2"]["label"] == ["h2  192.168.50.2", "bouncer of vpc1/net2"]
    assert found["host/h3"]["label"] == ["h3  192.168.50.3", "bouncer of vpc1/net1", "divider of vpc1"]
    assert [n["id"] for n in clusters(g)["hosts"]["nodes"]] == ["host/h1", "host/h2", "host/h3"]
    assert clusters(g)["hosts"]["attrs"]["rank"] == "same"


def test_a_host_whose_address_comes_from_facts_says_so():
    inv = base()
    del inv["hosts"]["h2"]["mizar_underlay_ip"]
    assert nodes(diagram.diagram(inv))["host/h2"]["label"][0] == "h2  (address from facts)"


def test_every_endpoint_points_at_its_host_and_a_scaled_one_at_its_backends():
    g = diagram.diagram(base())
    assert nodes(g)["ep/vpc1/net1/lb"]["label"] == ["lb  10.1.0.7", "scaled"]
    assert nodes(g)["ep/vpc1/net1/ep1"]["label"] == ["ep1  10.1.0.5"]
    drawn = arrows(g)
    for ep, host in (("vpc1/net1/ep1", "h1"), ("vpc1/net1/ep2", "h2"), ("vpc1/net2/ep3", "h1"),
                     ("vpc2/net1/other", "h2")):
        assert ("ep/" + ep, "host/" + host) in drawn
    assert ("ep/vpc1/net1/lb", "ep/vpc1/net1/ep1") in drawn and ("ep/vpc1/net1/lb", "ep/vpc1/net1/ep2") in drawn
    assert not [a for a in drawn if a[0] == "ep/vpc1/net1/lb" and a[1].startswith("host/")]


def test_a_bypass_decap_endpoint_says_so_and_points_at_its_host():
    inv = base()
    inv["mizar_vpcs"][0]["networks"][1]["endpoints"][0]["bypass_decap"] = True
    g = diagram.diagram(inv)
    assert nodes(g)["ep/vpc1/net2/ep3"]["label"] == ["ep3  10.1.1.5", "bypass_decap"]
    assert nodes(g)["ep/vpc1/net1/ep2"]["label"] == ["ep2  10.1.0.6"]
    assert ("ep/vpc1/net2/ep3", "host/h1") in arrows(g)


def test_vpcs_alternate_sides_of_the_hosts():
    """The second VPC's arrows are laid out from the host, drawn back at it,
    so dot puts that VPC right of the hosts."""
    g = diagram.diagram(base())
    back = [e for e in g["edges"] if e["attrs"].get("dir") == "back"]
    assert [(e["tail"], e["head"]) for e in back] == [("host/h2", "ep/vpc2/net1/other")]


def test_functions_link_to_their_hosts_or_say_every_host():
    g = diagram.diagram(base())
    assert nodes(g)["fn/acl1"]["label"] == ["acl1", "acl at on_xdp_redirect", "on every transit host"]
    assert not [e for e in g["edges"] if e["tail"] == "fn/acl1"]
    inv = base()
    inv["mizar_functions"][0]["hosts"] = ["h1", "h3"]
    g = diagram.diagram(inv)
    assert nodes(g)["fn/acl1"]["label"] == ["acl1", "acl at on_xdp_redirect"]
    links = [(e["tail"], e["head"]) for e in g["edges"] if e["tail"] == "fn/acl1"]
    assert links == [("fn/acl1", "host/h1"), ("fn/acl1", "host/h3")]


def test_no_functions_no_functions_cluster():
    inv = base()
    inv["mizar_functions"] = []
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"].pop(2)  # lb, which needs its function
    assert "functions" not in clusters(diagram.diagram(inv))


def test_an_endpoint_behind_a_tunnel_peer_points_at_the_peer():
    g = diagram.diagram(with_peer())
    assert nodes(g)["peer/vtep1"]["label"] == ["vtep1", "192.168.60.7", "Geneve tunnel peer"]
    assert ("ep/vpc1/net1/ext1", "peer/vtep1") in arrows(g)
    assert "peers" in clusters(g) and "peers" not in clusters(diagram.diagram(base()))


def test_long_lists_wrap_a_few_names_to_a_line():
    assert diagram.wrapped("bouncers", []) == []
    assert diagram.wrapped("bouncers", ["h1"]) == ["bouncers h1"]
    assert diagram.wrapped("dividers", ["h%d" % i for i in range(1, 10)]) == [
        "dividers h1, h2, h3, h4,", "    h5, h6, h7, h8,", "    h9"]


def test_the_same_inventory_gives_the_same_graph():
    assert diagram.diagram(base()) == diagram.diagram(base())


def test_an_invalid_inventory_raises_every_error():
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"][0]["host"] = "h9"
    inv["mizar_vpcs"][1]["vni"] = 100
    with pytest.raises(InvalidInventory) as e:
        diagram.diagram(inv)
    paths = [x.path for x in e.value.errors]
    assert "mizar_vpcs[0].networks[0].endpoints[0].host" in paths and "mizar_vpcs[1].vni" in paths
    with pytest.raises(InvalidInventory):
        diagram.summary(inv)


def test_summary_names_every_vpc_network_endpoint_and_function():
    """Function settings as validation leaves them: defaults filled in, keys in order."""
    lines = diagram.summary(with_peer())
    assert lines == [
        "vpc1  VNI 100  10.1.0.0/16  divider h3",
        "  net1  10.1.0.0/24  bouncer h3",
        "    ep1    10.1.0.5        on h1",
        "    ep2    10.1.0.6        on h2",
        "    lb     10.1.0.7        scaled over ep1, ep2",
        "    ext1   10.1.0.20       behind tunnel peer vtep1",
        "  net2  10.1.1.0/24  bouncer h2",
        "    ep3    10.1.1.5        on h1",
        "vpc2  VNI 200  10.1.0.0/16  (the same addresses as vpc1)",
        "  net1  10.1.0.0/24  bouncer h1",
        "    other  10.1.0.5        on h2",
        "function acl1: acl at on_xdp_redirect on every host",
        "  rules: action drop, dst 10.1.1.0/24, port 22, protocol tcp, src 0.0.0.0/0, vpc vpc1",
        "function lb1: scaled at on_xdp_scaled_ep on every host",
    ]


def test_summary_names_the_endpoint_of_an_address_in_a_config():
    inv = base()
    inv["mizar_functions"][0]["hosts"] = ["h3"]
    inv["mizar_functions"][0]["config"]["rules"].append(
        {"vpc": "vpc1", "src": "10.1.0.6/32", "dst": "10.1.1.5/32", "protocol": "icmp", "action": "drop"})
    lines = diagram.summary(inv)
    assert lines[-4] == "function acl1: acl at on_xdp_redirect on h3"
    assert lines[-2] == "  rules: action drop, dst 10.1.1.5/32 (ep3), protocol icmp, src 10.1.0.6/32 (ep2), vpc vpc1"


def test_peered_vpcs_name_each_other_in_the_picture_and_the_summary():
    g = diagram.diagram(peered())
    found = clusters(g)
    assert found["vpc/vpc1"]["label"] == ["VPC vpc1   VNI 100   10.1.0.0/16", "dividers h3",
                                          "peered with red (peering vpc1-red)"]
    assert found["vpc/red"]["label"][2] == "peered with vpc1 (peering vpc1-red)"
    assert "peered with" not in " ".join(found["vpc/vpc2"]["label"])
    lines = diagram.summary(peered())
    assert [line for line in lines if "peered with" in line] == [
        "vpc1  VNI 100  10.1.0.0/16  divider h3  peered with red (peering vpc1-red)",
        "red  VNI 300  10.2.0.0/16  divider h2  peered with vpc1 (peering vpc1-red)"]
