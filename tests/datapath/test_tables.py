"""The flat tables on the real kernel: a state converges, reads back
exactly, a re-run writes nothing, changes touch only what changed, and at
every phase of an apply every unaffected entry stays reachable."""
import copy
import ctypes
import socket

import pytest

import fixtures as F
import packets as P
from harness import Harness
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, tables
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from ansible_collections.mizar.transit.plugins.module_utils.ops import map_state, steps


@pytest.fixture
def host():
    h = Harness()
    yield h
    h.close()


def _logical(state):
    """A desired state as read_state() reports it."""
    out = {"if_cfg": dict(state["if_cfg"], flags=0, mtu=state["if_cfg"].get("mtu", 0)),
           "substrate": dict((s["ip"], dict(s)) for s in state["substrate"])}
    me = tables.self_entry(state)
    out["substrate"].setdefault(me["ip"], me)
    plens = {"networks": {}, "peers": {}}
    for name in plens:
        for n in state.get(name, []):
            plens[name].setdefault(n["vni"], set()).add(int(n["cidr"].split("/")[1]))
    for name in ("endpoints", "networks", "agents", "sources", "peers"):
        codec = abi.TABLES[name]
        out[name] = dict((codec.key(e), dict(e)) for e in state.get(name, []))
    # a scaled endpoint's backends are its members: a set, read back in address order
    members = tables.members_of(state.get("endpoints", []))
    out["members"] = dict((abi.TABLES["members"].key(m), m) for m in members)
    for e in out["endpoints"].values():
        if e.get("type") == "scaled":
            e["backends"] = sorted(e["backends"], key=abi.ip_to_u32)
    out["vpcs"] = dict((v["vni"], dict(v, plens=sorted(plens["networks"].get(v["vni"], ()), reverse=True),
                                       peer_plens=sorted(plens["peers"].get(v["vni"], ()), reverse=True)))
                       for v in state["vpcs"])
    return out


def test_converge_reads_back_and_is_idempotent(host):
    p = tables.converge(host.pin_dir, F.WORLD_B)
    assert p.changed and p.writes() > 0
    assert tables.read_state(host.pin_dir) == _logical(F.WORLD_B)
    again = tables.converge(host.pin_dir, F.WORLD_B)
    assert not again.changed
    assert again.writes() == 0
    assert tables.converge(host.pin_dir, F.WORLD_B, check_mode=True).writes() == 0


def test_check_mode_writes_nothing(host):
    tables.converge(host.pin_dir, F.WORLD_H1)
    before = tables.read_state(host.pin_dir)
    p = tables.converge(host.pin_dir, F.WORLD_B, check_mode=True)
    assert p.changed
    assert tables.read_state(host.pin_dir) == before


def _changed_world():
    w = copy.deepcopy(F.WORLD_B)
    eps = w["endpoints"]
    eps[:] = [e for e in eps if e["ip"] != "10.0.0.6" or e["vni"] != 100]  # removed
    for e in eps:
        if e["vni"] == 100 and e["ip"] == "10.0.0.5":
            e["host_ip"] = F.ip("h4")  # moved host
    eps.append(F.ep(100, 20, host_ip=F.ip("h5")))  # added
    w["substrate"] = [s for s in w["substrate"] if s["ip"] != F.ip("h2")]  # nobody uses h2 now
    return w


def test_diff_names_exactly_what_changed(host):
    tables.converge(host.pin_dir, F.WORLD_B)
    p = tables.converge(host.pin_dir, _changed_world(), check_mode=True)
    d = p.diff["endpoints"]
    assert [e["ip"] for e in d["added"]] == ["10.0.0.20"]
    assert [e["ip"] for e in d["removed"]] == ["10.0.0.6"]
    assert [(o["host_ip"], n["host_ip"]) for o, n in d["changed"]] == [(F.ip("h1"), F.ip("h4"))]
    assert [s["ip"] for s in p.diff["substrate"]["removed"]] == [F.ip("h2")]
    for name in ("networks", "vpcs", "agents"):
        assert p.diff[name] == {"added": [], "changed": [], "removed": [], "repaired": []}, name
    tables.converge(host.pin_dir, _changed_world())
    assert tables.read_state(host.pin_dir) == _logical(_changed_world())


