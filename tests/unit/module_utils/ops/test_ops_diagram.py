"""ops/diagram.py, the diagram module's backend, with the real Graphviz
dot: the SVG opens in an XML parser and names what the graph holds, a
re-run writes nothing, check mode writes nothing, a graph or a path that
cannot work is refused naming the item, a missing dot says what to install."""
import os

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import diagram as model_diagram
from ansible_collections.mizar.transit.plugins.module_utils.ops import diagram, outcome
from diagrams import svg_texts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def base():
    """Three hosts, two VPCs on the same addresses, a scaled endpoint with its function, an ACL on every host."""
    hosts = dict(("h%d" % n, {"mizar_interface": "eth0", "mizar_underlay_ip": "192.168.50.%d" % n,
                              "mizar_underlay_mac": "02:00:00:00:00:%02x" % n}) for n in (1, 2, 3))
    return {"hosts": hosts, "mizar_vpcs": [
        {"name": "vpc1", "vni": 100, "cidr": "10.1.0.0/16", "dividers": ["h3"], "networks": [
            {"name": "net1", "cidr": "10.1.0.0/24", "bouncers": ["h3"], "endpoints": [
                {"name": "ep1", "ip": "10.1.0.5", "host": "h1", "netns": "ep1"},
                {"name": "lb", "ip": "10.1.0.7", "type": "scaled", "backends": ["ep1"]}]},
            {"name": "net2", "cidr": "10.1.1.0/24", "bouncers": ["h2"], "endpoints": [
                {"name": "ep3", "ip": "10.1.1.5", "host": "h1", "netns": "ep3"}]}]},
        {"name": "vpc2", "vni": 200, "cidr": "10.1.0.0/16", "networks": [
            {"name": "net1", "cidr": "10.1.0.0/24", "bouncers": ["h1"], "endpoints": [
                {"name": "other", "ip": "10.1.0.5", "host": "h2", "netns": "vpc2-other"}]}]}],
        "mizar_functions": [{"name": "acl1", "stage": "on_xdp_redirect", "program": "acl", "config": {"rules": [
            {"vpc": "vpc1", "dst": "10.1.1.0/24", "protocol": "tcp", "port": 22, "action": "drop"}]}},
            {"name": "lb1", "stage": "on_xdp_scaled_ep", "program": "scaled"}]}


def params(tmp_path, graph=None, png=False):
    return {"graph": graph if graph is not None else model_diagram.diagram(base()),
            "svg": str(tmp_path / "out" / "topology.svg"), "png": str(tmp_path / "out" / "topology.png") if png else None}


def test_draws_an_svg_that_names_every_host_vpc_and_endpoint(tmp_path):
    result = outcome.ensure(diagram, params(tmp_path), diff=True)
    svg = tmp_path / "out" / "topology.svg"
    assert result["changed"] and result["actions"] == ["write %s" % svg] and result["written"] == [str(svg)]
    assert result["png"] is None and not (tmp_path / "out" / "topology.png").exists()
    texts = svg_texts(svg.read_bytes())
    for line in ("h1 192.168.50.1", "h3 192.168.50.3", "divider of vpc1", "VPC vpc1 VNI 100 10.1.0.0/16",
                 "VPC vpc2 VNI 200 10.1.0.0/16", "network net2 10.1.1.0/24", "ep1 10.1.0.5", "lb 10.1.0.7",
                 "other 10.1.0.5", "acl1", "acl at on_xdp_redirect"):
        assert line in texts
    assert oct(svg.stat().st_mode & 0o777) == "0o644"
    assert result["diff"]["before"] == "" and result["diff"]["after"] == svg.read_text()
    assert result["diff"]["after_header"] == "%s (after)" % svg


def test_a_rerun_writes_nothing(tmp_path):
    assert outcome.ensure(diagram, params(tmp_path, png=True))["changed"]
    svg = tmp_path / "out" / "topology.svg"
    before = os.stat(str(svg)).st_mtime_ns, os.stat(str(tmp_path / "out" / "topology.png")).st_mtime_ns
    again = outcome.ensure(diagram, params(tmp_path, png=True))
    assert not again["changed"] and again["actions"] == [] and again["written"] == []
    assert (os.stat(str(svg)).st_mtime_ns, os.stat(str(tmp_path / "out" / "topology.png")).st_mtime_ns) == before


