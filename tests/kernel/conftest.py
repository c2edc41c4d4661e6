"""Fixtures for tests against the real kernel: BPF objects, private pin
directories, network namespaces, compiled test programs.

These tests need root, a mounted bpffs and a working libbpf. Without them
every test fails (never skips): a green run must mean the datapath ran.
"""
import itertools
import os
import shutil
import subprocess

import machine
import pytest

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import loader
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

ROOT = machine.ROOT
BPF_OUT = machine.BPF_OUT
BPFFS = machine.BPFFS

# Short, unique per run: namespace and pin names carry it, so that a run
# never touches another run's (or a person's) objects.
RUN = "mzt%04x" % (os.getpid() & 0xffff)
_seq = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def kernel_ready():
    """Fail loudly when the kernel tests cannot really run."""
    machine.require("kernel tests")


@pytest.fixture
def obj_dir():
    return BPF_OUT


def unique(kind):
    return "%s-%s%d" % (RUN, kind, next(_seq))


@pytest.fixture
def pin_dir():
    """A fresh pin directory under /sys/fs/bpf, removed afterwards."""
    path = os.path.join(BPFFS, unique("pins"))
    os.mkdir(path)
    yield path
    machine.bpffs_rmtree(path)
    assert not os.path.exists(path), "pin dir %s left behind" % path


@pytest.fixture
def datapath(pin_dir, obj_dir):
    """A datapath loaded at pin_dir, attached nowhere (its maps, programs
    and stage table are what the test needs); torn down afterwards."""
    d = loader.Loader(pin_dir, obj_dir)
    d.load()
    yield d
    d.teardown()


class Namespaces:
    """Creates uniquely named network namespaces; deletes them all at the end."""

    def __init__(self):
        self.names = []

    def __call__(self, label):
        name = "%s-%s" % (RUN, label)
        if nsenter.netns_exists(name):
            netlink.netns_del(name)
        netlink.netns_add(name)
        self.names.append(name)
        return name

    def cleanup(self):
        errors = []
        for name in reversed(self.names):
            try:
                netlink.netns_del(name)
            except Exception as e:  # keep going: leave as little as possible
                errors.append("%s: %s" % (name, e))
        self.names = []
        return errors


@pytest.fixture
def netns():
    ns = Namespaces()
    yield ns
    errors = ns.cleanup()
    assert not errors, errors


@pytest.fixture(scope="session")
def stage_obj(tmp_path_factory):
    """tests/progs/stage_verdicts.bpf.c, compiled."""
    src = os.path.join(machine.PROGS, "stage_verdicts.bpf.c")
    return machine.compile_bpf(src, str(tmp_path_factory.mktemp("stages")))


@pytest.fixture(scope="session")
def chain_obj(tmp_path_factory):
    """tests/progs/stage_chain.bpf.c, compiled."""
    src = os.path.join(machine.PROGS, "stage_chain.bpf.c")
    return machine.compile_bpf(src, str(tmp_path_factory.mktemp("chains")))


@pytest.fixture
def veth(netns):
    """A namespace with a veth pair a0 <-> a1, both up. Returns the namespace."""
    ns = netns("x")
    quiet_veth(ns, "a0", "a1")
    return ns


def quiet_veth(ns, a, b):
    """A veth pair a <-> b in ns, up, with IPv6 off: nothing but the test's
    own packets runs through programs attached there (counters stay exact)."""
    netlink.veth_add(a, b, netns=ns)
    for end in (a, b):
        netlink.sysctl("net/ipv6/conf/%s/disable_ipv6" % end, 1, netns=ns)
        netlink.link_set(end, netns=ns, up=True)


def edit_struct(text, struct, edit):
    """Rewrite the member lines of `struct <struct> { ... };` in a header with
    edit(lines) -> lines. Fails loudly when the struct is not found."""
    head = "struct %s {\n" % struct
    start = text.find(head)
    end = text.find("\n};", start)
    if start < 0 or end < 0:
        pytest.fail("struct %s not found in mzr_abi.h: update this test's ABI edit" % struct, pytrace=False)
    body = text[start + len(head):end + 1]
    lines = body.splitlines(True)
    return text[:start + len(head)] + "".join(edit(lines)) + text[end + 1:]


def member_line(lines, name):
    """Index of the member line declaring `name` (e.g. "ifindex")."""
    for i, line in enumerate(lines):
        decl = line.split("/*")[0].strip().rstrip(";")
        if decl.split()[-1:] == [name] or decl.endswith(" " + name) or decl.split("[")[0].endswith(" " + name):
            return i
    pytest.fail("member %s not found: update this test's ABI edit" % name, pytrace=False)


def build_variant(out_dir, edit_header=None, extra_srcs=()):
    """Build the datapath objects from a copy of bpf/ whose mzr_abi.h went
    through edit_header(text) -> text; also builds extra_srcs (stage
    programs) against the edited headers. Returns the object directory."""
    src = os.path.join(out_dir, "bpf")
    shutil.copytree(os.path.join(ROOT, "bpf"), src)
    if edit_header is not None:
        hdr = os.path.join(src, "include", "mzr_abi.h")
        with open(hdr) as f:
            text = f.read()
        with open(hdr, "w") as f:
            f.write(edit_header(text))
    objs = os.path.join(out_dir, "objs")
    res = subprocess.run(["make", "-s", "-C", src, "OUT=" + objs], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if res.returncode:
        pytest.fail("building the variant datapath failed:\n%s" % res.stdout, pytrace=False)
    for s in extra_srcs:
        machine.compile_bpf(s, objs, tree=src)
    return objs
