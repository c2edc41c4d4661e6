"""What a test run on the real kernel needs, checked once: root, a mounted
bpffs, the system libbpf, pyroute2, the BPF objects. Tests that need them
fail loudly when they are missing; they never skip. Also: building the
test-only BPF programs (tests/progs) exactly as the collection builds its own."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPF_SRC = os.path.join(ROOT, "bpf")
BPF_OUT = os.path.join(ROOT, ".build", "bpf")
PROGS = os.path.join(ROOT, "tests", "progs")
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


def bpffs_rmtree(path):
    """Remove a pin tree, detaching pinned links first (a pinned link keeps
    its program attached even after its pin's directory is gone)."""
    from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf, xdp

    if not os.path.exists(path):
        return
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                if libbpf.pin_kind(p) == "link":
                    xdp.link_detach_pinned(p)
            except Exception:  # a pin we cannot inspect: unlinking it below still drops its reference
                pass
    shutil.rmtree(path, ignore_errors=True)


def compile_bpf(src, out_dir, tree=BPF_SRC):
    """Build one test-only .bpf.c into out_dir; returns the .o. The command is
    the collection's own (bpf/build.py's, whose flags are bpf/Makefile's),
    run in the bpf/ tree `tree` so the program includes that tree's headers
    (a test's edited copy, or the real one)."""
    from ansible_collections.mizar.transit.plugins.module_utils.bpf import build
    from ansible_collections.mizar.transit.plugins.module_utils.model import functions

    out = os.path.join(out_dir, functions.stem(src) + functions.OBJECT_SUFFIX)
    cmd = build.command("clang", (), os.path.abspath(src), out)
    res = subprocess.run(cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         check=False)
    if res.returncode:
        pytest.fail("compiling %s failed:\n%s\ncommand: %s" % (src, res.stdout, " ".join(cmd)), pytrace=False)
    return out


def converge_at(commit, out_dir, maps_dir, desired):
    """tables.converge(maps_dir, desired) as the control plane of an earlier
    commit does it: its plugins, from git, in a child Python (what an
    upgraded host's maps hold, written by the code that wrote them)."""
    res = subprocess.run(["git", "-C", ROOT, "archive", commit, "plugins"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=False)
    if res.returncode:
        pytest.fail("the plugins of commit %s are not in this checkout's git history: %s"
                    % (commit, res.stderr.decode(errors="replace").strip()), pytrace=False)
    top = os.path.join(out_dir, "collections")
    coll = os.path.join(top, "ansible_collections", "mizar", "transit")
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        tar.extractall(coll)
    code = ("import json, sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from ansible_collections.mizar.transit.plugins.module_utils.bpf import tables\n"
            "tables.converge(sys.argv[2], json.loads(sys.stdin.read()))\n")
    res = subprocess.run([sys.executable, "-c", code, top, maps_dir], input=json.dumps(desired),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if res.returncode:
        pytest.fail("converging with the control plane of %s failed:\n%s" % (commit, res.stdout), pytrace=False)


def build_at(commit, out_dir, progs=()):
    """The datapath objects of an earlier commit, built from git into
    <out_dir>/objs, with the test programs of its tests/progs named in progs
    (file names) built against its headers: what a host that ran that
    commit has. Returns the objects directory."""
    res = subprocess.run(["git", "-C", ROOT, "archive", commit, "bpf", "tests/progs"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=False)
    if res.returncode:
        pytest.fail("the sources of commit %s are not in this checkout's git history (a shallow clone?): %s"
                    % (commit, res.stderr.decode(errors="replace").strip()), pytrace=False)
    tree = res.stdout
    src = os.path.join(out_dir, "src")
    with tarfile.open(fileobj=io.BytesIO(tree)) as tar:
        tar.extractall(src)
    objs = os.path.join(out_dir, "objs")
    res = subprocess.run(["make", "-s", "-C", os.path.join(src, "bpf"), "OUT=" + objs], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if res.returncode:
        pytest.fail("building the objects of %s failed:\n%s" % (commit, res.stdout), pytrace=False)
    for name in progs:
        compile_bpf(os.path.join(src, "tests", "progs", name), objs, tree=os.path.join(src, "bpf"))
    return objs
