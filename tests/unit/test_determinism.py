"""Same inventory, same bytes: whatever the order of hosts, VPCs, networks and endpoints."""
import copy
import random

from ansible_collections.mizar.transit.plugins.module_utils.model.render import dump, render_inventory

from test_render import _multi_network_inventory
from unit_inventory import base


def _shuffled(inv, rng):
    inv = copy.deepcopy(inv)
    names = list(inv["hosts"])
    rng.shuffle(names)
    inv["hosts"] = dict((n, inv["hosts"][n]) for n in names)
    rng.shuffle(inv["mizar_vpcs"])
    for vpc in inv["mizar_vpcs"]:
        rng.shuffle(vpc["networks"])
        for net in vpc["networks"]:
            rng.shuffle(net["endpoints"])
    rng.shuffle(inv["mizar_functions"])
    return inv


def _dumps(inv):
    r = render_inventory(inv)
    return dict((host, dump(r[host])) for host in r)


def test_byte_identical_in_any_order():
    rng = random.Random(20240601)
    for inv in (base(), _multi_network_inventory()):
        reference = _dumps(inv)
        for dummy in range(25):
            assert _dumps(_shuffled(inv, rng)) == reference


def test_bouncer_order_is_the_inventory_order():
    inv = base()
    inv["mizar_vpcs"][0]["networks"][0]["bouncers"] = ["h3", "h2"]
    first = render_inventory(inv)["h1"]["maps"]["agents"]
    inv["mizar_vpcs"][0]["networks"][0]["bouncers"] = ["h2", "h3"]
    second = render_inventory(inv)["h1"]["maps"]["agents"]
    ep1 = [a for a in first if a["name"] == "vpc1/net1/ep1"][0]
    assert ep1["bouncers"] == ["192.168.50.3", "192.168.50.2"]
    assert [a for a in second if a["name"] == "vpc1/net1/ep1"][0]["bouncers"] == ["192.168.50.2", "192.168.50.3"]


def test_dump_is_plain_yaml():
    text = dump(render_inventory(base())["h3"])
    assert "&id" not in text and "!!" not in text
    assert text.startswith("functions:\n")