def _probe(snap, codec, entry):
    """The datapath's lookup, in Python, over a snapshot."""
    t = snap.tables[codec.pin_name.replace("mzr_", "")]
    key = codec.key(entry)
    home = codec.home(entry)
    for i in range(capacity.PROBES):
        slot = (home + i) & (codec.slots - 1)
        tag = t.tags[slot]
        if tag == abi.TAG_EMPTY:
            return None
        if tag != abi.TAG_DEAD:
            raw = t.raw(slot)
            if codec.key(codec.decode(raw, lambda s: s)) == key:
                return codec.decode(raw, snap.host_ip)
    return None


def test_make_before_break(host):
    """Apply a change phase by phase; after each phase, every entry that the
    change leaves alone is found with its value, and a changed one with its
    old or its new value, never neither."""
    old, new = F.WORLD_B, _changed_world()
    tables.converge(host.pin_dir, old)
    old_l, new_l = _logical(old), _logical(new)
    with tables.Maps(host.pin_dir) as maps:
        p = tables.plan(tables.Snapshot(maps), new)
        assert len(set(ph for ph, dummy, dummy in p.phases)) >= 4
        for phase, map_name, writes in p.phases:
            tables.write_slots(maps[map_name], writes)
            snap = tables.Snapshot(maps)
            for name in ("endpoints", "members", "networks", "vpcs", "agents"):
                codec = abi.TABLES[name]
                for key, entry in old_l[name].items():
                    seen = _probe(snap, codec, entry)
                    want = new_l[name].get(key)
                    if name == "endpoints":  # a scaled endpoint's backends: its members, probed as such
                        entry, want = dict(entry, backends=[]), want and dict(want, backends=[])
                    if want == entry:
                        assert seen == entry, (phase, name, key)
                    elif want is not None:
                        assert seen in (entry, want), (phase, name, key, seen)


def test_an_apply_opens_each_map_once(host, monkeypatch):
    """The map_state module's steps (one per batch, in every phase) write
    through one tables.Maps: each map is opened at its first write and
    never again, and the maps end where tables.converge() would put them."""
    tables.converge(host.pin_dir, F.WORLD_B)
    with tables.Maps(host.pin_dir) as maps:
        p = tables.converge_plan(tables.Snapshot(maps), _changed_world())
    assert len(set(phase for phase, dummy, dummy in p.phases)) >= 4
    written = [name for dummy, name, dummy in p.phases]
    assert len(written) > len(set(written))  # some map is written in several phases
    opened, obj_get = [], libbpf.obj_get
    monkeypatch.setattr(libbpf, "obj_get", lambda path: opened.append(path) or obj_get(path))
    with tables.Maps(host.pin_dir) as maps:
        done = steps.carry_out(map_state.steps_of(p, maps))
    assert len(done) == len(p.phases)
    assert sorted(opened) == sorted("%s/%s" % (host.pin_dir, name) for name in set(written))
    monkeypatch.undo()
    assert tables.read_state(host.pin_dir) == _logical(_changed_world())


def test_crowded_table_is_refused_whole(host):
    """More entries for one home slot than the probe window holds: an error
    naming the table, and nothing written."""
    codec = abi.TABLES["agents"]
    target = codec.home({"ifindex": 1})
    same = [i for i in range(1, 2000000) if codec.home({"ifindex": i}) == target][:capacity.PROBES + 1]
    assert len(same) == capacity.PROBES + 1
    w = copy.deepcopy(F.WORLD_H1)
    w["agents"] = [dict(w["agents"][0], ifindex=i) for i in same]
    before = tables.read_state(host.pin_dir)
    with pytest.raises(tables.TableError, match="agents: no free slot"):
        tables.converge(host.pin_dir, w)
    assert tables.read_state(host.pin_dir) == before


