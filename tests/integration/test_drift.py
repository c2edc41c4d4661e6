"""mizar.transit.site's gate on real lab hosts: one drift_info call per host
says whether any task of the roles would change the host, and a host in
sync ends its play there. A no-op run is one module call per host; a host
that drifted (its objects, a map entry, a stage, an endpoint) is named with
the part that drifted, repaired by the roles, and in sync again after,
while the other host stays untouched. --check changes nothing."""
import json
import os

import pytest
import yaml

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf

from .conftest import ROOT, RUN, LabHosts

H1, H2 = RUN + "d1", RUN + "d2"
LAB_HOSTS = LabHosts({H1: "192.168.79.1", H2: "192.168.79.2"}, RUN + "db", "/sys/fs/bpf/%s-dr" % RUN)
G1, G2 = RUN + "g1", RUN + "g2"
TENANTS = {
    "mizar_model_version": 1,
    "mizar_vpcs": [{
        "name": "green", "vni": 300, "cidr": "10.9.0.0/16",
        "networks": [{"name": "a", "cidr": "10.9.1.0/24", "bouncers": [H1], "endpoints": [
            {"name": "g1", "ip": "10.9.1.10", "host": H1, "netns": G1},
            {"name": "g2", "ip": "10.9.1.11", "host": H2, "netns": G2}]}]}],
    "mizar_functions": [{
        "name": "acl-green", "stage": "on_xdp_redirect", "program": "acl", "hosts": [H2],
        "config": {"rules": [{"vpc": "green", "src": "10.9.1.10/32", "dst": "10.9.1.11/32", "protocol": "udp",
                              "action": "drop"}]}}],
}
CALLBACKS = os.path.join(ROOT, "bench", "callback_plugins")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("inventory")
    # underlay MACs given, as in the shipped lab: no facts to gather
    path = LAB_HOSTS.inventory(directory, host_vars={H1: {"mizar_underlay_mac": "02:00:c0:a8:4f:01"},
                                                     H2: {"mizar_underlay_mac": "02:00:c0:a8:4f:02"}})
    with open(os.path.join(path, "group_vars", "all.yml"), "w") as f:
        yaml.safe_dump(TENANTS, f, default_flow_style=False)
    return path


@pytest.fixture(scope="module")
def deployed(ansible, inventory):
    with LAB_HOSTS.deployed(ansible, inventory) as first:
        assert first.changed(H1) and first.changed(H2), first.recap
        yield


def site(ansible, inventory, tmp_path, *extra):
    """Run site.yml with the mizar_calls callback: (the run, {host: [the
    module calls it ran on the host, by task name]}, {host: drift_info's
    result})."""
    out = str(tmp_path / ("calls-%d.json" % len(os.listdir(str(tmp_path)))))
    env = dict(ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED="mizar_calls", MIZAR_CALLS_OUT=out)
    res = ansible.playbook(inventory, "mizar.transit.site", *extra, env=env)
    assert res.ok(), res
    with open(out) as f:
        tasks = json.load(f)["tasks"]
    calls, drift = {H1: [], H2: []}, {}
    for t in tasks:
        if t["host"] in calls and t["remote"]:
            calls[t["host"]] += [t["task"]] * t["calls"]
        if t["action"] == "mizar.transit.drift_info" and t["host"] in calls:
            drift[t["host"]] = t["result"]
    return res, calls, drift


GATE = "Compare every host with its rendering and the build"


def assert_no_op(ansible, inventory, tmp_path):
    res, calls, drift = site(ansible, inventory, tmp_path)
    assert [res.changed(H1), res.changed(H2)] == [0, 0], res.recap
    assert calls == {H1: [GATE], H2: [GATE]}, calls
    assert drift[H1]["in_sync"] and drift[H2]["in_sync"], drift


def pin(host, *parts):
    return os.path.join(LAB_HOSTS.bpffs_root, host, "mizar", *parts)


def test_a_no_op_run_is_one_module_call_per_host(ansible, inventory, deployed, tmp_path):
    assert_no_op(ansible, inventory, tmp_path)


