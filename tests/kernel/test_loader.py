"""The loader (bpf/loader.py, class Loader): idempotent loads, program changes, map layout
migrations, status and teardown, on the real kernel."""
import os
import struct
import time

import pytest

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, loader, libbpf, stages, xdp

from machine import PROGS, build_at, converge_at
from packets import XDP_DROP, XDP_PASS, XDP_TX, geneve_bad_version, geneve_icmp, plain_udp

from .conftest import build_variant, edit_struct, member_line, quiet_veth

H1, H2, H3 = "192.168.77.1", "192.168.77.2", "192.168.77.3"
MAC = {H1: "02:00:00:00:77:01", H2: "02:00:00:00:77:02", H3: "02:00:00:00:77:03"}
VNI = 1000


def desired(ifindex):
    """A small but complete state for host H1: one endpoint here, one on
    H2, a gateway, the network (bouncer H3), the VPC, an agent."""
    return {
        "if_cfg": {"ip": H1, "mac": MAC[H1], "ifindex": ifindex},
        "substrate": [{"ip": H2, "mac": MAC[H2]}, {"ip": H3, "mac": MAC[H3]}],
        "endpoints": [
            {"vni": VNI, "ip": "10.0.0.2", "type": "simple", "ifindex": 7, "mac": "02:0a:00:00:00:02"},
            {"vni": VNI, "ip": "10.0.0.3", "type": "simple", "host_ip": H2, "mac": "02:0a:00:00:00:03"},
            {"vni": VNI, "ip": "10.0.0.1", "type": "gateway", "mac": "02:0a:00:00:00:01"},
        ],
        "networks": [{"vni": VNI, "cidr": "10.0.0.0/24", "bouncers": [H3]}],
        "vpcs": [{"vni": VNI, "dividers": [H3], "local_divider": False}],
        "agents": [{"ifindex": 7, "vni": VNI, "ip": "10.0.0.2", "mac": "02:0a:00:00:00:02", "bouncers": [H3]}],
        "sources": [{"ip": H2, "vni": 0}, {"ip": H3, "vni": 0}],
    }


def map_ids(d):
    return dict((m, v["id"]) for m, v in d.status()["maps"].items())


def raw_state(d):
    """Every map's bytes (arrays whole; the counters excluded: packets move them)."""
    out = {}
    for m in sorted(os.listdir(d.maps_dir)):
        with d.map(m) as mp:
            if mp.type == libbpf.BPF_MAP_TYPE_ARRAY:
                out[m] = libbpf.read_array_blob(mp)
    return out


@pytest.fixture
def ld(veth, pin_dir, obj_dir):
    d = loader.Loader(pin_dir, obj_dir, netns=veth)
    yield d
    d.teardown()


def attached(d, iface):
    (a,) = [x for x in d.attachments() if x["iface"] == iface]
    return a


def run_attached(d, iface, pkt):
    fd = libbpf.prog_fd_by_id(attached(d, iface)["prog_id"])
    try:
        return libbpf.Program(fd).test_run(pkt)
    finally:
        os.close(fd)


def test_load_is_idempotent_and_keeps_state(ld):
    first = ld.load()
    assert (first["changed"], first["action"]) == (True, "created")
    assert set(first["maps"].values()) == {"created"}
    plan = ld.converge(desired(2))
    assert plan.changed
    ids, progs, state = map_ids(ld), ld.status()["programs"], raw_state(ld)

    again = loader.Loader(ld.pin_dir, ld.obj_dir, netns=ld.netns).load()
    assert (again["changed"], again["action"]) == (False, "reused")
    assert set(again["maps"].values()) == {"reused"}
    assert all(not p["changed"] for p in again["programs"].values())
    assert map_ids(ld) == ids, "an unchanged reload keeps every map"
    assert ld.status()["programs"] == progs, "and every program"
    assert raw_state(ld) == state, "and every entry"
    assert not ld.converge(desired(2)).changed
    assert ld.layout_diff() == {}