def test_dangling_host_reference_is_refused(host):
    w = copy.deepcopy(F.WORLD_B)
    w["substrate"] = [s for s in w["substrate"] if s["ip"] != F.ip("h6")]
    with pytest.raises(tables.TableError, match="192.168.0.6, which has no substrate entry"):
        tables.converge(host.pin_dir, w)


def test_scoped_steps(host):
    """add keeps every current entry and adds the new keys; update also
    changes values; all also removes."""
    old, new = F.WORLD_B, _changed_world()
    tables.converge(host.pin_dir, old)
    old_l, new_l = _logical(old), _logical(new)
    assert tables.converge(host.pin_dir, new, scope="add", check_mode=True).pending
    assert tables.converge(host.pin_dir, new, scope="add").pending  # a change and a removal wait
    got = tables.read_state(host.pin_dir)["endpoints"]
    assert set(got) == set(old_l["endpoints"]) | set(new_l["endpoints"])
    assert all(got[k] == v for k, v in old_l["endpoints"].items())  # nothing changed yet
    p = tables.converge(host.pin_dir, new, scope="update")
    assert p.pending  # the removal waits
    assert [e["ip"] for dummy, e in p.diff["endpoints"]["changed"]] == ["10.0.0.5"]
    assert not p.diff["endpoints"]["removed"] and not p.diff["endpoints"]["added"]
    got = tables.read_state(host.pin_dir)["endpoints"]
    assert (100, "10.0.0.6") in got  # still there
    assert got[(100, "10.0.0.5")] == new_l["endpoints"][(100, "10.0.0.5")]
    p = tables.converge(host.pin_dir, new, scope="all")
    assert [e["ip"] for e in p.diff["endpoints"]["removed"]] == ["10.0.0.6"] and not p.pending
    assert tables.read_state(host.pin_dir) == new_l
    again = tables.converge(host.pin_dir, new, scope="add")
    assert not again.changed and not again.pending  # a no-op run stops after the first step


def test_an_addition_alone_leaves_nothing_pending(host):
    """A change that only adds is done after the first step: the later
    steps have nothing to do (site.yml skips them)."""
    fewer = copy.deepcopy(F.WORLD_B)
    fewer["endpoints"] = [e for e in fewer["endpoints"] if e["ip"] != "10.0.0.6" or e["vni"] != 100]
    assert len(fewer["endpoints"]) == len(F.WORLD_B["endpoints"]) - 1
    tables.converge(host.pin_dir, fewer)
    p = tables.converge(host.pin_dir, F.WORLD_B, scope="add")
    assert p.changed and not p.pending
    assert [e["ip"] for e in p.diff["endpoints"]["added"]] == ["10.0.0.6"]
    assert tables.read_state(host.pin_dir) == _logical(F.WORLD_B)


# ---------------------------------------------------------------- VNI range
#
# The wire carries 24 bits of VNI: 0x1000064 would go out as VNI 100, 0 is
# the empty slot's tag. Every codec refuses them, naming the entry and the
# field, and nothing is written.

BIG = 0x1000064


def _with(name, index, **kw):
    w = copy.deepcopy(F.WORLD_B)
    w[name][index].update(kw)
    return w


VNI_CASES = {
    "endpoint": (_with("endpoints", 1, vni=BIG), r"endpoints: entry \(16777316, '10.0.0.5'\): vni 16777316 is not"),
    "endpoint0": (_with("endpoints", 1, vni=0), r"endpoints: entry \(0, '10.0.0.5'\): vni 0 is not a VNI"),
    "scaled": (_with("endpoints", 5, vni=BIG), r"endpoints: entry \(16777316, '10.0.0.9'\): backends: vni 16777316"),
    "network": (_with("networks", 1, vni=BIG), r"networks: entry \(16777316, '10.3.0.0/24'\): vni 16777316 is not"),
    "vpc": (_with("vpcs", 1, vni=BIG), r"vpcs: entry 16777316: vni 16777316 is not a VNI"),
    "agent": (_with("agents", 0, vni=BIG), r"agents: entry 1: vni 16777316 is not a VNI"),
    "agent_vni0": (_with("agents", 0, vni=0), r"agents: entry 1: vni 0 is not a VNI"),
    "agent_ifindex0": (_with("agents", 0, ifindex=0), r"agents: entry 0: its first field \(the slot's tag\) is 0"),
}


