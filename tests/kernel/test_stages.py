"""Stage programs in the transit program's tail-call table, on the real kernel."""
import os
import struct
import threading

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, loader, libbpf, stages

from packets import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, geneve_bad_version, plain_udp

from .rebuild import rebuild

HOST_IP = "192.168.77.1"


@pytest.fixture
def ld(veth, pin_dir, obj_dir):
    """A Loader that has loaded the programs, its transit program attached (native) to a0."""
    d = loader.Loader(pin_dir, obj_dir, netns=veth)
    d.load()
    d.converge({"if_cfg": {"ip": HOST_IP, "mac": "02:00:00:00:00:01", "ifindex": 2}})
    res = d.attach("transit", "a0")
    assert res["after"]["mode"] == "native"
    yield d
    d.teardown()


def attached_prog_id(d):
    (a,) = [x for x in d.attachments() if x["iface"] == "a0"]
    return a["prog_id"]


def run(d, pkt):
    """Verdict of the transit program attached to a0 for one packet."""
    fd = libbpf.prog_fd_by_id(attached_prog_id(d))
    try:
        return libbpf.Program(fd).test_run(pkt).retval
    finally:
        os.close(fd)


def test_install_replace_remove_a_stage(ld, stage_obj):
    st = stages.Stages(ld.pin_dir)
    assert all(v is None for v in st.list().values())
    assert run(ld, plain_udp()) == XDP_PASS, "empty slot: the pipeline's own verdict"

    res = st.install("on_xdp_pass", stage_obj, "stage_drop")
    assert (res["changed"], res["action"], res["slot"]) == (True, "installed", abi.STAGES["on_xdp_pass"])
    listed = st.list()["on_xdp_pass"]
    assert listed["name"] == "stage_drop" and listed["pinned"] and listed["prog_id"] == res["prog_id"]
    assert listed["tag"] == res["tag"]
    assert os.path.exists(os.path.join(ld.pin_dir, "progs", "stage_on_xdp_pass"))
    assert run(ld, plain_udp()) == XDP_DROP

    again = st.install("on_xdp_pass", stage_obj, "stage_drop")
    assert (again["changed"], again["action"], again["prog_id"]) == (False, "unchanged", res["prog_id"])

    res2 = st.install(abi.STAGES["on_xdp_pass"], stage_obj, "stage_aborted")
    assert (res2["action"], res2["old_prog_id"]) == ("replaced", res["prog_id"])
    assert run(ld, plain_udp()) == XDP_ABORTED
    assert st.list()["on_xdp_pass"]["name"] == "stage_aborted"

    assert st.remove("on_xdp_pass")["changed"]
    assert not st.remove("on_xdp_pass")["changed"]
    assert st.list()["on_xdp_pass"] is None
    assert not os.path.exists(os.path.join(ld.pin_dir, "progs", "stage_on_xdp_pass"))
    assert run(ld, plain_udp()) == XDP_PASS

    with pytest.raises(stages.StageError, match="unknown stage"):
        st.install("on_xdp_bogus", stage_obj, "stage_drop")


def test_stage_program_shares_the_pinned_maps(ld, stage_obj):
    stages.Stages(ld.pin_dir).install("on_xdp_pass", stage_obj, "stage_count")
    before = ld.counters()["pass"]
    for dummy in range(7):
        assert run(ld, plain_udp()) == XDP_DROP
    with ld.map("mzr_counters") as m:
        per_cpu = m.lookup(struct.pack("<I", 95))
    assert sum(struct.unpack("<Q", v)[0] for v in per_cpu) == 7, "stage bumped the datapath's counter map"
    assert ld.counters()["pass"] == before + 7


def test_stage_needs_the_datapath_maps(pin_dir, stage_obj):
    with pytest.raises(stages.StageError, match="load the datapath first"):
        stages.load_stage(pin_dir, stage_obj, "stage_drop")


