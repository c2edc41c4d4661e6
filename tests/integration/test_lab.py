"""The lab, end to end: `ansible-playbook mizar.transit.lab` on an inventory
shaped like inventories/lab (three hosts, the shipped connection settings),
under names of this run only. The tests run in order on one lab:
present, reachability, no-op rerun, honest check mode, facts through the
netns connection, absent."""
import os
import subprocess

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import xdp

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from ansible_collections.mizar.transit.plugins.module_utils.ops import lab_host as lab

from .conftest import (LAB, LAB_INVENTORY, RUN, LabHosts, ns_ping, remove_bridge_if_unused, remove_lab_host,
                       shipped_host_settings, write_inventory)

HOSTS = ["%sh%d" % (RUN, i) for i in (1, 2, 3)]
IPS = dict((h, "192.168.77.%d" % i) for i, h in enumerate(HOSTS, 1))
BRIDGE = RUN + "br"
BPFFS_ROOT = "/sys/fs/bpf/%s-lab" % RUN
LAB_HOSTS = LabHosts(IPS, BRIDGE, BPFFS_ROOT)
LAB_VARS = LAB_HOSTS.vars


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    return LAB_HOSTS.inventory(tmp_path_factory.mktemp("inventory"))


@pytest.fixture(scope="module")
def lab_run(ansible, inventory):
    """Runs the lab playbook on this module's inventory; removes the lab at
    the end whatever happened (playbook first, then by hand)."""

    def run(state="present", *extra):
        return LAB_HOSTS.playbook(ansible, inventory, state, *extra)

    yield run
    errors = LAB_HOSTS.remove(ansible, inventory)
    assert not errors, errors


def _port(host):
    return netlink.link(lab.port_name(host))


