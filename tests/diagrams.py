"""What the diagram tests share: the text an SVG shows, the names an
inventory directory declares, read from its YAML files without the model,
and the scripts that make and read inventories (bench/labgen.py,
scripts/demo_lab.py), which are no package."""
import importlib.util
import os
import xml.etree.ElementTree as ET

import yaml

SVG_NS = "{http://www.w3.org/2000/svg}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(path):
    """The Python file at path (relative to the repository) as a module."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def svg_texts(data):
    """Every line of text an SVG shows, its runs of spaces as one (dot
    writes the second of two spaces as a no-break space). Fails unless
    data parses as XML with an svg root."""
    root = ET.fromstring(data)
    assert root.tag == SVG_NS + "svg"
    return [" ".join(t.text.split()) for t in root.iter(SVG_NS + "text") if t.text]


def declared(directory):
    """{hosts: [names], vpcs: [{name, vni, cidr}], networks: [{name, cidr}],
    endpoints: [{name, ip, host}], functions: [names]} of an inventory
    directory laid out like inventories/lab (hosts.yml, group_vars/all.yml)."""
    with open(os.path.join(directory, "hosts.yml")) as f:
        hosts = yaml.safe_load(f)["all"]["children"]["mizar_hosts"]["hosts"]
    with open(os.path.join(directory, "group_vars", "all.yml")) as f:
        tenants = yaml.safe_load(f)
    vpcs = tenants["mizar_vpcs"]
    networks = [n for v in vpcs for n in v["networks"]]
    return {"hosts": list(hosts), "vpcs": vpcs, "networks": networks,
            "endpoints": [e for n in networks for e in n.get("endpoints") or ()],
            "functions": [fn["name"] for fn in tenants.get("mizar_functions") or ()]}


def assert_drawn(texts, directory):
    """Every host, VPC (with VNI and CIDR), network and endpoint (with its
    IP) of the inventory directory is named in the SVG's texts."""
    want = declared(directory)
    lines = set(texts)
    for host in want["hosts"]:
        assert [t for t in lines if t.split(" ")[0] == host], host
    for vpc in want["vpcs"]:
        assert "VPC %s VNI %d %s" % (vpc["name"], vpc["vni"], vpc["cidr"]) in lines
    for net in want["networks"]:
        assert "network %s %s" % (net["name"], net["cidr"]) in lines
    for ep in want["endpoints"]:
        assert "%s %s" % (ep["name"], ep["ip"]) in lines
    for fn in want["functions"]:
        assert fn in lines
