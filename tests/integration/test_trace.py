"""playbooks/trace.yml on the shipped lab's tenants, deployed with
mizar.transit.site on lab hosts of its own: every path of the lab traced
through the live programs, hop by hop, and matched with real traffic
between the same endpoints; the ACL's drop named as such at the host whose
stage drops; tenants kept apart, shown as a drop at the right hop; the
agent's same-host delivery; the model and compare modes; bad input refused
before any host is touched."""
import json
import os
import socket

import pytest
import yaml

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .conftest import LAB_INVENTORY, RUN, LabHosts, ns_ping
from .test_lab_inventory import PATHS

SHIPPED = ("mzh1", "mzh2", "mzh3")
HOSTS = dict((h, RUN + "t%d" % (i + 1)) for i, h in enumerate(SHIPPED))
LAB_HOSTS = LabHosts(dict((HOSTS[h], "192.168.81.%d" % (i + 1)) for i, h in enumerate(SHIPPED)), RUN + "tb",
                     "/sys/fs/bpf/%s-tr" % RUN)
TRACE = "mizar.transit.trace"


def _netns(name):
    return RUN + name


def _tenants():
    """The shipped lab's tenants, on this test's hosts and namespaces (a
    user-space function logging to a file of this run)."""
    with open(os.path.join(LAB_INVENTORY, "group_vars", "all.yml")) as f:
        text = f.read()
    data = yaml.safe_load(text)
    for vpc in data["mizar_vpcs"]:
        vpc["dividers"] = [HOSTS[h] for h in vpc.get("dividers", [])]
        for net in vpc["networks"]:
            net["bouncers"] = [HOSTS[h] for h in net["bouncers"]]
            for ep in net["endpoints"]:
                if ep.get("type") != "scaled":  # a VIP lives on no host
                    ep["host"], ep["netns"] = HOSTS[ep["host"]], _netns(ep["netns"])
    for fn in data["mizar_functions"]:
        if "hosts" in fn:
            fn["hosts"] = [HOSTS[h] for h in fn["hosts"]]
        if fn.get("kind") == "userspace":
            fn["config"] = dict(fn.get("config") or {}, log="/tmp/%s-%s.jsonl" % (RUN, fn["name"]))
    return data


TENANTS = _tenants()
IPS = dict(("%s/%s/%s" % (v["name"], n["name"], e["name"]), e["ip"]) for v in TENANTS["mizar_vpcs"]
           for n in v["networks"] for e in n["endpoints"])
NETNS = dict(("%s/%s/%s" % (v["name"], n["name"], e["name"]), e["netns"]) for v in TENANTS["mizar_vpcs"]
             for n in v["networks"] for e in n["endpoints"] if "netns" in e)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("inventory")
    macs = dict((HOSTS[h], "02:00:c0:a8:51:%02x" % (i + 1)) for i, h in enumerate(SHIPPED))
    path = LAB_HOSTS.inventory(directory, host_vars=dict((h, {"mizar_underlay_mac": m}) for h, m in macs.items()))
    with open(os.path.join(path, "group_vars", "all.yml"), "w") as f:
        yaml.safe_dump(TENANTS, f, default_flow_style=False)
    return path


@pytest.fixture(scope="module")
def deployed(ansible, inventory):
    try:
        with LAB_HOSTS.deployed(ansible, inventory):
            yield
    finally:  # the user-space functions' logs stay after teardown (docs/inventory.md)
        for fn in TENANTS["mizar_functions"]:
            if fn.get("kind") == "userspace" and os.path.exists(fn["config"]["log"]):
                os.unlink(fn["config"]["log"])


def trace(ansible, inventory, tmp_path, src, dst, *extra):
    """(the run, the trace it wrote) for src -> dst."""
    out = str(tmp_path / ("trace-%d.json" % len(os.listdir(str(tmp_path)))))
    args = ["-e", "src=%s" % src, "-e", "dst=%s" % dst, "-e", "trace_out=%s" % out]
    for e in extra:
        args += ["-e", e]
    res = ansible.playbook(inventory, TRACE, *args)
    if not res.ok():
        return res, None
    with open(out) as f:
        return res, json.load(f)


def visited(t):
    """The hosts the packet visited, one per hop, named as in the shipped lab."""
    back = dict((v, k) for k, v in HOSTS.items())
    return [back[hop["host"]] for hop in t["hops"]]


def udp_arrives(src_ns, dst_ns, dst_ip, port):
    """One UDP datagram from src_ns to a socket bound in dst_ns; True when it arrived."""
    server = netlink.netns_socket(dst_ns)
    client = netlink.netns_socket(src_ns)
    try:
        server.bind((dst_ip, port))
        server.settimeout(3)
        client.sendto(b"mizar", (dst_ip, port))
        try:
            return server.recv(64) == b"mizar"
        except socket.timeout:
            return False
    finally:
        server.close()
        client.close()