def test_png_when_asked(tmp_path):
    result = outcome.ensure(diagram, params(tmp_path, png=True))
    png = tmp_path / "out" / "topology.png"
    assert result["written"] == [str(png), str(tmp_path / "out" / "topology.svg")]
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_a_changed_inventory_updates_the_picture(tmp_path):
    outcome.ensure(diagram, params(tmp_path))
    inv = base()
    inv["mizar_vpcs"][1]["networks"][0]["endpoints"].append(
        {"name": "newcomer", "ip": "10.1.0.9", "host": "h3", "netns": "newcomer"})
    check = outcome.ensure(diagram, params(tmp_path, graph=model_diagram.diagram(inv)), check_mode=True, diff=True)
    svg = tmp_path / "out" / "topology.svg"
    assert check["changed"] and check["actions"] == ["update %s" % svg]
    assert "newcomer 10.1.0.9" not in svg_texts(svg.read_bytes())  # check mode wrote nothing
    assert "newcomer" in check["diff"]["after"] and "newcomer" not in check["diff"]["before"]
    assert outcome.ensure(diagram, params(tmp_path, graph=model_diagram.diagram(inv)))["changed"]
    assert "newcomer 10.1.0.9" in svg_texts(svg.read_bytes())
    assert [f for f in os.listdir(str(tmp_path / "out")) if f.startswith(".")] == []  # no temporary file left


def test_check_mode_writes_nothing(tmp_path):
    result = outcome.ensure(diagram, params(tmp_path, png=True), check_mode=True)
    assert result["changed"] and len(result["actions"]) == 2
    assert not (tmp_path / "out").exists()


def test_labels_are_taken_literally():
    graph = {"nodes": [{"id": "a", "label": ["<b>not html</b>", "back\\slash", 'a "quote"']}]}
    text = diagram.lay_out(diagram.source(graph), "svg").decode()
    assert svg_texts(text) == ["<b>not html</b>", "back\\slash", 'a "quote"']


@pytest.mark.parametrize("graph, msg", [
    ([], "graph must be a mapping, the result of the filter mizar.transit.diagram"),
    ({"nodes": [{"label": ["x"]}]}, "graph: graph.nodes[0].id is required"),
    ({"clusters": [{"id": "c", "nodes": [{"id": "a", "attrs": ["x"]}]}]},
     "graph: graph.clusters[0].nodes[0].attrs must be a mapping of Graphviz attributes"),
    ({"edges": [{"tail": "a"}]}, "graph: graph.edges[0].head is required"),
    ({"attrs": {"rankdir": "LR"}, "nodes": [{"id": "a", "attrs": {"shape": "no-such-shape"}}],
      "edges": [{"tail": "a", "head": "a", "attrs": {"style": "no-such-style"}}]}, None),
])
def test_a_graph_that_cannot_be_drawn_is_refused_naming_the_item(tmp_path, graph, msg):
    result = outcome.ensure(diagram, params(tmp_path, graph=graph))
    if msg is None:  # dot warns about unknown attributes and draws anyway
        assert result["changed"]
        return
    assert result["failed"] and result["msg"] == msg
    assert not (tmp_path / "out").exists()


def test_paths_that_cannot_work_are_refused(tmp_path):
    p = params(tmp_path)
    p["png"] = p["svg"]
    result = outcome.ensure(diagram, p)
    assert result["failed"] and "is the SVG's path too" in result["msg"]
    (tmp_path / "out" / "topology.svg").mkdir(parents=True)
    result = outcome.ensure(diagram, params(tmp_path))
    assert result["failed"] and result["msg"] == "%s is a directory: give the path of a file" % (
        tmp_path / "out" / "topology.svg")


def test_a_missing_dot_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = outcome.ensure(diagram, params(tmp_path))
    assert result["failed"]
    assert result["msg"].startswith("drawing the topology needs Graphviz's dot (apt-get install graphviz")
    assert not (tmp_path / "out").exists()


def test_what_dot_refuses_fails_with_dots_words(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise diagram.graphviz.CalledProcessError(1, ["dot"], stderr=b"Error: <stdin>: syntax error in line 3\n")

    monkeypatch.setattr(diagram.graphviz, "pipe", refuse)
    result = outcome.ensure(diagram, params(tmp_path))
    assert result["failed"] and result["msg"] == "dot could not lay the topology out as svg: Error: <stdin>: syntax error in line 3"
    assert not (tmp_path / "out").exists()


def test_a_missing_python_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(diagram, "HAS_GRAPHVIZ", False)
    monkeypatch.setattr(diagram, "GRAPHVIZ_IMPORT_ERROR", ImportError("No module named 'graphviz'"))
    result = outcome.ensure(diagram, params(tmp_path))
    assert result["failed"] and result["msg"] == (
        "drawing the topology needs the Python package graphviz (pip install graphviz; requirements-test.txt pins "
        "it): No module named 'graphviz'")