def test_the_shipped_lab_inventory_has_what_this_test_assumes():
    settings = shipped_host_settings()
    assert settings["ansible_connection"] == "mizar.transit.netns"
    assert settings["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert settings["mizar_interface"] == "eth0"
    assert os.path.exists(os.path.join(LAB_INVENTORY, "hosts.yml"))


def test_present_creates_the_lab_hosts(lab_run):
    res = lab_run("present")
    assert res.ok(), res
    assert res.changed() == 1, res
    br = netlink.link(BRIDGE)
    assert br is not None and br["kind"] == "bridge" and br["up"]
    for h in HOSTS:
        assert nsenter.netns_exists(h)
        names = sorted(lk["ifname"] for lk in netlink.links(h))
        assert names == ["eth0", "lo"], names
        eth0 = netlink.link("eth0", h)
        assert eth0["up"] and eth0["kind"] == "veth"
        assert netlink.addrs("eth0", h) == ["%s/24" % IPS[h]]
        assert netlink.link("lo", h)["up"]
        port = _port(h)
        assert port is not None and port["up"] and port["master"] == br["index"]
        q = xdp.query(port["index"])
        assert (q["attached"], q["prog_name"], q["mode"]) == (True, "mzr_pass", "native"), q


def test_lab_hosts_reach_each_other_over_the_underlay(lab_run):
    for a in HOSTS:
        for b in HOSTS:
            if a != b:
                assert ns_ping(a, IPS[b]), "%s cannot ping %s (%s)" % (a, b, IPS[b])


def test_a_second_run_changes_nothing(lab_run):
    res = lab_run("present")
    assert res.ok(), res
    assert res.changed() == 0, res


def test_check_mode_on_the_lab_reports_no_change(lab_run):
    res = lab_run("present", "--check", "--diff")
    assert res.ok(), res
    assert res.changed() == 0, res


def test_check_mode_reports_a_repair_and_leaves_it_undone(lab_run):
    h = HOSTS[1]
    subprocess.run(["ip", "-n", h, "addr", "flush", "dev", "eth0"], check=True)
    subprocess.run(["ip", "-n", h, "addr", "add", "192.168.77.99/24", "dev", "eth0"], check=True)
    res = lab_run("present", "--check", "--diff")
    assert res.ok(), res
    assert res.changed() == 1, res
    assert "192.168.77.99/24" in res.stdout, res  # the diff shows the address to remove
    assert netlink.addrs("eth0", h) == ["192.168.77.99/24"], "check mode changed the host"
    res = lab_run("present")
    assert res.ok() and res.changed() == 1, res
    assert netlink.addrs("eth0", h) == ["%s/24" % IPS[h]]
    assert ns_ping(HOSTS[0], IPS[h])


def test_tasks_in_lab_hosts_see_their_own_network(ansible, inventory, lab_run):
    book = ansible.write_playbook("facts.yml", """\
        - name: Facts of every lab host
          hosts: mizar_hosts
          gather_facts: true
          tasks:
            - name: Only the host's own interfaces and address
              ansible.builtin.assert:
                that:
                  - ansible_facts['interfaces'] | sort == ['eth0', 'lo']
                  - ansible_facts['eth0']['ipv4']['address'] == mizar_underlay_ip
                  - ansible_facts['all_ipv4_addresses'] == [mizar_underlay_ip]
            - name: The underlay segment from inside
              ansible.builtin.command: ping -c1 -W1 {{ hostvars[groups['mizar_hosts'][0]]['mizar_underlay_ip'] }}
              changed_when: false
        """)
    res = ansible.playbook(inventory, book)
    assert res.ok(), res
    assert sorted(res.recap) == sorted(HOSTS), res
    for h in HOSTS:
        assert os.path.isdir(os.path.join(BPFFS_ROOT, h)), "the connection made no bpffs view for %s" % h


def test_absent_removes_everything(lab_run):
    res = lab_run("absent")
    assert res.ok(), res
    assert res.changed() == 1, res
    for h in HOSTS:
        assert not nsenter.netns_exists(h), "namespace %s left" % h
        assert _port(h) is None, "veth %s of %s left" % (lab.port_name(h), h)
    assert netlink.link(BRIDGE) is None, "bridge left"
    assert not os.path.exists(BPFFS_ROOT), "bpffs views left: %s" % os.listdir(BPFFS_ROOT)
    res = lab_run("absent")
    assert res.ok() and res.changed() == 0, res


def test_lab_hosts_use_their_prefix(ansible, tmp_path):
    """mizar_lab_underlay_prefix of the inventory, a host's own, and the
    host's mizar_interface."""
    hosts = {RUN + "p1": {"mizar_underlay_ip": "10.77.0.1", "mizar_interface": "eth1"},
             RUN + "p2": {"mizar_underlay_ip": "10.77.0.2", "mizar_interface": "eth1",
                          "mizar_lab_underlay_prefix": 30}}
    inv = write_inventory(tmp_path / "inv", hosts, all_vars={"mizar_lab_underlay_prefix": 16})
    extra = ["-e", "mizar_lab_bridge=%sbq" % RUN, "-e", "mizar_lab_bpffs_root=%s" % BPFFS_ROOT]
    try:
        res = ansible.playbook(inv, LAB, *extra)
        assert res.ok(), res
        assert netlink.addrs("eth1", RUN + "p1") == ["10.77.0.1/16"]
        assert netlink.addrs("eth1", RUN + "p2") == ["10.77.0.2/30"]
    finally:
        res = ansible.playbook(inv, LAB, "-e", "mizar_lab_state=absent", *extra)
        for h in hosts:
            remove_lab_host(h, bpffs_root=BPFFS_ROOT)
        remove_bridge_if_unused(RUN + "bq")
    assert res.ok(), res


def test_a_bad_state_is_refused_before_anything_happens(ansible, inventory):
    res = ansible.playbook(inventory, LAB, "-e", "mizar_lab_state=gone", *LAB_VARS)
    assert res.rc != 0
    assert "mizar_lab_state must be one of: present, absent" in res.stdout, res
    assert not any(nsenter.netns_exists(h) for h in HOSTS)


def test_a_host_without_underlay_ip_is_refused(ansible, tmp_path):
    inv = write_inventory(tmp_path / "inv", {RUN + "x1": {"mizar_interface": "eth0"}})
    res = ansible.playbook(inv, LAB, *LAB_VARS)
    assert res.rc != 0
    assert "needs mizar_interface" in res.stdout and "mizar_underlay_ip" in res.stdout, res
    assert not nsenter.netns_exists(RUN + "x1")