PATH_IDS = ["%s-%s" % (s.split("/")[-1], d.split("/")[-1]) for s, d in sorted(PATHS)]


@pytest.mark.parametrize("src,dst", sorted(PATHS), ids=PATH_IDS)
def test_every_path_of_the_lab_is_traced_as_real_traffic_goes(ansible, inventory, deployed, tmp_path, src, dst):
    res, t = trace(ansible, inventory, tmp_path, src.split("/")[-1], IPS[dst], "proto=udp", "dport=7000")
    assert t is not None, res
    assert t["outcome"] == "delivered", t["lines"]
    assert t["hops"][-1]["delivered_to"] == dst
    assert visited(t) == PATHS[(src, dst)], t["lines"]
    assert t["verdict"].startswith("%s -> %s: delivered to %s on " % (src, IPS[dst], dst))
    assert t["verdict"] in res.stdout
    assert udp_arrives(NETNS[src], NETNS[dst], IPS[dst], 7000), "the trace delivers, real traffic did not: %s" % t["lines"]


def test_the_acl_drop_is_named_at_the_host_whose_stage_drops(ansible, inventory, deployed, tmp_path):
    res, t = trace(ansible, inventory, tmp_path, "blue2", "10.0.2.10")
    assert t is not None, res
    assert t["outcome"] == "dropped" and visited(t) == ["mzh2", "mzh1", "mzh3"], t["lines"]
    last = t["hops"][-1]
    assert (last["host"], last["verdict"], last["stage"], last["dropped_by"]) == \
        (HOSTS["mzh3"], "drop", "on_xdp_redirect", "acl-blue")
    # ratelimit-red follows acl-blue in mzh3's chain: a packet the ACL drops never reaches it
    assert [(f["function"], f["decision"]) for f in last["functions"]] == [("acl-blue", "returned drop"),
                                                                           ("ratelimit-red", "not run")]
    assert t["verdict"] == "blue/web/blue2 -> 10.0.2.10: dropped at %s (hop 3) by function acl-blue " \
        "(on_xdp_redirect)" % HOSTS["mzh3"]
    # blue2's agent sent it to web's bouncer, which sent it to blue's divider
    assert [h["role"] for h in t["hops"]] == ["to a bouncer", "to a divider", "drop"]
    assert not ns_ping(NETNS["blue/web/blue2"], "10.0.2.10")
    # the rule is ICMP only: UDP goes through, and the ACL said so
    res, t = trace(ansible, inventory, tmp_path, "blue2", "10.0.2.10", "proto=udp", "dport=53")
    assert t["outcome"] == "delivered", t["lines"]
    decisions = [(f["function"], f["decision"]) for f in t["hops"][-1]["functions"]]
    assert decisions == [("acl-blue", "passed"), ("ratelimit-red", "passed")]


def test_a_flow_to_the_vip_is_traced_through_the_balancer_to_its_backend(ansible, inventory, deployed, tmp_path):
    """web-vip (10.0.1.100) is balanced by web-lb at web's bouncer (mzh1) over
    blue1 (mzh1) and blue2 (mzh2): each flow's trace names the stage and the
    function where it is balanced, and ends delivered to the backend it
    picked, on that backend's host."""
    ends = {}
    for sport in range(40011, 40019):
        res, t = trace(ansible, inventory, tmp_path, "blue3", "10.0.1.100", "proto=udp", "sport=%d" % sport,
                       "dport=80")
        assert t is not None and t["outcome"] == "delivered", (res, t and t["lines"])
        backend = t["hops"][-1]["delivered_to"]
        assert backend in ("blue/web/blue1", "blue/web/blue2"), t["lines"]
        balanced = t["hops"][1]
        assert (visited(t)[1], balanced["stage"]) == ("mzh1", "on_xdp_scaled_ep"), t["lines"]
        assert [f["function"] for f in balanced["functions"]] == ["web-lb"], t["lines"]
        # blue1 is on the balancing host; blue2 gets the packet from it, with the pick in an option
        assert visited(t) == (["mzh2", "mzh1"] if backend == "blue/web/blue1" else ["mzh2", "mzh1", "mzh2"]), t["lines"]
        if backend == "blue/web/blue2":
            assert t["hops"][2]["stage"] == "on_xdp_scaled_ep", t["lines"]
        ends[sport] = backend
    assert set(ends.values()) == {"blue/web/blue1", "blue/web/blue2"}, ends


