"""The ratelimit function's config (bpf/functions/ratelimit.yml) through the
validator: normalized (units to numbers, endpoints to addresses), and every
defect named by function, item and field."""
import re

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.model import functions as fnreg
from ansible_collections.mizar.transit.plugins.module_utils.model.render import render_inventory
from ansible_collections.mizar.transit.plugins.module_utils.model.validate import check, validate

from unit_inventory import base


def inventory(*limits):
    """The base inventory, its ACL on h1 only and a ratelimit on h2."""
    inv = base()
    inv["mizar_functions"][0]["hosts"] = ["h1"]
    inv["mizar_functions"].insert(1, {"name": "rl", "stage": "on_xdp_redirect", "program": "ratelimit", "hosts": ["h2"],
                                      "config": {"limits": list(limits)}})
    return inv


def config(*limits):
    model, dummy = check(inventory(*limits))
    return [fn for fn in model.functions if fn.name == "rl"][0].config


def test_schema_ships():
    spec = fnreg.default_registry().get("ratelimit")
    assert spec.stages == ("on_xdp_redirect",)
    assert spec.source.endswith("bpf/functions/ratelimit.bpf.c")
    assert spec.options["limits"]["max_items"] == 256


def test_config_normalized():
    got = config({"vpc": "vpc1", "endpoint": "ep2", "bps": "1.5mbit"},
                 {"vpc": "vpc1", "ip": "10.1.1.5", "pps": 1000, "burst": "0.5s"},
                 {"vpc": "vpc2", "pps": 20, "bps": 64000, "burst": "250us"})
    assert got == {"limits": [
        {"vpc": "vpc1", "endpoint": "ep2", "ip": "10.1.0.6", "bps": 1500000, "burst": "200ms"},
        {"vpc": "vpc1", "ip": "10.1.1.5", "pps": 1000, "burst": "500ms"},
        {"vpc": "vpc2", "pps": 20, "bps": 64000, "burst": "250us"},
    ]}


def test_rendered_per_host_with_addresses():
    r = render_inventory(inventory({"vpc": "vpc1", "endpoint": "ep2", "bps": "10mbit"}), offline=True)
    fns = dict((h, [f["name"] for f in r[h]["functions"]]) for h in r)
    assert fns == {"h1": ["acl1", "lb1"], "h2": ["rl", "lb1"], "h3": ["lb1"]}
    rl = r["h2"]["functions"][0]
    assert (rl["program"], rl["shipped"]) == ("ratelimit", True)
    assert rl["object"] == "/var/lib/mizar/bpf/functions/ratelimit.bpf.o"
    assert rl["config"] == {"limits": [{"vpc": "vpc1", "endpoint": "ep2", "ip": "10.1.0.6", "bps": 10000000,
                                        "burst": "200ms"}]}
    assert r["h2"]["vnis"] == {"vpc1": 100, "vpc2": 200}


@pytest.mark.parametrize("text,bits", [("10mbit", 10 ** 7), ("1.5GBit", 15 * 10 ** 8), ("800bit", 800),
                                       ("2tbit", 2 * 10 ** 12), (64000, 64000), ("1e3kbit", 10 ** 6)])
def test_bitrates(text, bits):
    assert fnreg.parse_bitrate(text) == bits


@pytest.mark.parametrize("text,canonical", [("10ms", "10ms"), ("0.5s", "500ms"), ("1500us", "1500us"),
                                            ("2000us", "2ms"), ("7ns", "7ns"), ("1s", "1s")])
def test_durations(text, canonical):
    assert fnreg.duration_text(fnreg.parse_duration(text)) == canonical


