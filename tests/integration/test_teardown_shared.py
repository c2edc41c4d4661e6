"""teardown.yml on lab hosts that share one object directory: lab hosts are
namespaces of one machine, so with one mizar_bpf_dir for all they remove
the same directory at the same moment. Exactly one of them removes it and
says changed, none fails, and a second teardown changes nothing."""
import os
import shutil

import objdir
import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import dryload

from .conftest import RUN, LabHosts

HOSTS = ["%st%d" % (RUN, i) for i in (1, 2, 3)]
LAB_HOSTS = LabHosts(dict((h, "192.168.78.%d" % i) for i, h in enumerate(HOSTS, 1)), RUN + "tb",
                     "/sys/fs/bpf/%s-td" % RUN)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return str(tmp_path_factory.mktemp("shared") / "bpf")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, shared):
    # one directory for all: what the shipped lab avoids, and teardown must survive
    return LAB_HOSTS.inventory(tmp_path_factory.mktemp("inventory"), mizar_bpf_dir=shared)


@pytest.fixture(scope="module")
def lab_hosts(ansible, inventory):
    res = LAB_HOSTS.playbook(ansible, inventory)
    try:
        assert res.ok(), res
        yield
    finally:
        errors = LAB_HOSTS.remove(ansible, inventory)
        assert not errors, errors


def test_teardown_of_hosts_sharing_the_object_directory(ansible, inventory, lab_hosts, shared):
    for attempt in range(3):  # the race is a matter of timing: give it several chances
        objdir.fill(shared, files=50)
        # the verifier's answers other tests left in /run (one directory for
        # every lab host too) would be a second shared thing to remove
        shutil.rmtree(dryload.CACHE_DIR, ignore_errors=True)
        res = ansible.playbook(inventory, "mizar.transit.teardown")
        assert res.ok(), res
        assert not os.path.lexists(shared)
        assert os.listdir(os.path.dirname(shared)) == []  # no .bpf.removing-* left behind
        assert sorted(res.changed(h) for h in HOSTS) == [0, 0, 1], res.recap  # the remover says so
    again = ansible.playbook(inventory, "mizar.transit.teardown")
    assert again.ok(), again
    assert [again.changed(h) for h in HOSTS] == [0, 0, 0], again.recap