def test_changed_code_same_layout_relinks_and_keeps_maps(ld, tmp_path):
    ld.load()
    ld.converge(desired(2))
    ld.attach("transit", "a0")
    ld.attach("agent", "a1")
    before = dict((a["iface"], a) for a in ld.attachments())
    ids, state = map_ids(ld), raw_state(ld)
    assert run_attached(ld, "a0", geneve_bad_version(H1)).retval == XDP_DROP

    # same maps, different code: Geneve on another UDP port
    variant = build_variant(str(tmp_path), lambda t: t.replace("MZR_GENEVE_PORT 6081", "MZR_GENEVE_PORT 6082"))
    res = loader.Loader(ld.pin_dir, variant, netns=ld.netns).load()
    assert (res["changed"], res["action"]) == (True, "reused")
    assert res["programs"]["transit"]["changed"] and res["programs"]["agent"]["changed"]
    assert not res["programs"]["pass"]["changed"]
    assert sorted(res["relinked"]) == sorted(loader.link_name(i, ld.netns) for i in ("a0", "a1"))

    after = dict((a["iface"], a) for a in ld.attachments())
    for iface in ("a0", "a1"):
        assert after[iface]["link_id"] == before[iface]["link_id"], "switched in place, never detached"
        assert after[iface]["prog_id"] != before[iface]["prog_id"]
        assert after[iface]["mode"] == "native"
    assert after["a0"]["prog_id"] == res["programs"]["transit"]["prog_id"]
    assert map_ids(ld) == ids and raw_state(ld) == state
    # the new code runs: 6081 is no longer ours
    assert run_attached(ld, "a0", geneve_bad_version(H1)).retval == XDP_PASS
    assert run_attached(ld, "a0", geneve_bad_version(H1, port=6082)).retval == XDP_DROP


def _edit_abi(text):
    # same size, other order: libbpf alone would happily reuse this map
    def swap(lines):
        i, j = member_line(lines, "ifindex"), member_line(lines, "flags")
        lines[i], lines[j] = lines[j], lines[i]
        return lines

    # a new leading member: every offset moves, the size grows
    def prepend(lines):
        return ["\t__u32 mzt_weight;\n"] + lines

    return edit_struct(edit_struct(text, "mzr_if_cfg", swap), "mzr_host", prepend)


def _member(btf_desc, name):
    for mname, off, desc in btf_desc[3]:
        if mname == name:
            return off, loader.desc_size(desc)
    raise AssertionError("no member %s" % name)


