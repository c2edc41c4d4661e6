"""teardown.yml on lab hosts that share one object directory: lab hosts are
namespaces of one machine, so with one mizar_bpf_dir for all they remove
the same directory at the same moment. Exactly one of them removes it and
says changed, none fails, and a second teardown changes nothing."""
import os

import pytest

from .conftest import (RUN, bpffs_rmtree, remove_bridge_if_unused, remove_lab_host, shipped_host_settings,
                       write_inventory)

HOSTS = ["%st%d" % (RUN, i) for i in (1, 2, 3)]
IPS = dict((h, "192.168.78.%d" % i) for i, h in enumerate(HOSTS, 1))
BRIDGE = RUN + "tb"
BPFFS_ROOT = "/sys/fs/bpf/%s-td" % RUN
LAB_VARS = ["-e", "mizar_lab_bridge=%s" % BRIDGE, "-e", "mizar_lab_bpffs_root=%s" % BPFFS_ROOT]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return str(tmp_path_factory.mktemp("shared") / "bpf")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, shared):
    settings = shipped_host_settings()
    settings["ansible_mizar_bpffs_root"] = BPFFS_ROOT
    settings["mizar_bpf_dir"] = shared  # one directory for all: what the shipped lab avoids, and teardown must survive
    return write_inventory(tmp_path_factory.mktemp("inventory"),
                           dict((h, {"mizar_underlay_ip": ip}) for h, ip in IPS.items()), group_vars=settings)


@pytest.fixture(scope="module")
def lab_hosts(ansible, inventory):
    res = ansible.playbook(inventory, "mizar.transit.lab", "-e", "mizar_lab_state=present", *LAB_VARS)
    try:
        assert res.ok(), res
        yield
    finally:
        ansible.playbook(inventory, "mizar.transit.lab", "-e", "mizar_lab_state=absent",
                         "-e", "mizar_lab_bpffs_purge=true", *LAB_VARS)
        errors = []
        for h in HOSTS:
            errors += remove_lab_host(h, bridge=BRIDGE, bpffs_root=BPFFS_ROOT)
        remove_bridge_if_unused(BRIDGE)
        bpffs_rmtree(BPFFS_ROOT)
        assert not errors, errors


def _fill(path):
    for i in range(20):
        d = os.path.join(path, "functions%d" % i)
        os.makedirs(d)
        for j in range(50):
            with open(os.path.join(d, "f%d.bpf.o" % j), "wb") as f:
                f.write(b"\x7fELF")


def test_teardown_of_hosts_sharing_the_object_directory(ansible, inventory, lab_hosts, shared):
    for attempt in range(3):  # the race is a matter of timing: give it several chances
        _fill(shared)
        res = ansible.playbook(inventory, "mizar.transit.teardown")
        assert res.ok(), res
        assert not os.path.lexists(shared)
        assert os.listdir(os.path.dirname(shared)) == []  # no .bpf.removing-* left behind
        assert sorted(res.changed(h) for h in HOSTS) == [0, 0, 1], res.recap  # the remover says so
    again = ansible.playbook(inventory, "mizar.transit.teardown")
    assert again.ok(), again
    assert [again.changed(h) for h in HOSTS] == [0, 0, 0], again.recap
