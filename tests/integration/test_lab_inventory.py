"""The shipped lab inventory (inventories/lab): it validates, it has the
features docs/lab.md promises, and its paths are the ones the docs list."""
import json
import os
import subprocess

import pytest

from ansible_collections.mizar.transit.plugins.filter.mizar import inventory_from_hostvars
from ansible_collections.mizar.transit.plugins.module_utils.model.forwarding import ForwardingModel
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import validate

from .conftest import BIN, LAB_INVENTORY

# docs/lab.md, "Paths": (source endpoint, destination) -> hosts visited
PATHS = {
    ("blue/web/blue1", "blue/web/blue2"): ["mzh1", "mzh2"],
    ("blue/web/blue1", "blue/web/blue3"): ["mzh1", "mzh2"],
    ("blue/web/blue2", "blue/web/blue3"): ["mzh2"],
    ("blue/web/blue3", "blue/web/blue2"): ["mzh2"],
    ("blue/web/blue2", "blue/web/blue1"): ["mzh2", "mzh1"],
    ("blue/web/blue3", "blue/web/blue1"): ["mzh2", "mzh1"],
    ("blue/web/blue1", "blue/db/bluedb1"): ["mzh1", "mzh3"],
    ("blue/web/blue2", "blue/db/bluedb1"): ["mzh2", "mzh1", "mzh3"],
    ("blue/web/blue3", "blue/db/bluedb1"): ["mzh2", "mzh1", "mzh3"],
    ("blue/db/bluedb1", "blue/web/blue1"): ["mzh3", "mzh2", "mzh3", "mzh1"],
    ("blue/db/bluedb1", "blue/web/blue2"): ["mzh3", "mzh2"],
    ("blue/db/bluedb1", "blue/web/blue3"): ["mzh3", "mzh2"],
    ("red/apps/red1", "red/apps/red2"): ["mzh1", "mzh3"],
    ("red/apps/red2", "red/apps/red1"): ["mzh3", "mzh1"],
    ("blue/web/blue1", "green/apps/green1"): ["mzh1", "mzh3", "mzh1", "mzh2", "mzh3"],
    ("blue/db/bluedb1", "green/apps/green1"): ["mzh3", "mzh2", "mzh3", "mzh1", "mzh2", "mzh3"],
    ("green/apps/green1", "blue/web/blue1"): ["mzh3", "mzh2", "mzh1", "mzh3", "mzh1"],
    ("green/apps/green1", "blue/db/bluedb1"): ["mzh3", "mzh2", "mzh1", "mzh3"],
    ("blue/web/blue1", "blue/web/bluelog"): ["mzh1", "mzh2"],
    ("blue/web/bluelog", "blue/web/blue1"): ["mzh2", "mzh1"],
}
# docs/lab.md, "The scaled endpoint": to the host whose scaled function
# balances the VIP (it picks a backend there, which the model does not)
SCALED_PATHS = {
    ("blue/web/blue3", "blue/web/web-vip"): ["mzh2", "mzh1"],
    ("blue/db/bluedb1", "blue/web/web-vip"): ["mzh3", "mzh2"],
    ("green/apps/green1", "blue/web/web-vip"): ["mzh3", "mzh2", "mzh1", "mzh3", "mzh1"],
}
# docs/lab.md, "The peering": red is peered with nobody
ISOLATED = {
    ("red/apps/red1", "10.1.1.10"): ("no_hops", ["mzh1", "mzh3"]),
    ("red/apps/red1", "10.0.1.100"): ("no_endpoint", ["mzh1", "mzh3"]),  # blue's VIP: no address of red
}


@pytest.fixture(scope="module")
def hostvars(ansible):
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", LAB_INVENTORY, "--list"],
                         cwd=ansible.workdir, env=ansible.env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    return data["_meta"]["hostvars"], data["mizar_hosts"]["hosts"]


@pytest.fixture(scope="module")
def inventory(hostvars):
    hv, hosts = hostvars
    return inventory_from_hostvars(hv, hosts)


def _endpoints(inventory):
    for vpc in inventory["mizar_vpcs"]:
        for net in vpc["networks"]:
            for ep in net.get("endpoints", []):
                yield vpc, net, ep


def test_it_validates(inventory):
    assert [e.as_dict() for e in validate(inventory)] == []