def test_layout_change_migrates_entries_and_never_mixes(ld, tmp_path, stage_obj):
    ld.load()
    ld.converge(desired(2))
    ld.attach("transit", "a0")
    ld.attach("agent", "a1")
    st = stages.Stages(ld.pin_dir)
    st.install("on_xdp_pass", stage_obj, "stage_count")
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_DROP
    assert _hits(ld) == 1
    old_ids = map_ids(ld)
    old_state = raw_state(ld)
    links_before = dict((a["iface"], a["link_id"]) for a in ld.attachments())
    old_hosts = dict((h["ip"], h["mac"]) for h in ld.read_state()["substrate"].values())

    variant = build_variant(str(tmp_path), _edit_abi, extra_srcs=[os.path.join(PROGS, "stage_verdicts.bpf.c")])
    new_ld = loader.Loader(ld.pin_dir, variant, netns=ld.netns)
    assert sorted(new_ld.layout_diff()) == ["mzr_if_cfg", "mzr_substrate"]
    assert new_ld.layout_diff()["mzr_if_cfg"] == ["value"], "same sizes: only BTF tells"

    # stages are bound to the old maps: without their objects, refuse and change nothing
    with pytest.raises(loader.LoaderError, match="on_xdp_pass"):
        new_ld.load()
    assert map_ids(ld) == old_ids and not os.path.exists(os.path.join(ld.pin_dir, "maps_new"))

    res = new_ld.load(stage_sources={"on_xdp_pass": (os.path.join(variant, "stage_verdicts.bpf.o"),
                                                     "stage_count")})
    assert (res["changed"], res["action"]) == (True, "migrated")
    assert res["maps"]["mzr_substrate"] == "migrated" and res["maps"]["mzr_endpoints"] == "copied"
    assert res["maps"]["mzt_stage_hits"] == "kept"
    assert res["entries"]["mzr_substrate"] == len(old_hosts) and res["entries"]["mzr_endpoints"] == 3
    assert sorted(res["relinked"]) == sorted(loader.link_name(i, ld.netns) for i in ("a0", "a1"))
    assert not os.path.exists(os.path.join(ld.pin_dir, "maps_new"))

    new_ids = map_ids(ld)
    assert new_ids["mzt_stage_hits"] == old_ids["mzt_stage_hits"], "a function's own map moves along"
    datapath_old = dict((k, v) for k, v in old_ids.items() if k != "mzt_stage_hits")
    assert not set(new_ids.values()) & set(datapath_old.values()), "every datapath map is new"
    # unchanged layouts: byte for byte
    new_state = raw_state(ld)
    for m in ("mzr_endpoints", "mzr_networks", "mzr_vpcs", "mzr_agents", "mzt_stage_hits"):
        assert new_state[m] == old_state[m], m
    # changed layouts: by member name, new members zero
    with ld.map("mzr_substrate") as sub:
        layout = loader.pinned_layout(os.path.join(ld.maps_dir, "mzr_substrate"))
        ip_off, dummy = _member(layout["value"], "ip")
        mac_off, dummy = _member(layout["value"], "mac")
        w_off, dummy = _member(layout["value"], "mzt_weight")
        assert (w_off, ip_off) == (0, 4)
        hosts = {}
        for _k, v in sub.items():
            ip = ".".join(str(b) for b in v[ip_off:ip_off + 4])
            if ip != "0.0.0.0":
                hosts[ip] = ":".join("%02x" % b for b in v[mac_off:mac_off + 6])
                assert v[w_off:w_off + 4] == bytes(4)
    assert hosts == old_hosts
    with ld.map("mzr_if_cfg") as cfg:
        layout = loader.pinned_layout(os.path.join(ld.maps_dir, "mzr_if_cfg"))
        v = cfg.lookup(bytes(4))
        off, dummy = _member(layout["value"], "ifindex")
        assert struct.unpack("<I", v[off:off + 4])[0] == 2
        off, dummy = _member(layout["value"], "ip")
        assert v[off:off + 4] == bytes(int(x) for x in H1.split("."))

    # links kept, programs switched, and no program sees an old map
    for a in ld.attachments():
        assert a["link_id"] == links_before[a["iface"]] and a["mode"] == "native"
        fd = libbpf.prog_fd_by_id(a["prog_id"])
        try:
            assert set(libbpf.prog_map_ids(fd)) <= set(new_ids.values()), a
        finally:
            os.close(fd)
    assert st.list()["on_xdp_pass"]["name"] == "stage_count"
    _wait_freed(datapath_old.values())

    # and it forwards from the migrated state: bounce to H2 with H2's MAC
    r = run_attached(ld, "a0", geneve_icmp(H3, H1, MAC[H1], VNI, "10.0.0.2", "10.0.0.3"))
    assert r.retval == XDP_TX
    assert r.data[0:6] == bytes(int(x, 16) for x in MAC[H2].split(":"))
    assert r.data[30:34] == bytes(int(x) for x in H2.split("."))
    # the reloaded stage shares the new maps (counters restarted) and keeps its own
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_DROP
    with ld.map("mzr_counters") as m:
        assert sum(struct.unpack("<Q", v)[0] for v in m.lookup(struct.pack("<I", 95))) == 1
    assert _hits(ld) == 2

    # reloading the variant again is a no-op
    again = loader.Loader(ld.pin_dir, variant, netns=ld.netns).load()
    assert (again["changed"], again["action"]) == (False, "reused") and map_ids(ld) == new_ids


def test_failed_migration_changes_nothing(ld, tmp_path, stage_obj):
    ld.load()
    ld.converge(desired(2))
    ld.attach("transit", "a0")
    stages.Stages(ld.pin_dir).install("on_xdp_pass", stage_obj, "stage_drop")
    ids, state, links = map_ids(ld), raw_state(ld), ld.attachments()
    variant = build_variant(str(tmp_path), _edit_abi, extra_srcs=[os.path.join(PROGS, "stage_verdicts.bpf.c")])
    # the stage source is broken: found only after the new maps are filled
    with pytest.raises(Exception, match="no_such_prog"):
        loader.Loader(ld.pin_dir, variant, netns=ld.netns).load(
            stage_sources={"on_xdp_pass": (os.path.join(variant, "stage_verdicts.bpf.o"), "no_such_prog")})
    assert map_ids(ld) == ids and raw_state(ld) == state and ld.attachments() == links
    assert sorted(os.listdir(ld.pin_dir)) == ["links", "maps", "progs"]
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_DROP, "old table, old maps, still running"


def _hits(d):
    with d.map("mzt_stage_hits") as m:
        return struct.unpack("<Q", m.lookup(bytes(4)))[0]


def _wait_freed(ids, timeout=10.0):
    """The kernel frees unpinned, unreferenced maps asynchronously."""
    deadline = time.monotonic() + timeout
    left = list(ids)
    while left:
        still = []
        for i in left:
            try:
                os.close(libbpf.map_fd_by_id(i))
                still.append(i)
            except libbpf.BpfError:
                pass
        left = still
        if left and time.monotonic() > deadline:
            raise AssertionError("old maps %s still exist" % left)
        if left:
            time.sleep(0.05)


