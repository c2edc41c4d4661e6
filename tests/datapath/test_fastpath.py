"""Structural guarantees of the fast paths, read from the compiled objects:
no map is ever written per packet (no update or delete helper at all; the
per-CPU counters are increments through a looked-up pointer), and every map
the programs read is an array, whose lookups the verifier inlines."""
import os
import re
import subprocess

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from harness import BPF_OUT, require_bpf

# BPF helper ids (include/uapi/linux/bpf.h)
ALLOWED = {1: "map_lookup_elem", 12: "tail_call", 23: "redirect", 44: "xdp_adjust_head",
           65: "xdp_adjust_tail"}  # the agent trims its ICMP "fragmentation needed" reply
ARRAYS = (libbpf.BPF_MAP_TYPE_ARRAY, libbpf.BPF_MAP_TYPE_PERCPU_ARRAY, libbpf.BPF_MAP_TYPE_PROG_ARRAY)


@pytest.mark.parametrize("obj", ["transit.bpf.o", "agent.bpf.o"])
def test_only_lookup_and_forwarding_helpers(obj):
    require_bpf()
    dis = subprocess.run(["llvm-objdump", "-d", os.path.join(BPF_OUT, obj)], check=True,
                         capture_output=True, text=True).stdout
    calls = set(int(c) for c in re.findall(r"\bcall (\d+)\b", dis))
    assert calls, "no helper call found: the disassembly was not read"
    assert calls <= set(ALLOWED), "unexpected helpers: %s" % sorted(calls - set(ALLOWED))
    assert 2 not in calls and 3 not in calls  # map_update_elem, map_delete_elem


@pytest.mark.parametrize("obj", ["transit.bpf.o", "agent.bpf.o"])
def test_every_map_is_an_array(obj):
    require_bpf()
    with libbpf.BpfObject(os.path.join(BPF_OUT, obj)) as o:
        for name in o.map_names():
            assert o.map_def(name)["type"] in ARRAYS, name
