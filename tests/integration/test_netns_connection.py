"""The mizar.transit.netns connection with the real ansible-playbook: a task
in a lab host sees that namespace's network only, a bpffs view of its own on
the machine's bpffs, and namespaces it creates outlive it; nothing leaks
into the machine's mounts, also where / is a shared mount (systemd)."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from .conftest import RUN, bpffs_rmtree, write_inventory

C1, C2, ALIAS, MISSING = RUN + "c1", RUN + "c2", RUN + "alias", RUN + "zz"
ADDRS = {C1: "10.99.0.1", C2: "10.99.0.2"}
VIEWS = "/sys/fs/bpf/lab"  # the connection's default bpffs_root
INNER = [RUN + "-in%d" % i for i in (1, 2, 3)]


def _cleanup():
    errors = []
    for ns in [C1, C2] + INNER:
        try:
            netlink.netns_del(ns)
        except Exception as e:  # keep going
            errors.append("%s: %s" % (ns, e))
    for host in (C1, C2, ALIAS, MISSING):
        bpffs_rmtree(os.path.join(VIEWS, host))
    try:
        os.rmdir(VIEWS)
    except OSError:
        pass  # another lab's views are still there, or none was made
    return errors


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Two namespaces with a veth pair e0 <-> e1 each (e0 addressed), and
    an inventory reaching them (and one namespace under another host name)."""
    _cleanup()
    try:
        for ns, ip in ADDRS.items():
            netlink.netns_add(ns)
            netlink.veth_add("e0", "e1", netns=ns)
            netlink.addr_add("e0", ip + "/24", netns=ns)
            for ifname in ("e0", "e1", "lo"):
                netlink.link_set(ifname, netns=ns, up=True)
        conn = {"ansible_connection": "mizar.transit.netns",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        inv = write_inventory(tmp_path_factory.mktemp("inventory"),
                              {C1: {"underlay": ADDRS[C1]}, C2: {"underlay": ADDRS[C2]},
                               ALIAS: {"ansible_mizar_netns": C1, "underlay": ADDRS[C1]}},
                              group_vars=conn)
        yield inv
    finally:
        errors = _cleanup()
        assert not errors, errors


def _run(ansible, inventory, name, text, *extra, **kw):
    return ansible.playbook(inventory, ansible.write_playbook(name, text), *extra, **kw)


def test_a_task_sees_only_its_namespace(ansible, hosts, tmp_path):
    res = _run(ansible, hosts, "own.yml", """\
        - name: Inside each lab host
          hosts: mizar_hosts
          gather_facts: true
          tasks:
            - name: Facts show the namespace's interfaces and address only
              ansible.builtin.assert:
                that:
                  - ansible_facts['interfaces'] | sort == ['e0', 'e1', 'lo']
                  - ansible_facts['all_ipv4_addresses'] == [underlay]
                  - ansible_facts['e0']['ipv4']['address'] == underlay
                  - ansible_facts['python']['executable'] == ansible_playbook_python
            - name: Read /sys/class/net
              ansible.builtin.command: ls /sys/class/net
              register: sys_net
              changed_when: false
            - name: It lists the namespace's interfaces
              ansible.builtin.assert:
                that:
                  - sys_net.stdout_lines | sort == ['e0', 'e1', 'lo']
            - name: Files travel as with the local connection
              ansible.builtin.copy:
                content: "{{ inventory_hostname }}\\n"
                dest: "%s/{{ inventory_hostname }}.txt"
                mode: "0644"
        """ % tmp_path)
    assert res.ok(), res
    assert sorted(res.recap) == sorted([C1, C2, ALIAS]), res
    for host in (C1, C2, ALIAS):
        with open(os.path.join(str(tmp_path), host + ".txt")) as f:
            assert f.read() == host + "\n"
    # the views are named after the namespace: ALIAS used C1's
    assert sorted(e for e in os.listdir(VIEWS) if e.startswith(RUN)) == sorted([C1, C2])


def test_a_delegated_task_runs_in_the_delegated_hosts_namespace(ansible, hosts):
    """delegate_to enters the namespace of the host it names (its own, or the
    one its ansible_mizar_netns names), not the delegating host's."""
    res = _run(ansible, hosts, "delegate.yml", """\
        - name: From the first lab host
          hosts: %s
          gather_facts: false
          tasks:
            - name: Read the addresses of the host delegated to
              ansible.builtin.command: hostname --all-ip-addresses
              delegate_to: "{{ item }}"
              loop: [%s, %s, %s]
              register: seen
              changed_when: false
            - name: Each saw its own namespace's address only (the alias, its namespace's)
              ansible.builtin.assert:
                that:
                  - seen.results | map(attribute='stdout') | map('trim') | list == [
                      hostvars['%s'].underlay, hostvars['%s'].underlay, hostvars['%s'].underlay]
        """ % (C1, C2, C1, ALIAS, C2, C1, C1))
    assert res.ok(), res


PIN_MAP = r"""
import ctypes, os
lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
os.makedirs("/sys/fs/bpf/mizar", exist_ok=True)
fd = lib.bpf_map_create(2, b"mzprobe", 4, 4, 1, None)
assert fd >= 0, os.strerror(-fd)
ret = lib.bpf_obj_pin(fd, b"/sys/fs/bpf/mizar/probe")
assert ret == 0, os.strerror(-ret)
"""


def test_each_host_has_its_own_view_of_the_machines_bpffs(ansible, hosts):
    res = _run(ansible, hosts, "bpffs.yml", """\
        - name: Pin a map in one lab host
          hosts: %s
          gather_facts: false
          tasks:
            - name: A map pinned at the default pin directory
              ansible.builtin.command:
                argv: ["{{ ansible_playbook_python }}", "-c", %s]
              changed_when: true
            - name: /sys/fs/bpf is a bpffs, holding this host's pins only
              ansible.builtin.command: stat -f -c %%T /sys/fs/bpf
              register: fstype
              changed_when: false
            - name: Check it
              ansible.builtin.assert:
                that:
                  - fstype.stdout == 'bpf_fs'
        - name: The other lab host does not see it
          hosts: %s
          gather_facts: false
          tasks:
            - name: Look for the pin
              ansible.builtin.stat:
                path: /sys/fs/bpf/mizar/probe
              register: probe
            - name: Absent here
              ansible.builtin.assert:
                that:
                  - not probe.stat.exists
        - name: Without a view, a lab host sees the machine's whole bpffs
          hosts: %s
          gather_facts: false
          vars:
            ansible_mizar_bpffs_view: false
          tasks:
            - name: Look for the pin through the views directory
              ansible.builtin.stat:
                path: /sys/fs/bpf/lab/%s/mizar/probe
                get_checksum: false  # a pin cannot be read
                get_mime: false
              register: probe
            - name: Present there
              ansible.builtin.assert:
                that:
                  - probe.stat.exists
        """ % (C1, json.dumps(PIN_MAP), C2, ALIAS, C1))
    assert res.ok(), res
    pin = os.path.join(VIEWS, C1, "mizar", "probe")
    assert libbpf.pin_kind(pin) == "map", "the map is not at %s on the machine's bpffs" % pin
    fd = libbpf.obj_get(pin)
    try:
        assert libbpf.map_info(fd)["name"] == "mzprobe"
    finally:
        os.close(fd)
    assert not os.path.exists(os.path.join(VIEWS, C2, "mizar"))


NETNS_BY_PYROUTE2 = "from pyroute2 import netns; netns.create(%r)"


def test_namespaces_created_in_a_task_outlive_it(ansible, hosts):
    res = _run(ansible, hosts, "inner.yml", """\
        - name: Create namespaces from inside a lab host
          hosts: %s
          gather_facts: false
          tasks:
            - name: With iproute2
              ansible.builtin.command: ip netns add %s
              changed_when: true
            - name: With pyroute2
              ansible.builtin.command:
                argv: ["{{ ansible_playbook_python }}", "-c", %s]
              changed_when: true
        """ % (C1, INNER[0], json.dumps(NETNS_BY_PYROUTE2 % INNER[1])))
    assert res.ok(), res
    lab_ns = os.stat("/run/netns/" + C1).st_ino
    for ns in INNER[:2]:
        assert nsenter.netns_exists(ns), "%s vanished with the task" % ns
        assert _is_mount("/run/netns/" + ns), "%s is not a namespace bind mount here" % ns
        assert os.stat("/run/netns/" + ns).st_ino != lab_ns
        # a namespace of its own, usable from the machine
        assert [lk["ifname"] for lk in netlink.links(ns)] == ["lo"]


def _is_mount(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_nothing_leaks_where_root_is_a_shared_mount(ansible, hosts):
    """On systemd machines / (and /sys) are shared mounts: the connection's
    sysfs and bpffs mounts must stay in its own mount namespace, while a
    namespace created inside still reaches the machine. Simulated by running
    ansible-playbook in a mount namespace whose mounts are all shared."""
    probe = ('"$@" >&2 || exit 1; echo "sysfs-net: $(ls /sys/class/net | tr "\\n" " ")"; '
             'echo "bpffs: $(stat -f -c %T /sys/fs/bpf)"; echo "sys-mounts: $(grep -c " /sys " /proc/self/mountinfo)"')
    wrap = ["unshare", "--mount", "--propagation", "shared", "--", "sh", "-c", probe, "sh"]
    res = _run(ansible, hosts, "shared.yml", """\
        - name: A lab host task where / is shared
          hosts: %s
          gather_facts: true
          tasks:
            - name: Facts still come from the namespace
              ansible.builtin.assert:
                that:
                  - ansible_facts['interfaces'] | sort == ['e0', 'e1', 'lo']
            - name: Create a namespace
              ansible.builtin.command: ip netns add %s
              changed_when: true
        """ % (C2, INNER[2]), wrap=wrap)
    assert res.rc == 0, res
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line and
                 line.split(": ", 1)[0] in ("sysfs-net", "bpffs", "sys-mounts"))
    assert sorted(lines["sysfs-net"].split()) == sorted(os.listdir("/sys/class/net")), \
        "the machine's /sys was remounted: %s" % lines
    assert lines["bpffs"] == "bpf_fs"
    assert lines["sys-mounts"] == "1"
    assert nsenter.netns_exists(INNER[2]) and _is_mount("/run/netns/" + INNER[2])


def test_no_process_is_left_in_a_lab_host(hosts):
    for ns in (C1, C2):
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=True).stdout
        assert out.split() == [], "processes left in %s: %s" % (ns, out)


def test_a_missing_namespace_is_reported_clearly(ansible, tmp_path):
    inv = write_inventory(tmp_path / "inv", {MISSING: {}},
                          group_vars={"ansible_connection": "mizar.transit.netns",
                                      "ansible_python_interpreter": sys.executable})
    res = _run(ansible, inv, "missing.yml", """\
        - name: A lab host that was never created
          hosts: mizar_hosts
          gather_facts: false
          tasks:
            - name: Anything
              ansible.builtin.command: "true"
              changed_when: false
        """)
    assert res.rc != 0
    assert res.recap[MISSING]["unreachable"] == 1, res
    assert "no network namespace /run/netns/%s" % MISSING in res.stdout, res
    assert "mizar.transit.lab" in res.stdout
    assert not os.path.exists(os.path.join(VIEWS, MISSING))
