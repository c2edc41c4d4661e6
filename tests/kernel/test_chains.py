"""Chains of functions in one stage (bpf/include/mzr_stages.h, bpf/stages.py set_chain), on the real kernel:
order, the verdict handed on, a drop ending the chain, the swap seen whole under traffic, the empty stage."""
import os
import struct
import threading

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, loader, stages

from packets import XDP_DROP, XDP_PASS, XDP_TX, plain_udp

from .conftest import BPF_OUT

HOST_IP = "192.168.77.1"
ACL_OBJ = os.path.join(BPF_OUT, "functions", "acl.bpf.o")
IDS = {"chain_a": 1, "chain_b": 2, "chain_c": 3, "chain_d": 4, "chain_tx": 5, "chain_drop": 6}
STAGE = "on_xdp_pass"  # what plain_udp() meets: not Geneve to this host


@pytest.fixture
def ld(veth, pin_dir, obj_dir):
    """A datapath whose transit program is attached (native) to a0."""
    d = loader.Loader(pin_dir, obj_dir, netns=veth)
    d.load()
    d.converge({"if_cfg": {"ip": HOST_IP, "mac": "02:00:00:00:00:01", "ifindex": 2}})
    d.attach("transit", "a0")
    yield d
    d.teardown()


class Chain:
    """The chain test programs, each loaded once against the datapath's maps."""

    def __init__(self, d, chain_obj):
        self.d = d
        self.objs = []
        self.progs = {}
        for name in IDS:
            obj, prog = stages.load_stage(d.pin_dir, chain_obj, name)
            self.objs.append(obj)
            self.progs[name] = prog

    def __getitem__(self, name):
        return self.progs[name]

    def close(self):
        for o in self.objs:
            o.close()


@pytest.fixture
def chain(ld, chain_obj):
    c = Chain(ld, chain_obj)
    yield c
    c.close()


def transit(d):
    (a,) = [x for x in d.attachments() if x["iface"] == "a0"]
    fd = libbpf.prog_fd_by_id(a["prog_id"])
    return libbpf.Program(fd, owned=True)


def run(d, pkt=None, repeat=1):
    prog = transit(d)
    try:
        return prog.test_run(pkt or plain_udp(), repeat=repeat).retval
    finally:
        prog.close()


def trace(d):
    """[(function id, verdict it was handed)] of the last packets, and reset."""
    with d.map("mzt_chain_trace") as m:
        raw = m.lookup(bytes(4))
        n = struct.unpack_from("<I", raw)[0]
        ids = struct.unpack_from("<8I", raw, 4)
        verdicts = struct.unpack_from("<8I", raw, 36)
        m.update(bytes(4), bytes(len(raw)))
    return [(ids[i], verdicts[i]) for i in range(n)]


def hits(d):
    with d.map("mzt_chain_hits") as m:
        return dict((name, struct.unpack("<Q", m.lookup(struct.pack("<I", i)))[0]) for name, i in IDS.items())


def test_functions_run_in_order_each_handed_the_verdict_the_previous_left(ld, chain):
    st = stages.Stages(ld.pin_dir)
    res = st.set_chain(STAGE, [chain["chain_a"], chain["chain_tx"], chain["chain_b"]])
    assert (res["changed"], res["action"], res["bank"], res["old_chain"]) == (True, "installed", 1, [])
    assert [c["name"] for c in res["chain"]] == ["chain_a", "chain_tx", "chain_b"]
    trace(ld)
    assert run(ld) == XDP_TX, "the verdict chain_tx left is the packet's"
    assert trace(ld) == [(1, XDP_PASS), (5, XDP_PASS), (2, XDP_TX)]

    listed = st.list()[STAGE]
    assert [e["name"] for e in listed["chain"]] == ["chain_a", "chain_tx", "chain_b"]
    assert [e["slot"] for e in listed["chain"]] == [abi.stage_slot(1, abi.STAGES[STAGE], p) for p in range(3)]
    assert listed["bank"] == 1 and all(e["pinned"] for e in listed["chain"])
    assert [os.path.exists(st.layout.stage(STAGE, p)) for p in range(4)] == [True, True, True, False]
    assert st.stale() == {}, "the old bank was emptied"

    again = st.set_chain(STAGE, [chain["chain_a"], chain["chain_tx"], chain["chain_b"]])
    assert (again["changed"], again["action"], again["bank"]) == (False, "unchanged", 1)
    other = st.set_chain(STAGE, [chain["chain_b"], chain["chain_a"]])
    assert (other["action"], other["bank"], other["old_chain"]) == ("replaced", 0, res["old_chain"] + [
        c["prog_id"] for c in res["chain"]])
    trace(ld)
    assert run(ld) == XDP_PASS and trace(ld) == [(2, XDP_PASS), (1, XDP_PASS)]
    assert [os.path.exists(st.layout.stage(STAGE, p)) for p in range(3)] == [True, True, False]