@pytest.mark.parametrize("case", sorted(VNI_CASES))
def test_vni_beyond_24_bits_is_refused_whole(host, case):
    world, message = VNI_CASES[case]
    tables.converge(host.pin_dir, F.WORLD_B)
    before = tables.read_state(host.pin_dir)
    with tables.Maps(host.pin_dir) as maps:
        blobs = dict((n, bytes(libbpf.read_array_blob(maps[n]))) for n in abi.DATA_MAPS if n != abi.COUNTERS_MAP)
        with pytest.raises(tables.TableError, match=message):
            tables.plan(tables.Snapshot(maps), world)
        with pytest.raises(tables.TableError, match=message):
            tables.converge(host.pin_dir, world)
        for n, blob in blobs.items():
            assert bytes(libbpf.read_array_blob(maps[n])) == blob, n
    assert tables.read_state(host.pin_dir) == before


@pytest.mark.parametrize("vni", [0, BIG, -1, 1 << 32, True, "100"])
def test_codecs_refuse_a_vni_off_the_wire(vni):
    slot = {"192.168.0.1": 1}.get
    entries = {
        "endpoints": dict(F.ep(100, 5, host_ip="192.168.0.1"), vni=vni),
        "networks": {"vni": vni, "cidr": "10.0.0.0/24", "bouncers": [], "local_bouncer": True},
        "vpcs": {"vni": vni, "dividers": [], "local_divider": False},
        "agents": {"ifindex": 3, "vni": vni, "ip": "10.0.0.5", "mac": F.ep_mac(100, 5), "bouncers": []},
    }
    for name, e in entries.items():
        with pytest.raises(ValueError, match="is not a VNI"):
            abi.TABLES[name].encode(e, slot)
    with pytest.raises(ValueError, match="is not a VNI"):
        abi.TABLES["members"].encode({"vni": vni, "vip": "10.0.0.9", "ip": "10.0.0.5"}, slot)
    assert abi.check_vni(abi.VNI_MAX) == 0xFFFFFF and abi.check_vni(1) == 1


def test_trusted_sources_refuse_bad_vnis_and_addresses(host):
    """A tunnel peer's VNI must fit 24 bits too (0: any VNI, a transit
    host); 0.0.0.0 and 255.255.255.255 are never sources (they are the
    table's tags). Nothing is written."""
    tables.converge(host.pin_dir, F.WORLD_B)
    before = tables.read_state(host.pin_dir)
    for bad, why in (({"ip": "192.168.0.77", "vni": 0x1000064}, "not a VNI"),
                     ({"ip": "0.0.0.0", "vni": 0}, "cannot be a tunnel source"),
                     ({"ip": "255.255.255.255", "vni": 100}, "cannot be a tunnel source")):
        w = dict(F.WORLD_B, sources=F.SOURCES + [bad])
        with pytest.raises(tables.TableError, match="sources: .*%s" % why):
            tables.converge(host.pin_dir, w)
        assert tables.read_state(host.pin_dir) == before


def _sharing_a_home(addr, n):
    """n addresses whose home slot in mzr_sources is addr's."""
    codec = abi.TABLES["sources"]
    home = codec.home({"ip": addr})
    out = []
    for i in range(1, 1 << 24):
        cand = socket.inet_ntoa((0x0A630000 + i).to_bytes(4, "big"))  # 10.99.x.x
        if codec.home({"ip": cand}) == home:
            out.append(cand)
            if len(out) == n:
                return out
    raise AssertionError("no address shares %s's home slot" % addr)