def test_tenants_are_isolated_and_the_drop_is_at_the_right_hop(ansible, inventory, deployed, tmp_path):
    # red has no network 10.0.2.0/24 (blue's db) and no divider: its bouncer drops it
    res, t = trace(ansible, inventory, tmp_path, "red1", "10.0.2.10")
    assert t is not None, res
    assert t["outcome"] == "dropped" and visited(t) == ["mzh1", "mzh3"], t["lines"]
    assert (t["hops"][-1]["host"], t["hops"][-1]["drop_reason"]) == (HOSTS["mzh3"], "no_hops")
    assert not ns_ping(NETNS["red/apps/red1"], "10.0.2.10")
    # the same address in both tenants: red1 reaches red2, never blue2
    res, t = trace(ansible, inventory, tmp_path, "red1", "10.0.1.11")
    assert t["hops"][-1]["delivered_to"] == "red/apps/red2", t["lines"]
    assert all(h["headers_out"].get("geneve", {}).get("vni") in (None, 200) for h in t["hops"])


def test_the_agent_delivers_on_its_own_host(ansible, inventory, deployed, tmp_path):
    res, t = trace(ansible, inventory, tmp_path, "blue/web/blue2", "10.0.1.12", "proto=tcp", "dport=22")
    assert t is not None, res
    (hop,) = t["hops"]
    assert (hop["host"], hop["program"], hop["role"], hop["verdict"], hop["delivered_to"]) == \
        (HOSTS["mzh2"], "agent", "local delivery", "redirect", "blue/web/blue3")
    assert hop["counted"] == {"redirect": 1, "agent_local": 1}
    assert hop["headers_out"]["tcp"]["dport"] == 22


def test_model_mode_touches_no_host(ansible, inventory, deployed, tmp_path):
    res, t = trace(ansible, inventory, tmp_path, "bluedb1", "10.0.1.10", "mode=model")
    assert t is not None, res
    assert t["hops"] == [] and t["outcome"] == "delivered"
    assert [(s["host"], s["path"]) for s in t["model"]["hops"]] == [
        (HOSTS["mzh3"], "agent_encap"), (HOSTS["mzh2"], "to_divider"), (HOSTS["mzh3"], "divide"),
        (HOSTS["mzh1"], "decap")]
    assert "Run the frame through" not in res.stdout
    assert t["verdict"] in res.stdout


def test_compare_mode_flags_what_the_model_does_not_see(ansible, inventory, deployed, tmp_path):
    res, t = trace(ansible, inventory, tmp_path, "bluedb1", "10.0.1.10", "mode=compare")
    assert t is not None, res
    assert t["compare"]["agree"] is True and all(r["agree"] for r in t["compare"]["hops"]), t["lines"]
    assert "compare: live and model agree" in res.stdout
    res, t = trace(ansible, inventory, tmp_path, "blue2", "10.0.2.10", "mode=compare")
    assert t["compare"]["agree"] is False
    assert [r["agree"] for r in t["compare"]["hops"]] == [True, True, False]
    assert t["compare"]["hops"][2]["note"] == "a stage function decided; the model runs none"
    assert "DIFFERS at hop 3" in res.stdout and "live and model DISAGREE" in res.stdout


@pytest.mark.parametrize("extra,says", [
    (("src=nosuch", "dst=10.0.1.11"), "src: 'nosuch' is no endpoint of any transit host"),
    (("src=blue1", "dst=10.9.9.9"), "dst: 10.9.9.9 is outside VPC blue (10.0.0.0/16) of blue/web/blue1"),
    (("src=blue1", "dst=10.0.1.11", "proto=sctp"), "proto: 'sctp' is not a protocol the trace sends"),
    (("src=blue1", "dst=not-an-ip"), "dst: 'not-an-ip' is not an IPv4 address"),
], ids=["not-an-endpoint", "outside-every-vpc", "unknown-protocol", "not-an-address"])
def test_bad_input_is_refused_before_any_host_is_touched(ansible, inventory, extra, says):
    args = []
    for e in extra:
        args += ["-e", e]
    res = ansible.playbook(inventory, TRACE, *args)
    assert res.rc != 0 and says in res.stdout, res
    assert "no host was touched" in res.stdout
    assert set(res.recap) == {"localhost"}, res.recap


def test_a_host_with_no_program_loaded_says_so(ansible, inventory, deployed, tmp_path):
    res, t = trace(ansible, inventory, tmp_path, "blue1", "10.0.1.11", "mizar_bpf_pin_dir=/sys/fs/bpf/%s-none" % RUN)
    assert t is None and res.rc != 0
    assert "no datapath loaded at /sys/fs/bpf/%s-none: no agent program runs here" % RUN in res.stdout, res