L = "mizar_functions[1].config.limits[0]"
# (id, limits, path, message pattern)
CASES = [
    ("pps-zero", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 0}], L + ".pps", r"0 is out of range: use 1 to"),
    ("bps-zero", [{"vpc": "vpc1", "endpoint": "ep1", "bps": "0mbit"}], L + ".bps",
     r"0mbit is out of range: use 1 to 10000000000000 bits per second"),
    ("bps-unit", [{"vpc": "vpc1", "endpoint": "ep1", "bps": "10mb"}], L + ".bps",
     r"'10mb' is not a bit rate: write a number with one of the units bit, kbit, mbit, gbit, tbit"),
    ("bps-bytes", [{"vpc": "vpc1", "endpoint": "ep1", "bps": "10mbps"}], L + ".bps",
     r"'10mbps': bps units are not supported \(in tc they mean bytes per second\)"),
    ("bps-fraction", [{"vpc": "vpc1", "endpoint": "ep1", "bps": "1.5bit"}], L + ".bps",
     r"not a whole number of bits per second"),
    ("bps-type", [{"vpc": "vpc1", "endpoint": "ep1", "bps": 1.5}], L + ".bps", r"1.5 is not a bit rate"),
    ("burst-unit", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5, "burst": "10"}], L + ".burst",
     r"'10' is not a duration: write a number with one of the units s, ms, us, ns"),
    ("burst-int", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5, "burst": 10}], L + ".burst",
     r"10 is not a duration"),
    ("burst-zero", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5, "burst": "0ms"}], L + ".burst",
     r"0ms is out of range: use 1us to 10s"),
    ("no-rate", [{"vpc": "vpc1", "endpoint": "ep1"}], L, r"needs pps or bps: give at least one of them"),
    ("endpoint-and-ip", [{"vpc": "vpc1", "endpoint": "ep1", "ip": "10.1.0.5", "pps": 5}], L + ".ip",
     r"endpoint and ip exclude each other"),
    ("endpoint-elsewhere", [{"vpc": "vpc2", "endpoint": "ep1", "pps": 5}], L + ".endpoint",
     r"no endpoint named 'ep1' in VPC vpc2: it is an endpoint of vpc1"),
    ("endpoint-typo", [{"vpc": "vpc1", "endpoint": "epp1", "pps": 5}], L + ".endpoint",
     r"no endpoint named 'epp1' in VPC vpc1 \(did you mean \"ep1\"\?\)"),
    ("ip-not-an-endpoint", [{"vpc": "vpc2", "ip": "10.1.0.6", "pps": 5}], L + ".ip",
     r"10.1.0.6 is the address of no endpoint of VPC vpc2"),
    ("ip-bad", [{"vpc": "vpc1", "ip": "10.1.0", "pps": 5}], L + ".ip", r"is not an IPv4 address"),
    # endpoints no transit host delivers to, which the function could never limit
    ("scaled", [{"vpc": "vpc1", "endpoint": "lb", "pps": 5}], L + ".endpoint",
     r"^lb is a scaled endpoint \(its backends are delivered to, by their own addresses\), which no transit host "
     r"delivers to, so this function never sees its packets: name an endpoint that lives on a transit host"),
    ("scaled-ip", [{"vpc": "vpc1", "ip": "10.1.0.7", "pps": 5}], L + ".ip",
     r"^10\.1\.0\.7 \(endpoint lb\) is a scaled endpoint"),
    ("gateway-ip", [{"vpc": "vpc1", "ip": "10.1.0.1", "pps": 5}], L + ".ip",
     r"^10\.1\.0\.1 is the address of no endpoint of VPC vpc1 \(it is the gateway of network net1\)"),
    ("vpc-unknown", [{"vpc": "vpc9", "endpoint": "ep1", "pps": 5}], L + ".vpc", r"no VPC named 'vpc9' in mizar_vpcs"),
    ("unknown-key", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5, "rate": 5}], L + ".rate",
     r"unknown setting 'rate'"),
    ("twice", [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5}, {"vpc": "vpc1", "ip": "10.1.0.5", "bps": 5}],
     "mizar_functions[1].config.limits[1]", r"the same vpc vpc1 and ip 10.1.0.5 as mizar_functions\[1\]\.config\."
                                            r"limits\[0\]: list each one once"),
    ("vpc-twice", [{"vpc": "vpc2", "pps": 5}, {"vpc": "vpc2", "bps": 5}], "mizar_functions[1].config.limits[1]",
     r"the same vpc vpc2 and ip \(none\) as"),
    ("too-many", [{"vpc": "vpc1", "pps": p} for p in range(1, 258)], "mizar_functions[1].config.limits",
     r"257 items, more than the 256 the function holds"),
]


@pytest.mark.parametrize("limits,path,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_defect(limits, path, pattern):
    errors = validate(inventory(*limits))
    assert [e.path for e in errors] == [path], errors.format()
    assert re.search(pattern, errors[0].message), errors[0].message


def test_an_endpoint_behind_a_tunnel_peer_is_refused_by_name_and_by_address():
    """The peer delivers to it, not a transit host: no ratelimit sees its
    packets. Each limit is refused at its own path, with the peer named."""
    inv = inventory({"vpc": "vpc1", "endpoint": "ext1", "pps": 5}, {"vpc": "vpc1", "ip": "10.1.0.20", "bps": 800})
    inv["mizar_tunnel_peers"] = [{"name": "vtep1", "ip": "192.168.50.77", "mac": "02:00:00:00:00:77"}]
    inv["mizar_vpcs"][0]["networks"][0]["endpoints"].append({"name": "ext1", "ip": "10.1.0.20", "tunnel_peer": "vtep1"})
    errors = validate(inv)
    assert [(e.path, e.message.split(", which")[0]) for e in errors] == [
        ("mizar_functions[1].config.limits[0].endpoint", "ext1 is behind tunnel peer vtep1 (delivered by the peer, "
         "not by a transit host)"),
        ("mizar_functions[1].config.limits[1].ip", "10.1.0.20 (endpoint ext1) is behind tunnel peer vtep1 "
         "(delivered by the peer, not by a transit host)")], errors.format()
    inv["mizar_functions"][1]["config"]["limits"] = [{"vpc": "vpc1", "endpoint": "ep1", "pps": 5}]
    assert validate(inv) == [], "an endpoint on a transit host, beside the peer's, is fine"


def test_hosted_is_for_endpoints_and_a_bool():
    opts = {"vpc": {"type": "vpc"}, "port": {"type": "int", "hosted": True}}
    with pytest.raises(fnreg.SchemaError, match=r"hosted is true or false, for an endpoint or endpoint_ip"):
        fnreg.parse_schema({"config": {"x": {"type": "dict", "options": opts}}}, "f")
    opts = {"vpc": {"type": "vpc"}, "ep": {"type": "endpoint", "hosted": "yes"}}
    with pytest.raises(fnreg.SchemaError, match=r"config\.x\.ep: hosted is true or false"):
        fnreg.parse_schema({"config": {"x": {"type": "dict", "options": opts}}}, "f")


def test_wrong_stage_is_refused_and_a_shared_stage_is_a_chain():
    inv = inventory({"vpc": "vpc1", "endpoint": "ep1", "pps": 5})
    inv["mizar_functions"][1]["stage"] = "on_xdp_tx"
    assert [(e.path, e.message.split(":")[0]) for e in validate(inv)] == [
        ("mizar_functions[1].stage", "function ratelimit cannot run at on_xdp_tx")]
    inv = inventory({"vpc": "vpc1", "endpoint": "ep1", "pps": 5})
    inv["mizar_functions"][1]["hosts"] = ["h1"]  # where acl1 holds on_xdp_redirect: the stage runs acl1, then it
    assert [e.path for e in validate(inv)] == []