def test_a_tombstone_never_trusts_a_broadcast_source(host):
    """The sources table is tagged by the address, and a tombstone's tag is
    255.255.255.255: a packet claiming that source must not match a retired
    entry left in its probe run (found in review: it was decapsulated)."""
    x, y = _sharing_a_home("255.255.255.255", 2)
    extra = [{"ip": x, "vni": 0}, {"ip": y, "vni": 0}]
    tables.converge(host.pin_dir, dict(F.WORLD_B, sources=F.SOURCES + extra))
    tables.converge(host.pin_dir, dict(F.WORLD_B, sources=F.SOURCES + extra[1:]))  # x retired, not last in its run
    codec = abi.TABLES["sources"]
    home = codec.home({"ip": x})
    m = host.maps["mzr_sources"]
    assert m.lookup(home.to_bytes(4, "little"))[:4] == b"\xff\xff\xff\xff"  # the tombstone is there
    b = bytearray(F.BY_NAME["local"].packet)
    b[26:30] = socket.inet_aton("255.255.255.255")
    b[24:26] = b"\0\0"
    b[24:26] = P.ipv4_checksum(bytes(b[14:34])).to_bytes(2, "big")
    before = host.counters()
    r = host.run("transit", bytes(b))
    after = host.counters()
    assert r.retval == F.XDP_DROP
    assert dict((k, after[k] - before[k]) for k in after if after[k] != before[k]) == {"drop": 1, "untrusted_src": 1}
    host.world = None


def test_a_new_mac_moves_to_a_fresh_slot(host):
    """A host's new MAC is written into a fresh substrate slot, the entries
    that refer to it are republished (staged first), and the old slot is
    freed last: no write ever rewrites a MAC a lookup may be reading."""
    tables.converge(host.pin_dir, F.WORLD_B)
    old = tables.Snapshot(host.maps)
    old_slot = old.host_slot[F.ip("h2")]
    w = copy.deepcopy(F.WORLD_B)
    for s in w["substrate"]:
        if s["ip"] == F.ip("h2"):
            s["mac"] = "02:00:00:00:00:22"
    p = tables.plan(old, w)
    sub_writes = [(phase, slot) for phase, name, writes in p.phases if name == abi.SUBSTRATE_MAP
                  for slot, dummy in writes]
    new_slot = [slot for phase, slot in sub_writes if phase == "prepare"]
    assert len(new_slot) == 1 and new_slot[0] != old_slot and new_slot[0] not in old.hosts
    assert sub_writes[-1] == ("free", old_slot)
    # the diff: the substrate entry changed its MAC; the endpoints on h2 are the same entries
    assert p.diff["substrate"]["changed"] == [({"ip": F.ip("h2"), "mac": F.mac("h2")},
                                               {"ip": F.ip("h2"), "mac": "02:00:00:00:00:22"})]
    assert p.diff["endpoints"]["changed"] == [] and p.changed
    tables.apply_plan(host.maps, p)
    assert tables.read_state(host.pin_dir)["substrate"][F.ip("h2")]["mac"] == "02:00:00:00:00:22"
    assert tables.Snapshot(host.maps).host_slot[F.ip("h2")] == new_slot[0]
    assert tables.plan(tables.Snapshot(host.maps), w).writes() == 0
    bounce = F.BY_NAME["bouncer"]  # 10.0.0.6 on h2: now sent to its new MAC
    r = host.run("transit", bounce.packet)
    assert r.retval == F.XDP_TX and r.data[:6] == bytes.fromhex("020000000022")
    host.world = None


