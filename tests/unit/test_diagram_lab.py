"""The topology of the shipped lab (inventories/lab) and of a generated
30-host lab (bench/labgen.py), read as Ansible reads them: drawn by the real
dot into an SVG that names every host, VPC, network and endpoint; and the
demo's tenant summary (scripts/demo_lab.py), made from the model, naming
everything in inventories/lab."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import diagram as model_diagram
from ansible_collections.mizar.transit.plugins.module_utils.ops import diagram
from diagrams import assert_drawn, declared, script, svg_texts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "inventories", "lab")


demo_lab = script("scripts/demo_lab.py")
labgen = script("bench/labgen.py")


@pytest.fixture(scope="module")
def lab30(tmp_path_factory):
    return labgen.write(30, str(tmp_path_factory.mktemp("lab30")))


@pytest.mark.parametrize("which", ["lab", "lab30"])
def test_the_svg_names_every_host_vpc_network_and_endpoint(which, request):
    directory = LAB if which == "lab" else request.getfixturevalue("lab30")
    graph = model_diagram.diagram(demo_lab.inventory_data(directory))
    texts = svg_texts(diagram.lay_out(diagram.source(graph), "svg"))
    assert_drawn(texts, directory)


def test_the_readmes_picture_is_the_labs():
    """docs/lab-topology.svg shows what playbooks/diagram.yml draws for
    inventories/lab now (its text; the layout may differ between dot versions)."""
    graph = model_diagram.diagram(demo_lab.inventory_data(LAB))
    with open(os.path.join(ROOT, "docs", "lab-topology.svg"), "rb") as f:
        shipped = f.read()
    assert sorted(svg_texts(shipped)) == sorted(svg_texts(diagram.lay_out(diagram.source(graph), "svg")))


def test_the_30_host_lab_keeps_hosts_and_vpcs_apart(lab30):
    """Legible at 30 hosts: one cluster for the hosts, one per VPC, one per
    network, and each VPC on its own side of the hosts."""
    graph = model_diagram.diagram(demo_lab.inventory_data(lab30))
    ids = [c["id"] for c in graph["clusters"]]
    assert ids == ["vpc/blue", "vpc/red", "hosts", "functions"]
    assert len(graph["clusters"][2]["nodes"]) == 30
    assert [len(c["clusters"]) for c in graph["clusters"][:2]] == [6, 6]
    back = set(e["head"].split("/")[1] for e in graph["edges"] if e["attrs"].get("dir") == "back")
    assert back == {"red"}


def test_the_demo_summary_names_everything_in_the_lab():
    text = demo_lab.tenant_summary()
    want = declared(LAB)
    lines = [line.strip() for line in text.splitlines()]
    for vpc in want["vpcs"]:
        assert [line for line in lines if line.split()[:4] == [vpc["name"], "VNI", str(vpc["vni"]), vpc["cidr"]]], vpc
    for net in want["networks"]:
        bouncers = "bouncer" if len(net["bouncers"]) == 1 else "bouncers"
        assert "%s  %s  %s %s" % (net["name"], net["cidr"], bouncers, ", ".join(net["bouncers"])) in lines, net
    for ep in want["endpoints"]:
        if ep.get("type") == "scaled":  # where it lives: its backends
            backends = [b if isinstance(b, str) else b["name"] for b in ep["backends"]]
            where = ["scaled", "over"] + ", ".join(backends).split()
        else:
            where = ["on", ep["host"]]
        assert [line for line in lines if line.split() == [ep["name"], ep["ip"]] + where], ep["name"]
    for fn in want["functions"]:
        assert [line for line in lines if line.startswith("function %s: " % fn)], fn
    for host in want["hosts"]:
        assert host in text