def test_every_host_is_a_lab_host(hostvars):
    hv, hosts = hostvars
    assert len(hosts) >= 3
    ips = set()
    for h in hosts:
        assert hv[h]["ansible_connection"] == "mizar.transit.netns"
        assert hv[h]["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
        assert hv[h]["mizar_interface"] == "eth0"
        ips.add(hv[h]["mizar_underlay_ip"])
    assert len(ips) == len(hosts) and all(ip.startswith("192.168.77.") for ip in ips)


def test_it_has_what_the_docs_promise(inventory):
    vpcs = dict((v["name"], v) for v in inventory["mizar_vpcs"])
    assert vpcs["blue"]["cidr"] == vpcs["red"]["cidr"]
    assert len(vpcs["blue"]["networks"]) >= 2 and vpcs["blue"]["dividers"]
    colocated = [(n["name"], ep["name"]) for _v, n, ep in _endpoints(inventory) if ep.get("host") in n["bouncers"]]
    assert ("web", "blue1") in colocated
    per_net_host = {}
    for v, n, ep in _endpoints(inventory):
        if ep.get("host"):
            per_net_host.setdefault((v["name"], n["name"], ep["host"]), []).append(ep["name"])
    assert ["blue2", "blue3", "bluelog"] in per_net_host.values()
    hosts_with_endpoints = set(ep["host"] for _v, _n, ep in _endpoints(inventory) if ep.get("host"))
    assert len(hosts_with_endpoints) >= 3


def test_namespace_names_are_unique_in_the_whole_lab(inventory, hostvars):
    _hv, hosts = hostvars
    names = [ep["netns"] for _v, _n, ep in _endpoints(inventory) if ep.get("type") != "scaled"]
    assert all(names), "every lab endpoint lives in a namespace"
    assert len(set(names)) == len(names)
    assert not set(names) & set(hosts)


def test_the_acl_drops_one_listed_flow(inventory):
    fn = inventory["mizar_functions"][0]
    assert (fn["name"], fn["stage"], fn["program"]) == ("acl-blue", "on_xdp_redirect", "acl")
    (rule,) = fn["config"]["rules"]
    assert rule == {"vpc": "blue", "src": "10.0.1.11/32", "dst": "10.0.2.10/32", "protocol": "icmp",
                    "action": "drop"}
    ips = dict((ep["name"], (ep["ip"], ep.get("host"))) for v, _n, ep in _endpoints(inventory) if v["name"] == "blue")
    assert ips["blue2"][0] == "10.0.1.11" and ips["bluedb1"] == ("10.0.2.10", fn["hosts"][0])


def test_red2_is_rate_limited_after_the_acl_in_one_chain(inventory):
    acl, limit = inventory["mizar_functions"][:2]
    assert (limit["name"], limit["stage"], limit["program"], limit["hosts"]) == \
        ("ratelimit-red", acl["stage"], "ratelimit", acl["hosts"])
    assert limit["config"] == {"limits": [{"vpc": "red", "endpoint": "red2", "pps": 200}]}
    hosts = dict((ep["name"], ep["host"]) for v, _n, ep in _endpoints(inventory) if v["name"] == "red")
    assert hosts["red2"] == limit["hosts"][0]


def test_web_vip_is_balanced_over_backends_on_two_hosts(inventory):
    """docs/lab.md, "The scaled endpoint": web-vip in blue/web, backends
    blue1 (mzh1, web's bouncer) and blue2 (mzh2), so the bouncer delivers
    to one itself and sends the other its packets with the backend option;
    the scaled function on every host."""
    eps = dict((ep["name"], ep) for v, _n, ep in _endpoints(inventory) if v["name"] == "blue")
    vip = eps["web-vip"]
    assert (vip["ip"], vip["type"], vip["backends"]) == ("10.0.1.100", "scaled", ["blue1", "blue2"])
    assert [eps[b]["host"] for b in vip["backends"]] == ["mzh1", "mzh2"]
    fn = inventory["mizar_functions"][2]
    assert (fn["name"], fn["stage"], fn["program"], fn.get("hosts")) == ("web-lb", "on_xdp_scaled_ep", "scaled", None)


def test_bluelog_runs_the_flowlog_function(inventory):
    """docs/lab.md, "The flow log": a bypass_decap endpoint of blue/web on
    mzh2 runs flowlog, which logs to a path of the lab's own."""
    eps = dict((ep["name"], ep) for v, _n, ep in _endpoints(inventory) if v["name"] == "blue")
    assert (eps["bluelog"]["host"], eps["bluelog"]["ip"], eps["bluelog"]["bypass_decap"]) == ("mzh2", "10.0.1.30", True)
    assert inventory["mizar_functions"][3] == {
        "name": "flows-blue", "kind": "userspace", "program": "flowlog", "vpc": "blue", "endpoint": "bluelog",
        "config": {"log": "/var/log/mizar/lab-flows-blue.jsonl"}}


def test_blue_and_green_are_peered_apart_from_red(inventory):
    assert inventory["mizar_vpc_peerings"] == [{"name": "blue-green", "vpcs": ["blue", "green"]}]
    model = ForwardingModel(render_inventory(inventory, offline=True))
    for (src, dst), (reason, path) in ISOLATED.items():
        res = model.send(src, dst)
        assert (res.delivered_to, res.drop_reason, res.path) == (None, reason, path), (src, dst, res)


def test_paths_are_the_documented_ones(inventory):
    model = ForwardingModel(render_inventory(inventory, offline=True))
    ips = dict(("%s/%s/%s" % (v["name"], n["name"], ep["name"]), ep["ip"]) for v, n, ep in _endpoints(inventory))
    got = {}
    for (src, dst) in PATHS:
        res = model.send(src, ips[dst])
        assert res.delivered_to == dst and res.drop_reason is None, (src, dst, res)
        got[(src, dst)] = res.path
    assert got == PATHS
    for (src, dst), path in SCALED_PATHS.items():
        res = model.send(src, ips[dst])
        assert (res.delivered_to, res.drop_reason, res.path) == (dst, None, path), (src, dst, res)


def test_the_lab_playbook_accepts_it_in_check_mode(ansible):
    """Against the shipped names, but in check mode: nothing is touched."""
    res = ansible.playbook(LAB_INVENTORY, "mizar.transit.lab", "--check")
    assert res.ok(), res
