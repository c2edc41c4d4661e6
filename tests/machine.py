"""What a test run on the real kernel needs, checked once: root, a mounted
bpffs, the system libbpf, pyroute2, the BPF objects. Tests that need them
fail loudly when they are missing; they never skip."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPF_OUT = os.path.join(ROOT, ".build", "bpf")
BPFFS = "/sys/fs/bpf"


def bpffs_mounted():
    with open("/proc/mounts") as f:
        return any(line.split()[1] == BPFFS and line.split()[2] == "bpf" for line in f)


def problems(objects=("transit", "agent", "pass"), ansible=False):
    """What is missing, in words (empty when nothing is)."""
    from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
    from ansible_collections.mizar.transit.plugins.module_utils.host import netlink

    out = []
    if os.geteuid() != 0:
        out.append("not root (BPF, XDP, namespaces and bridges need it)")
    if not bpffs_mounted():
        out.append("no bpffs at %s (mount -t bpf bpf %s)" % (BPFFS, BPFFS))
    try:
        libbpf.lib()
    except libbpf.BpfError as e:
        out.append(str(e))
    if not netlink.HAS_PYROUTE2:
        out.append("pyroute2 missing (run scripts/bootstrap)")
    for name in objects:
        if not os.path.exists(os.path.join(BPF_OUT, "%s.bpf.o" % name)):
            out.append("%s/%s.bpf.o missing (run scripts/bootstrap)" % (BPF_OUT, name))
    if ansible and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")):
        out.append("no ansible-playbook next to %s (run scripts/bootstrap)" % sys.executable)
    return out


def require(what, **kw):
    """Fail the test (or session) when the machine lacks anything."""
    missing = problems(**kw)
    if missing:
        pytest.fail("%s cannot run: %s" % (what, "; ".join(missing)), pytrace=False)
