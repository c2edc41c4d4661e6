"""Fixtures for the Ansible end-to-end tests: real ansible-playbook runs
against real network namespaces, bridges, XDP and bpffs.

They need root, a mounted bpffs, libbpf, pyroute2, the built BPF objects and
the collection tree; without them every test fails (never skips). Every name
a test creates carries RUN, so runs never touch each other's (or a person's)
lab, and every fixture cleans up in its finalizer, also after a failure.
"""
import contextlib
import os
import re
import subprocess
import sys
import textwrap

import machine
import pytest
import yaml
from machine import bpffs_rmtree

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

from ansible_collections.mizar.transit.plugins.module_utils.ops import lab_host as lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BPF_OUT = os.path.join(ROOT, ".build", "bpf")
PASS_OBJ = os.path.join(BPF_OUT, "pass.bpf.o")
BPFFS = "/sys/fs/bpf"
LAB_INVENTORY = os.path.join(ROOT, "inventories", "lab")
LAB = "mizar.transit.lab"

# Short and unique per run: lab hosts are named RUN + "h1", ... and must leave
# room in interface names (bridge RUN + "br").
RUN = "mzi%04x" % (os.getpid() & 0xffff)

_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+"
                    r"skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)
_COUNTS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


@pytest.fixture(scope="session", autouse=True)
def integration_ready():
    """Fail loudly when these tests cannot really run."""
    machine.require("integration tests", objects=("pass",), ansible=True)


class Result:
    """A finished ansible-playbook run: rc, output, and the PLAY RECAP."""

    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.recap = {}
        for m in _RECAP.finditer(proc.stdout):
            self.recap[m.group(1)] = dict(zip(_COUNTS, map(int, m.groups()[1:])))

    def __str__(self):
        return "$ %s\n(rc %d)\n%s\n%s" % (" ".join(self.args), self.rc, self.stdout, self.stderr)

    __repr__ = __str__

    def changed(self, host="localhost"):
        return self.recap[host]["changed"]

    def ok(self):
        """rc 0 and no failed or unreachable host."""
        return self.rc == 0 and bool(self.recap) and all(
            not r["failed"] and not r["unreachable"] for r in self.recap.values())


class Ansible:
    """Runs ansible-playbook of the .venv with the collection from .build,
    isolated from the user's Ansible configuration."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
        env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_HOME=os.path.join(self.workdir, "ansible-home"), ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0")
        self.env = env

    def playbook(self, inventory, playbook, *extra, wrap=(), env=None):
        """Run a playbook (a path, or a name like mizar.transit.lab); wrap is a
        command prefix (e.g. unshare ...), env more environment variables."""
        args = list(wrap) + [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook)]
        args += list(extra)
        proc = subprocess.run(args, cwd=self.workdir, env=dict(self.env, **(env or {})), capture_output=True, text=True, timeout=300, check=False)
        return Result(args, proc)

    def write_playbook(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path


@pytest.fixture(scope="module")
def ansible(tmp_path_factory):
    return Ansible(tmp_path_factory.mktemp("ansible"))


def write_inventory(directory, hosts, group_vars=None, all_vars=None):
    """An inventory directory: hosts {name: vars} in group mizar_hosts,
    group_vars/mizar_hosts.yml and group_vars/all.yml from dicts."""
    os.makedirs(os.path.join(directory, "group_vars"), exist_ok=True)
    with open(os.path.join(directory, "hosts.yml"), "w") as f:
        yaml.safe_dump({"all": {"children": {"mizar_hosts": {"hosts": hosts}}}}, f, default_flow_style=False)
    for name, data in (("mizar_hosts", group_vars), ("all", all_vars)):
        if data:
            with open(os.path.join(directory, "group_vars", name + ".yml"), "w") as f:
                yaml.safe_dump(data, f, default_flow_style=False)
    return str(directory)


def shipped_host_settings():
    """group_vars/mizar_hosts.yml of the shipped lab inventory: the tests
    reach their lab hosts exactly as the shipped lab does."""
    with open(os.path.join(LAB_INVENTORY, "group_vars", "mizar_hosts.yml")) as f:
        return yaml.safe_load(f)


def remove_lab_host(name, bridge=lab.DEFAULT_BRIDGE, bpffs_root=None):
    """Remove whatever is left of a lab host, by hand (finalizers)."""
    errors = []
    for step in (lambda: netlink.link_del(lab.port_name(name)),
                 lambda: netlink.netns_del(name),
                 lambda: bpffs_root and bpffs_rmtree(os.path.join(bpffs_root, name))):
        try:
            step()
        except Exception as e:  # keep going: leave as little as possible
            errors.append("%s: %s" % (name, e))
    return errors


def remove_bridge_if_unused(bridge):
    br = netlink.link(bridge)
    if br is not None and not [lk for lk in netlink.links() if lk["master"] == br["index"]]:
        netlink.link_del(bridge)


class LabHosts:
    """Lab hosts of one test module, for runs of the lab playbook: ips
    {host: underlay address} (names carrying RUN), their own bridge and bpffs
    root. Gives the inventory, shaped like inventories/lab; runs the playbook
    with this lab's settings; removes whatever a run left."""

    def __init__(self, ips, bridge, bpffs_root):
        self.ips = dict(ips)
        self.hosts = list(self.ips)
        self.bridge = bridge
        self.bpffs_root = bpffs_root
        self.vars = ["-e", "mizar_lab_bridge=%s" % bridge, "-e", "mizar_lab_bpffs_root=%s" % bpffs_root]

    def inventory(self, directory, host_vars=None, **settings):
        """An inventory of these hosts with the shipped lab's host settings,
        this lab's bpffs root and then settings (group_vars/mizar_hosts.yml);
        host_vars: {host: more variables of the host}."""
        group_vars = shipped_host_settings()
        group_vars["ansible_mizar_bpffs_root"] = self.bpffs_root
        group_vars.update(settings)
        hosts = dict((h, dict({"mizar_underlay_ip": ip}, **(host_vars or {}).get(h, {}))) for h, ip in self.ips.items())
        return write_inventory(directory, hosts, group_vars=group_vars)

    def playbook(self, ansible, inventory, state="present", *extra):
        """ansible-playbook mizar.transit.lab with mizar_lab_state=state."""
        return ansible.playbook(inventory, LAB, "-e", "mizar_lab_state=%s" % state, *(self.vars + list(extra)))

    @contextlib.contextmanager
    def deployed(self, ansible, inventory):
        """The lab hosts made and the inventory deployed by
        mizar.transit.site (whose run it gives); after, whatever happened,
        torn down and the lab removed."""
        res = self.playbook(ansible, inventory)
        try:
            assert res.ok(), res
            site = ansible.playbook(inventory, "mizar.transit.site")
            assert site.ok(), site
            yield site
        finally:
            ansible.playbook(inventory, "mizar.transit.teardown")
            errors = self.remove(ansible, inventory)
            assert not errors, errors

    def remove(self, ansible, inventory):
        """Remove the lab whatever happened (finalizers): the playbook first,
        purging the bpffs views, then by hand. Returns the errors met."""
        self.playbook(ansible, inventory, "absent", "-e", "mizar_lab_bpffs_purge=true")
        errors = []
        for h in self.hosts:
            errors += remove_lab_host(h, bridge=self.bridge, bpffs_root=self.bpffs_root)
        remove_bridge_if_unused(self.bridge)
        bpffs_rmtree(self.bpffs_root)
        return errors


def ns_ping(netns, ip):
    """One ping from inside netns; True when answered."""
    return subprocess.run(["ip", "netns", "exec", netns, "ping", "-c1", "-W1", ip],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
