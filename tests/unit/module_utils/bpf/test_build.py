"""Building the BPF objects (bpf/build.py): the compiler command is the
Makefile's, names and sources of a tree, and the errors that name the input
at fault."""
import os
import re

import pytest

import machine
from ansible_collections.mizar.transit.plugins.module_utils.bpf import build
from ansible_collections.mizar.transit.plugins.module_utils.model import functions


def test_the_build_flags_are_the_makefiles():
    with open(os.path.join(machine.ROOT, "bpf", "Makefile")) as f:
        m = re.search(r"^CFLAGS\s*:=\s*(.*)$", f.read(), re.M)
    flags = [w for w in m.group(1).split() if not w.startswith("-I")]
    assert flags == list(build.BASE_CFLAGS)


def test_build_names_and_sources(tmp_path):
    assert functions.stem("/x/acl.bpf.c") == "acl" and functions.stem("my.fn.c") == "my.fn"
    src = tmp_path / "bpf"
    (src / "include").mkdir(parents=True)
    (src / "functions").mkdir()
    (src / "a.bpf.c").write_text("int x;\n")
    (src / "functions" / "f.bpf.c").write_text("int y;\n")
    (src / "notes.c").write_text("")  # an input, not a target
    assert build.tree_sources(str(src)) == ["a.bpf.c", "functions/f.bpf.c"]
    assert build.tree_inputs(str(src)) == ["a.bpf.c", "notes.c", "functions/f.bpf.c"]
    other = tmp_path / "f.c"
    other.write_text("int z;\n")
    with pytest.raises(build.BuildError, match=r"sources\[0\].*functions/f.bpf.o"):
        build.plan_build(str(src), str(tmp_path / "out"), sources=[str(other)])
    with pytest.raises(build.BuildError, match=r"sources\[0\].*not a C source"):
        build.plan_build(str(src), str(tmp_path / "out"), sources=["x.txt"])
    with pytest.raises(build.BuildError, match=r"cflags\[1\]"):
        build.plan_build(str(src), str(tmp_path / "out"), cflags=["-DA", ""])
    with pytest.raises(build.BuildError, match=r"^clang: cannot run"):
        build.plan_build(str(src), str(tmp_path / "out"), clang="/nonexistent/clang")