OLD = {"on_xdp_pass": "stage_drop", "on_xdp_drop": "stage_tx"}
NEW = {"on_xdp_pass": "stage_aborted", "on_xdp_drop": "stage_pass"}
VERDICTS = {"stage_drop": XDP_DROP, "stage_tx": XDP_TX, "stage_aborted": XDP_ABORTED, "stage_pass": XDP_PASS}


def _sources(stage_obj, spec):
    return dict((s, (stage_obj, p)) for s, p in spec.items())


def test_rebuild_never_shows_a_half_updated_table(ld, stage_obj):
    st = stages.Stages(ld.pin_dir)
    for s, p in OLD.items():
        st.install(s, stage_obj, p)
    old_table = stages.attached_table(attached_prog_id(ld))
    old_array = ld.status()["maps"]["mzr_stages"]["id"]
    seen = []

    def observe(step, info):
        # what the attached program reaches, at every step: all old or all new
        t = stages.attached_table(attached_prog_id(ld))
        names = dict((abi.STAGE_NAMES[k], stages._prog_summary(v)["name"]) for k, v in t.items())
        seen.append((step, names))
        assert names in (OLD, NEW), "step %s: attached table is %s" % (step, names)
        if step in ("loaded", "filled"):
            assert t == old_table

    res = rebuild(st, os.path.join(ld.obj_dir, "transit.bpf.o"), _sources(stage_obj, NEW), on_step=observe)
    assert [s for s, dummy in seen] == ["loaded", "filled", "switched", "pinned"]
    assert [n for dummy, n in seen] == [OLD, OLD, NEW, NEW]
    assert res["old_array_id"] == old_array and res["new_array_id"] != old_array
    assert [x["link"] for x in res["links"]] == [loader.link_name("a0", ld.netns)]
    assert ld.status()["maps"]["mzr_stages"]["id"] == res["new_array_id"], "the pin moved last"
    assert dict((k, v["name"]) for k, v in st.list().items() if v) == NEW
    assert all(v["pinned"] for v in st.list().values() if v)
    assert attached_prog_id(ld) == res["new_prog_id"]
    assert run(ld, plain_udp()) == XDP_ABORTED and run(ld, geneve_bad_version(HOST_IP)) == XDP_PASS


def test_rebuild_under_traffic(ld, stage_obj):
    """Packets keep flowing while the table is rebuilt back and forth: every
    pair of packets run by one attached program sees one whole table."""
    st = stages.Stages(ld.pin_dir)
    for s, p in OLD.items():
        st.install(s, stage_obj, p)
    pairs = {(VERDICTS[OLD["on_xdp_pass"]], VERDICTS[OLD["on_xdp_drop"]]): "old",
             (VERDICTS[NEW["on_xdp_pass"]], VERDICTS[NEW["on_xdp_drop"]]): "new"}
    pass_pkt, drop_pkt = plain_udp(), geneve_bad_version(HOST_IP)
    stop = threading.Event()
    samples, bad, errors = [], [], []

    def traffic():
        try:
            while not stop.is_set():
                pid = attached_prog_id(ld)
                try:
                    fd = libbpf.prog_fd_by_id(pid)
                except libbpf.BpfError:
                    continue  # replaced and freed since: sample again
                try:
                    prog = libbpf.Program(fd)
                    pair = (prog.test_run(pass_pkt).retval, prog.test_run(drop_pkt).retval)
                finally:
                    os.close(fd)
                if attached_prog_id(ld) != pid:
                    continue  # replaced mid-sample: not a view of the attached program
                (samples if pair in pairs else bad).append(pair)
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        transit = os.path.join(ld.obj_dir, "transit.bpf.o")
        for i in range(12):
            rebuild(st, transit, _sources(stage_obj, NEW if i % 2 == 0 else OLD))
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert not bad, "mixed tables seen: %s" % bad[:5]
    kinds = set(pairs[p] for p in samples)
    assert kinds == {"old", "new"}, "traffic saw only %s in %d samples" % (kinds, len(samples))
