"""The flat tables on the real kernel: a state converges, reads back
exactly, a re-run writes nothing, changes touch only what changed, and at
every phase of an apply every unaffected entry stays reachable."""
import copy

import pytest

import fixtures as F
from harness import Harness
from ansible_collections.mizar.transit.plugins.module_utils import abi, capacity, tables


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
    plens = {}
    for n in state["networks"]:
        plens.setdefault(n["vni"], set()).add(int(n["cidr"].split("/")[1]))
    for name in ("endpoints", "networks", "agents", "sources"):
        codec = abi.TABLES[name]
        out[name] = dict((codec.key(e), dict(e)) for e in state.get(name, []))
    out["vpcs"] = dict((v["vni"], dict(v, plens=sorted(plens.get(v["vni"], ()), reverse=True)))
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
        assert p.diff[name] == {"added": [], "changed": [], "removed": []}, name
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
            if codec.key(codec.decode(raw, lambda s: s, lambda s: [])) == key:
                return codec.decode(raw, snap.host_ip, snap.backend_ips)
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
            for name in ("endpoints", "networks", "vpcs", "agents"):
                codec = abi.TABLES[name]
                for key, entry in old_l[name].items():
                    seen = _probe(snap, codec, entry)
                    want = new_l[name].get(key)
                    if want == entry:
                        assert seen == entry, (phase, name, key)
                    elif want is not None:
                        assert seen in (entry, want), (phase, name, key, seen)


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
