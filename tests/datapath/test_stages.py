"""Stage slots: a program in each slot decides the verdict of the packets
that reach that stage, sees the packet as the pipeline prepared it, and
shares the main program's maps; an empty slot falls through."""
import os
import struct

import pytest

import fixtures as F
import machine
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf


def _compile(tmp_path_factory, name):
    return machine.compile_bpf(os.path.join(machine.PROGS, name + ".bpf.c"), str(tmp_path_factory.mktemp("bpf")))


@pytest.fixture(scope="module")
def stage_progs(dp, tmp_path_factory):
    obj = libbpf.BpfObject(_compile(tmp_path_factory, "stage_verdicts"), pin_root=dp.pin_dir).load()
    rec = libbpf.BpfObject(_compile(tmp_path_factory, "stage_record"), pin_root=dp.pin_dir).load()
    progs = dict((n, obj.program(n)) for n in ("stage_drop", "stage_pass", "stage_count"))
    progs["stage_record"] = rec.program("stage_record")
    yield progs
    for stage in F.abi_stages():
        dp.set_stage(stage, None)
    rec.close()
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
    # the agent runs the stages of what it does itself
    ("on_xdp_redirect", "agent_local", "stage_drop", F.XDP_DROP),
    ("on_xdp_redirect", "agent_local_bypass", "stage_drop", F.XDP_DROP),
    ("on_xdp_redirect", "agent_arp_request_local", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer_divider", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer_arp", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "agent_self_bouncer_arp_probe", "stage_drop", F.XDP_DROP),
    ("on_xdp_tx", "agent_arp_probe_local", "stage_drop", F.XDP_DROP),
    ("on_xdp_drop", "agent_spoof", "stage_pass", F.XDP_PASS),
    ("on_xdp_drop", "agent_nocfg", "stage_pass", F.XDP_PASS),
    ("on_xdp_drop", "agent_mcast_mdns", "stage_pass", F.XDP_PASS),
    ("on_xdp_drop", "agent_self_bouncer_no_endpoint", "stage_pass", F.XDP_PASS),
    ("on_xdp_scaled_ep", "agent_self_bouncer_scaled", "stage_pass", F.XDP_PASS),
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


# fixture -> (stage, the stage context it must see: vni, ifindex, flags, verdict)
AGENT_CONTEXTS = {
    "agent_local": ("on_xdp_redirect", (100, 9, 0, F.XDP_REDIRECT)),
    "agent_local_bypass": ("on_xdp_redirect", (100, 10, 1, F.XDP_REDIRECT)),
    "agent_self_bouncer": ("on_xdp_tx", (100, 2, 1, F.XDP_REDIRECT)),
    "agent_self_bouncer_divider": ("on_xdp_tx", (100, 2, 1, F.XDP_REDIRECT)),
    "agent_self_bouncer_arp": ("on_xdp_tx", (100, 0, 0, F.XDP_TX)),
    "agent_arp_probe_local": ("on_xdp_tx", (100, 0, 0, F.XDP_TX)),
    "agent_spoof": ("on_xdp_drop", (100, 0, 0, F.XDP_DROP)),
    "agent_nocfg": ("on_xdp_drop", (0, 0, 0, F.XDP_DROP)),
    "agent_self_bouncer_scaled": ("on_xdp_scaled_ep", (100, 0, 0, F.XDP_DROP)),
}


@pytest.mark.parametrize("fixture", sorted(AGENT_CONTEXTS))
def test_agent_fills_the_stage_context(dp, stage_progs, fixture):
    """What a function reads at each agent stage: the VNI, the target, whether
    the packet is a whole tunnel packet, and the verdict to return to let it go."""
    f = F.BY_NAME[fixture]
    stage, want = AGENT_CONTEXTS[fixture]
    with libbpf.Map.from_pin(os.path.join(dp.pin_dir, "mzt_stage_seen")) as seen:
        seen.update(bytes(4), bytes(seen.value_size))
        dp.set_stage(stage, stage_progs["stage_record"])
        try:
            got, out, counters = dp.run_fixture(f)
        finally:
            dp.set_stage(stage, None)
        sc = struct.unpack("<6I", seen.lookup(bytes(4)))
    assert sc[:4] == want
    # where the chain goes on: the next position of bank 0 (the live one), bounded by the bank
    assert sc[4:] == (abi.stage_slot(0, abi.STAGES[stage], 1), abi.STAGE_BANK_SLOTS)
    # a function returning the context's verdict leaves everything as without it
    # (but for the drop counters of an empty ON_XDP_SCALED_EP: the function had the packet)
    assert (got, out) == (f.verdict, f.output)
    assert counters == ({"scaled": 1} if stage == "on_xdp_scaled_ep" else f.counters)


def test_agent_encapsulation_to_a_remote_bouncer_is_no_stage_event(dp, stage_progs):
    """That bouncer runs ON_XDP_TX, the destination's host ON_XDP_REDIRECT:
    the agent's plain encapsulation is seen by neither stage here."""
    for stage in ("on_xdp_tx", "on_xdp_redirect"):
        dp.set_stage(stage, stage_progs["stage_drop"])
    try:
        for name in ("agent_encap", "agent_arp", "agent_arp_probe"):
            f = F.BY_NAME[name]
            assert dp.run_fixture(f) == (f.verdict, f.output, f.counters)
    finally:
        for stage in ("on_xdp_tx", "on_xdp_redirect"):
            dp.set_stage(stage, None)