def test_a_drop_ends_the_chain(ld, chain):
    stages.Stages(ld.pin_dir).set_chain(STAGE, [chain["chain_drop"], chain["chain_a"]])
    trace(ld)
    before = hits(ld)
    assert run(ld) == XDP_DROP
    assert trace(ld) == [(6, XDP_PASS)]
    after = hits(ld)
    assert after["chain_drop"] == before["chain_drop"] + 1 and after["chain_a"] == before["chain_a"], \
        "the second function never saw the packet"


def test_the_acl_hands_on_along_the_chain(ld, chain):
    """The shipped ACL lets a packet it does not drop go to the next function."""
    acl, prog = stages.load_stage(ld.pin_dir, ACL_OBJ, "acl_on_xdp_redirect")
    try:
        stages.Stages(ld.pin_dir).set_chain(STAGE, [prog, chain["chain_b"]])
        trace(ld)
        assert run(ld) == XDP_PASS
        assert trace(ld) == [(2, XDP_PASS)], "after the ACL (no rules), the next function got the packet"
    finally:
        acl.close()


def test_the_empty_stage_and_the_removed_chain_fall_through(ld, chain):
    st = stages.Stages(ld.pin_dir)
    assert st.list()[STAGE] is None and run(ld) == XDP_PASS and trace(ld) == []
    st.set_chain(STAGE, [chain["chain_a"], chain["chain_drop"]])
    assert run(ld) == XDP_DROP
    res = st.remove(STAGE)
    assert res["changed"] and not st.remove(STAGE)["changed"]
    trace(ld)
    assert run(ld) == XDP_PASS and trace(ld) == []
    assert st.list()[STAGE] is None and st.stale() == {}
    assert not [p for p in range(abi.CHAIN_MAX) if os.path.exists(st.layout.stage(STAGE, p))]
    with pytest.raises(stages.StageError, match="holds 8 functions at most"):
        st.set_chain(STAGE, [chain["chain_a"]] * (abi.CHAIN_MAX + 1))


def test_a_swap_is_seen_whole_under_traffic(ld, chain):
    """Packets run while the chain swaps back and forth between [a, b] and
    [c, d] (each swap waits for the packets in flight before it empties the
    old bank): a packet that ran a also ran b, and c goes with d, so no
    packet ran a mix or a part of a chain."""
    st = stages.Stages(ld.pin_dir)
    old, new = [chain["chain_a"], chain["chain_b"]], [chain["chain_c"], chain["chain_d"]]
    st.set_chain(STAGE, old)
    stop = threading.Event()
    runs, errors = [], []

    def traffic():
        try:
            prog = transit(ld)
            try:
                while not stop.is_set():
                    assert prog.test_run(plain_udp(), repeat=200).retval == XDP_PASS
                    runs.append(200)  # list.append is atomic
            finally:
                prog.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=traffic) for dummy in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            st.set_chain(STAGE, new if i % 2 == 0 else old)
            assert st.stale() == {}
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    h = hits(ld)
    assert h["chain_a"] == h["chain_b"] and h["chain_c"] == h["chain_d"], h
    assert h["chain_a"] > 0 and h["chain_c"] > 0, "traffic met both chains: %s" % h
    assert h["chain_a"] + h["chain_c"] == sum(runs)


def test_slots_an_interrupted_swap_left_are_unreachable_and_cleared(ld, chain):
    """A swap killed after filling the idle bank leaves programs no packet
    reaches; stale() names them and clear_stale() empties them."""
    st = stages.Stages(ld.pin_dir)
    st.set_chain(STAGE, [chain["chain_a"]])  # bank 1 is live, bank 0 empty
    idle = abi.stage_slot(0, abi.STAGES[STAGE], 0)
    with ld.map("mzr_stages") as arr:
        arr.update(struct.pack("<I", idle), struct.pack("<I", chain["chain_b"].fd))
    assert st.stale() == {STAGE: [idle]}
    trace(ld)
    assert run(ld) == XDP_PASS and trace(ld) == [(1, XDP_PASS)], "the idle bank is never run"
    assert st.clear_stale(STAGE) == 1 and st.stale() == {}
    assert [e["name"] for e in st.list()[STAGE]["chain"]] == ["chain_a"]