def test_status_reports_programs_attachments_entries_counters(ld):
    ld.load()
    ld.converge(desired(2))
    ld.attach("transit", "a0")
    for dummy in range(3):
        assert run_attached(ld, "a0", plain_udp()).retval == XDP_PASS
    assert run_attached(ld, "a0", geneve_bad_version(H1, src=H2)).retval == XDP_DROP
    assert run_attached(ld, "a0", geneve_bad_version(H1)).retval == XDP_DROP  # from no transit host
    s = ld.status()
    assert s["loaded"]
    assert set(s["programs"]) == {"transit", "agent", "pass"}
    assert s["programs"]["transit"]["name"] == "mzr_transit" and len(s["programs"]["transit"]["tag"]) == 16
    (a,) = s["attachments"]
    assert (a["iface"], a["netns"], a["role"], a["mode"]) == ("a0", ld.netns, "transit", "native")
    assert a["prog_id"] == s["programs"]["transit"]["prog_id"]
    assert s["maps"]["mzr_substrate"]["entries"] == len(ld.read_state()["substrate"])
    assert s["maps"]["mzr_endpoints"]["entries"] == 3
    assert s["maps"]["mzr_agents"]["entries"] == 1
    assert s["maps"]["mzr_if_cfg"]["entries"] == 1
    assert s["maps"]["mzr_sources"]["entries"] == 2
    assert s["counters"]["pass"] == 3 and s["counters"]["drop"] == 2
    assert s["drops"] == {"geneve_version": 1, "untrusted_src": 1}
    assert all(v is None for v in s["stages"].values())


def test_teardown_leaves_nothing(ld, netns, stage_obj):
    other = netns("y")
    quiet_veth(other, "b0", "b1")
    ld.load()
    ld.attach("transit", "a0")
    ld.attach("agent", "a1")
    ld.attach("pass", "b1", netns=other)
    stages.Stages(ld.pin_dir).install("on_xdp_drop", stage_obj, "stage_pass")
    assert len(ld.attachments()) == 3

    res = ld.teardown()
    assert res["changed"] and sorted(res["detached"]) == sorted(
        [loader.link_name("a0", ld.netns), loader.link_name("a1", ld.netns), loader.link_name("b1", other)])
    assert not os.path.exists(ld.pin_dir), "no pins left"
    for iface, ns in (("a0", ld.netns), ("a1", ld.netns), ("b1", other)):
        assert not xdp.query(iface, netns=ns)["attached"], iface
    assert ld.teardown() == {"changed": False, "detached": [], "unpinned": 0}
    assert ld.status() == {"pin_dir": ld.pin_dir, "loaded": False}


# The last commit whose stage table held one program per stage (no chains, no banks).
PRE_CHAINS = "32bf127"  # the last layout with one program per stage (VPC peering landed before chains)


def test_an_upgrade_from_one_program_per_stage_migrates_to_chains(ld, tmp_path, stage_obj, chain_obj):
    old_objs = build_at(PRE_CHAINS, str(tmp_path), progs=["stage_verdicts.bpf.c"])
    old = loader.Loader(ld.pin_dir, old_objs, netns=ld.netns)
    old.load()
    converge_at(PRE_CHAINS, str(tmp_path), ld.maps_dir, desired(2))  # that commit's maps, by its control plane
    old.attach("transit", "a0")
    old.attach("agent", "a1")
    # what the stage module of that layout did: the program in the stage's one slot, pinned
    obj, prog = stages.load_stage(ld.pin_dir, os.path.join(old_objs, "stage_verdicts.bpf.o"), "stage_count")
    try:
        with old.map("mzr_stages") as arr:
            assert arr.max_entries == len(abi.STAGES)
            arr.update(struct.pack("<I", abi.STAGES["on_xdp_pass"]), struct.pack("<I", prog.fd))
        stages.pin_replace(prog.fd, stages.Layout(ld.pin_dir).stage("on_xdp_pass"))
    finally:
        obj.close()
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_DROP and _hits(ld) == 1
    st = stages.Stages(ld.pin_dir)
    assert [e["name"] for e in st.list()["on_xdp_pass"]["chain"]] == ["stage_count"], "read as a chain of one"
    with pytest.raises(stages.StageError, match="from before chains"):
        st.set_chain("on_xdp_pass", [])
    old_state = raw_state(ld)

    new = loader.Loader(ld.pin_dir, ld.obj_dir, netns=ld.netns)
    diff = new.layout_diff()
    assert diff["mzr_stages"] == ["max_entries"] and "mzr_stage_ctx" in diff, diff
    with pytest.raises(loader.LoaderError, match="on_xdp_pass"):
        new.load()
    res = new.load(stage_sources={"on_xdp_pass": [(chain_obj, "chain_a"), (stage_obj, "stage_count")]})
    assert (res["changed"], res["action"]) == (True, "migrated")
    assert res["maps"]["mzt_stage_hits"] == "kept" and res["entries"]["mzr_endpoints"] == 3
    assert sorted(res["relinked"]) == sorted(loader.link_name(i, ld.netns) for i in ("a0", "a1"))
    new_state = raw_state(ld)
    for m in ("mzr_endpoints", "mzr_networks", "mzr_vpcs", "mzr_agents", "mzr_substrate", "mzt_stage_hits"):
        assert new_state[m] == old_state[m], m
    with ld.map("mzr_stages") as arr:
        assert arr.max_entries == abi.STAGE_SLOTS
    listed = st.list()["on_xdp_pass"]
    assert [e["name"] for e in listed["chain"]] == ["chain_a", "stage_count"] and listed["bank"] == 0
    assert all(e["pinned"] for e in listed["chain"])

    # the chain runs in order on the migrated datapath, and swaps from now on
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_DROP and _hits(ld) == 2
    with ld.map("mzt_chain_hits") as m:
        assert struct.unpack("<Q", m.lookup(struct.pack("<I", 1)))[0] == 1, "chain_a ran first"
    assert st.set_chain("on_xdp_pass", [])["action"] == "removed"
    assert run_attached(ld, "a0", plain_udp()).retval == XDP_PASS
    again = loader.Loader(ld.pin_dir, ld.obj_dir, netns=ld.netns).load()
    assert (again["changed"], again["action"]) == (False, "reused")