def repaired(ansible, inventory, tmp_path, host, part, says):
    """The drifted host alone is named, with its part and what its module
    would do; --check leaves it so; the run repairs it and only it; the next
    run is a no-op."""
    other = H2 if host == H1 else H1
    res, calls, drift = site(ansible, inventory, tmp_path, "--check")
    assert res.changed(host) and not res.changed(other), res.recap
    assert calls[other] == [GATE], calls
    assert not drift[host]["in_sync"] and list(drift[host]["drift"]) == [part], drift
    assert any(says in a for a in drift[host]["drift"][part]), drift
    res, calls, drift = site(ansible, inventory, tmp_path)
    assert not drift[host]["in_sync"] and list(drift[host]["drift"]) == [part], drift
    assert res.changed(host) and not res.changed(other), res.recap
    assert calls[other] == [GATE], calls
    assert_no_op(ansible, inventory, tmp_path)


def test_missing_objects_are_transit_drift(ansible, inventory, deployed, tmp_path):
    os.unlink("/var/lib/mizar-%s/agent.bpf.o" % H1)
    repaired(ansible, inventory, tmp_path, H1, "transit", "carry the build's objects")
    assert os.path.isfile("/var/lib/mizar-%s/agent.bpf.o" % H1)


def test_a_lost_map_entry_is_map_drift(ansible, inventory, deployed, tmp_path):
    # the tables are open-addressing hash tables in ARRAY maps: a slot of
    # zeros is an empty one, so the entry is gone
    with libbpf.Map.from_pin(pin(H2, "maps", "mzr_endpoints")) as m:
        used = [(k, v) for k, v in m.items() if any(v)]
        assert used
        slot, entry = used[0]
        m.update(slot, bytes(len(entry)))
    repaired(ansible, inventory, tmp_path, H2, "maps", "mzr_endpoints")
    with libbpf.Map.from_pin(pin(H2, "maps", "mzr_endpoints")) as m:
        assert sorted(v for k, v in m.items() if any(v)) == sorted(v for k, v in used)


def _stage_play(ansible, inventory, host, stage, state):
    path = ansible.write_playbook("stage-%s-%s.yml" % (stage, state), """
        - hosts: %s
          gather_facts: false
          tasks:
            - mizar.transit.stage:
                stage: %s
                object: /var/lib/mizar-%s/functions/acl.bpf.o
                function: acl
                state: %s
        """ % (host, stage, host, state))
    res = ansible.playbook(inventory, path)
    assert res.ok() and res.changed(host), res


def test_a_function_taken_out_is_stage_drift(ansible, inventory, deployed, tmp_path):
    _stage_play(ansible, inventory, H2, "on_xdp_redirect", "absent")
    repaired(ansible, inventory, tmp_path, H2, "stages", "install")
    assert os.path.exists(pin(H2, "progs", "stage_on_xdp_redirect"))


def test_a_program_in_an_unclaimed_stage_is_stage_drift(ansible, inventory, deployed, tmp_path):
    _stage_play(ansible, inventory, H2, "on_xdp_tx", "present")
    repaired(ansible, inventory, tmp_path, H2, "stages", "on_xdp_tx")
    assert not os.path.exists(pin(H2, "progs", "stage_on_xdp_tx"))


def test_an_endpoint_the_inventory_does_not_name_is_endpoint_drift(ansible, inventory, deployed, tmp_path):
    stray = RUN + "gx"
    path = ansible.write_playbook("stray.yml", """
        - hosts: %s
          gather_facts: false
          tasks:
            - mizar.transit.endpoint:
                name: stray
                iface: mzstray0
                netns: %s
                ip: 10.9.1.99
                prefixlen: 24
                mac: "02:00:00:00:09:99"
                gateway: 10.9.1.1
        """ % (H1, stray))
    res = ansible.playbook(inventory, path)
    assert res.ok() and res.changed(H1), res
    repaired(ansible, inventory, tmp_path, H1, "endpoints", "mzstray0")
    assert not os.path.exists("/run/netns/" + stray)
