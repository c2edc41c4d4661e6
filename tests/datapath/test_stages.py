"""Stage slots: a program in each slot decides the verdict of the packets
that reach that stage, sees the packet as the pipeline prepared it, and
shares the main program's maps; an empty slot falls through."""
import os
import subprocess

import pytest

import fixtures as F
from ansible_collections.mizar.transit.plugins.module_utils import libbpf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="module")
def stage_progs(dp, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bpf") / "stage_verdicts.bpf.o")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
                    "-I", os.path.join(ROOT, "bpf", "include"),
                    "-I", "/usr/include/%s-linux-gnu" % os.uname().machine,
                    "-c", os.path.join(ROOT, "tests", "kernel", "progs", "stage_verdicts.bpf.c"), "-o", out],
                   check=True)
    obj = libbpf.BpfObject(out, pin_root=dp.pin_dir).load()
    yield dict((n, obj.program(n)) for n in ("stage_drop", "stage_pass", "stage_count"))
    for stage in F.abi_stages():
        dp.set_stage(stage, None)
    obj.close()


# stage -> (fixture reaching it, program installed, verdict with it)
CASES = [
    ("on_xdp_tx", "bouncer", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "arp_remote", "stage_drop", F.XDP_DROP),
    ("on_xdp_pass", "ssh", "stage_drop", F.XDP_DROP),
    ("on_xdp_redirect", "local", "stage_drop", F.XDP_DROP),
    ("on_xdp_redirect", "bypass", "stage_drop", F.XDP_DROP),
    ("on_xdp_drop", "ttl1", "stage_pass", F.XDP_PASS),
    ("on_xdp_drop", "unknown_vni", "stage_pass", F.XDP_PASS),
    ("on_xdp_scaled_ep", "scaled_no_fn", "stage_pass", F.XDP_PASS),
]


@pytest.mark.parametrize("stage,fixture,prog,verdict", CASES, ids=["%s-%s" % (c[0], c[1]) for c in CASES])
def test_stage_changes_verdict(dp, stage_progs, stage, fixture, prog, verdict):
    f = F.BY_NAME[fixture]
    dp.set_stage(stage, stage_progs[prog])
    try:
        got, out, dummy = dp.run_fixture(f)
    finally:
        dp.set_stage(stage, None)
    assert got == verdict
    # the stage saw, and left, the packet exactly as the pipeline prepared it
    assert out == f.output
    # with the slot empty again, the default verdict is back
    assert dp.run_fixture(f)[0] == f.verdict


def test_stage_in_other_slot_is_not_called(dp, stage_progs):
    dp.set_stage("on_xdp_drop", stage_progs["stage_pass"])
    try:
        assert dp.run_fixture(F.BY_NAME["bouncer"])[0] == F.XDP_TX
        assert dp.run_fixture(F.BY_NAME["local"])[0] == F.XDP_REDIRECT
    finally:
        dp.set_stage("on_xdp_drop", None)


def test_stage_shares_maps(dp, stage_progs):
    slot = (95).to_bytes(4, "little")  # STAGE_TEST_COUNTER of stage_verdicts.bpf.c

    def mark():
        return sum(int.from_bytes(v, "little") for v in dp.counters_map.lookup(slot))

    before = mark()
    dp.set_stage("on_xdp_tx", stage_progs["stage_count"])
    try:
        assert dp.run_fixture(F.BY_NAME["bouncer"])[0] == F.XDP_DROP
    finally:
        dp.set_stage("on_xdp_tx", None)
    assert mark() == before + 1