PRE_MEMBERS = "0d154ec"  # the last layout with 32-slot backend sets (mzr_backends) and no mzr_members


def test_an_upgrade_from_backend_sets_converts_them_to_members(ld, tmp_path):
    """A host of ABI 3 holds its scaled endpoints' backends in mzr_backends;
    the migration turns them into mzr_members entries (the agent's DSR check
    works from the first packet on the new programs) and retires the map."""
    old_objs = build_at(PRE_MEMBERS, str(tmp_path))
    old = loader.Loader(ld.pin_dir, old_objs, netns=ld.netns)
    old.load()
    want = desired(2)
    backends = ["10.0.0.2", "10.0.0.3"] + ["10.0.0.%d" % i for i in range(10, 40)]  # 32, the old limit
    want["endpoints"] += [{"vni": VNI, "ip": "10.0.0.9", "type": "scaled", "mac": "02:0a:00:00:00:09",
                           "backends": backends},
                          {"vni": VNI, "ip": "10.0.0.8", "type": "scaled", "mac": "02:0a:00:00:00:08",
                           "backends": ["10.0.0.3"]}]
    converge_at(PRE_MEMBERS, str(tmp_path), ld.maps_dir, want)
    old.attach("agent", "a1")
    assert os.path.exists(os.path.join(ld.maps_dir, abi.LEGACY_BACKENDS_MAP))
    old_state = raw_state(ld)

    new = loader.Loader(ld.pin_dir, ld.obj_dir, netns=ld.netns)
    assert "mzr_endpoints" in new.layout_diff(), "the endpoint's backend set slot is gone"
    res = new.load()
    assert (res["changed"], res["action"]) == (True, "migrated")
    assert res["maps"][abi.LEGACY_BACKENDS_MAP] == "converted" and res["entries"]["mzr_members"] == 33
    assert res["entries"]["mzr_endpoints"] == 5
    assert not os.path.exists(os.path.join(ld.maps_dir, abi.LEGACY_BACKENDS_MAP)), "retired, not kept"
    assert set(os.listdir(ld.maps_dir)) <= set(new._new_layouts()), "nothing but the new ABI's maps"
    state = ld.read_state()
    assert sorted(state["members"]) == sorted([(VNI, "10.0.0.9", ip) for ip in backends] + [(VNI, "10.0.0.8", "10.0.0.3")])
    assert state["endpoints"][(VNI, "10.0.0.9")]["backends"] == sorted(backends, key=abi.ip_to_u32)
    for m in ("mzr_networks", "mzr_vpcs", "mzr_agents", "mzr_substrate", "mzr_sources"):
        assert raw_state(ld)[m] == old_state[m], m
    # the converted maps are exactly what the new engine writes: nothing to do
    p = ld.converge(want)
    assert not p.changed and p.writes() == 0
    again = loader.Loader(ld.pin_dir, ld.obj_dir, netns=ld.netns).load()
    assert (again["changed"], again["action"]) == (False, "reused")