def test_peer_routes_come_and_go_without_a_trace(host):
    """A divider's peer routes converge and read back with the prefix lengths
    in the VPC entry; removing them (the peering left the inventory) clears
    their slots entirely and the VPC entry's list, and --diff names them."""
    tables.converge(host.pin_dir, F.WORLD_P)
    assert tables.read_state(host.pin_dir) == _logical(F.WORLD_P)
    assert tables.read_state(host.pin_dir)["vpcs"][100]["peer_plens"] == [24, 16]
    gone = dict(F.WORLD_P, peers=[])
    rendered = {"host": "b", "interface": {"ip": F.ip("b")}, "maps": {
        "vpcs": [{"vni": 100, "name": "blue"}], "substrate": [{"ip": F.ip("h4"), "name": "h4"}],
        "peers": [dict(F.WORLD_P["peers"][0], name="blue-red", peer="red")]}}
    with tables.Maps(host.pin_dir) as maps:
        p = tables.plan(tables.Snapshot(maps), gone)
    before, after, changes = map_state.describe(p, map_state.Names(rendered))
    assert [c["op"] for c in changes if c["map"] == "peers"] == ["remove", "remove"]
    assert ("  blue-red: vni 100 10.4.0.0/16 -> vni 400 (red), dividers h4 (%s), %s (sources 10.0.0.0/16)"
            % (F.ip("h4"), F.ip("h5"))) in before.splitlines()
    tables.converge(host.pin_dir, gone)
    state = tables.read_state(host.pin_dir)
    assert state["peers"] == {} and state["vpcs"][100]["peer_plens"] == []
    assert state == _logical(gone)
    with tables.Maps(host.pin_dir) as maps:
        assert libbpf.read_array_blob(maps["mzr_peers"]) == bytes(len(libbpf.read_array_blob(maps["mzr_peers"])))


# ---------------------------------------------------------------- scaled endpoints' members


def _scaled(n):
    """WORLD_B with a scaled endpoint 10.0.0.10 of n backends (10.0.16.0 on)."""
    w = copy.deepcopy(F.WORLD_B)
    ips = [socket.inet_ntoa((0x0A001000 + i).to_bytes(4, "big")) for i in range(n)]
    w["endpoints"].append(F.ep(100, 10, type="scaled", backends=ips))
    return w, ips


def test_a_scaled_endpoint_of_4096_backends_applies_member_by_member(host):
    tables.converge(host.pin_dir, F.WORLD_B)
    world, ips = _scaled(capacity.MAX_BACKENDS)
    p = tables.converge(host.pin_dir, world)
    assert len(p.diff["members"]["added"]) == capacity.MAX_BACKENDS and not p.diff["endpoints"]["changed"]
    codec = abi.TABLES["members"]
    with tables.Maps(host.pin_dir) as maps:
        blob = libbpf.read_array_blob(maps[codec.pin_name])
    size = ctypes.sizeof(codec.ctype)
    held = [codec.decode(blob[s * size:(s + 1) * size], None) for s in range(codec.slots)
            if blob[s * size:s * size + 4] != bytes(4)]
    theirs = sorted(m["ip"] for m in held if (m["vni"], m["vip"]) == (100, "10.0.0.10"))
    assert theirs == sorted(ips) and len(held) == capacity.MAX_BACKENDS + 2  # and 10.0.0.9's two
    assert tables.read_state(host.pin_dir) == _logical(world)
    assert tables.converge(host.pin_dir, world).writes() == 0
    # one backend less: one member retired, nothing else written but its cleanup
    fewer = copy.deepcopy(world)
    fewer["endpoints"][-1]["backends"] = ips[:-1]
    p = tables.converge(host.pin_dir, fewer)
    assert p.diff["members"]["removed"] == [{"vni": 100, "vip": "10.0.0.10", "ip": ips[-1]}]
    assert sum(len(w) for phase, name, w in p.phases if phase != "clean") == 1
    assert tables.read_state(host.pin_dir) == _logical(fewer)


def test_a_scaled_endpoint_of_4097_backends_is_refused_whole(host):
    tables.converge(host.pin_dir, F.WORLD_B)
    before = tables.read_state(host.pin_dir)
    world, dummy = _scaled(capacity.MAX_BACKENDS + 1)
    with pytest.raises(tables.TableError, match=r"endpoints: entry \(100, '10.0.0.10'\): backends: 4097, at most 4096"):
        tables.converge(host.pin_dir, world)
    assert tables.read_state(host.pin_dir) == before
