"""The table engine's planner on recorded map images, with no maps and no
root: the exact plan (slot writes by phase, the diff, pending) from what a
host's maps held to a desired state.

The images (fixtures/*.json) were read from real maps by
tests/datapath/record_map_images.py, which also says how each came about;
tests/datapath/test_map_images.py checks they are still what the engine
writes. Slot numbers below are those of the recordings: an entry's home
slot is its key's hash (abi codec home()), and a version that cannot go
home goes to the next free slot of its probe window."""
import array
import copy
import ctypes
import os

import pytest

import mapimage
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, tables

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
EPS = abi.TABLES["endpoints"]
DEAD = tables.TAG_DEAD
EMPTY = dict((name, bytes(ctypes.sizeof(codec.ctype))) for name, codec in abi.TABLES.items())  # an empty slot
H1, H2, H4, H6 = "192.168.0.1", "192.168.0.2", "192.168.0.4", "192.168.0.6"


class Recorded:
    """A recorded image: the states it was recorded with, its snapshot, and
    a copy of its bytes that tables.apply_plan() can write into."""

    def __init__(self, name):
        self.doc = mapimage.load(os.path.join(FIXTURES, name + ".json"))
        self.images = mapimage.images(self.doc)
        self.snap = tables.Snapshot.from_images(self.images)

    def state(self, which):
        return copy.deepcopy(self.doc["states"][which])

    def applied(self, p):
        """The snapshot of the images after p's writes (a run that finished)."""
        maps = _ImageMaps(self.images, dict((n, m["value_size"]) for n, m in self.doc["maps"].items()))
        tables.apply_plan(maps, p)
        return tables.Snapshot.from_images(dict((n, bytes(b)) for n, b in maps.images.items()))


class _ImageMaps:
    """Stands in for tables.Maps over map images: batch updates write slots."""

    def __init__(self, images, value_sizes):
        self.images = dict((n, bytearray(b)) for n, b in images.items())
        self.value_sizes = value_sizes

    def __getitem__(self, name):
        return _ImageMap(self.images[name], self.value_sizes[name])


class _ImageMap:
    def __init__(self, blob, value_size):
        self.blob, self.value_size = blob, value_size

    def update_batch_blobs(self, keys, vals):
        size = self.value_size
        for i, slot in enumerate(array.array("I", keys)):
            self.blob[slot * size:(slot + 1) * size] = vals[i * size:(i + 1) * size]


@pytest.fixture(scope="module")
def world_b():
    return Recorded("world_b")


@pytest.fixture(scope="module")
def move_after_publish():
    return Recorded("move_after_publish")


@pytest.fixture(scope="module")
def remove_after_retire():
    return Recorded("remove_after_retire")


def endpoint(state, vni, ip):
    return next(e for e in state["endpoints"] if (e["vni"], e["ip"]) == (vni, ip))


def encoded(snap, e):
    """The slot bytes of endpoint e, referring to the image's substrate slots."""
    return EPS.encode(e, snap.host_slot.__getitem__)


def raw(snap, slot):
    return snap.tables["endpoints"].raw(slot)


def changes(p):
    """The diff without its empty lists: {map: {kind: [...]}}."""
    out = {}
    for name, d in p.diff.items():
        kinds = dict((k, v) for k, v in d.items() if v)
        if kinds:
            out[name] = kinds
    return out


def assert_settled(rec, p, desired):
    """After p's writes the maps hold desired, every key once: the next run writes nothing."""
    after = rec.applied(p)
    assert not any(t.extra for t in after.tables.values())
    again = tables.converge_plan(after, desired)
    assert (again.phases, again.changed) == ([], False)


# ---------------------------------------------------------------- a converged host


def test_the_recorded_state_reads_back_and_plans_nothing(world_b):
    snap, want = world_b.snap, world_b.state("from")
    logical = snap.logical()
    assert logical["if_cfg"] == dict(want["if_cfg"], flags=0, mtu=0)
    assert logical["endpoints"] == dict(((e["vni"], e["ip"]), e) for e in want["endpoints"])
    assert sorted(logical["substrate"]) == sorted([s["ip"] for s in want["substrate"]] + [want["if_cfg"]["ip"]])
    assert snap.host_slot == {H1: 1, H2: 2, "192.168.0.3": 3, H4: 4, "192.168.0.5": 5, H6: 6, "192.168.0.9": 7}
    for scope in tables.SCOPES:
        p = tables.converge_plan(snap, want, scope)
        assert (p.phases, p.changed, p.writes(), p.pending, changes(p)) == ([], False, 0, False, {}), scope


def test_one_endpoint_added(world_b):
    snap, want = world_b.snap, world_b.state("from")
    new = dict(endpoint(want, 100, "10.0.0.5"), ip="10.0.0.20", mac="02:ee:64:00:00:14")
    want["endpoints"].append(new)
    assert EPS.home(new) == 258681 and raw(snap, 258681) == EMPTY["endpoints"]  # its home slot is free
    entry = encoded(snap, new)
    # vni 100, ip 10.0.0.20, type simple, no flags, host: h1, substrate slot 1
    assert entry[:12].hex() == "64000000" + "0a000014" + "01" + "00" + "0100"
    p = tables.converge_plan(snap, want)
    assert p.phases == [("stage", "mzr_endpoints", [(258681, DEAD + entry[4:])]),
                        ("publish", "mzr_endpoints", [(258681, entry)])]
    assert changes(p) == {"endpoints": {"added": [new]}}
    assert (p.changed, p.pending) == (True, False)
    add = tables.converge_plan(snap, want, "add")  # an addition is the first step of a fleet-wide change
    assert (add.phases, add.pending) == (p.phases, False)
    assert_settled(world_b, p, want)


def test_one_endpoint_changed(world_b):
    snap, want = world_b.snap, world_b.state("from")
    old = endpoint(want, 100, "10.0.0.6")
    new = dict(old, host_ip=H4)
    want["endpoints"] = [new if e is old else e for e in want["endpoints"]]
    assert EPS.home(old) == 194103 and raw(snap, 194103) == encoded(snap, old)  # the old version is at home
    entry = encoded(snap, new)
    assert entry[10:12] == b"\x04\x00"  # h4's substrate slot
    p = tables.converge_plan(snap, want)
    # made before broken: the new version is staged and published in the next
    # free slot, then the old one retired; the tombstone is followed by a live
    # slot, so it stays
    assert p.phases == [("stage", "mzr_endpoints", [(194104, DEAD + entry[4:])]),
                        ("publish", "mzr_endpoints", [(194104, entry)]),
                        ("retire", "mzr_endpoints", [(194103, DEAD + raw(snap, 194103)[4:])])]
    assert changes(p) == {"endpoints": {"changed": [(old, new)]}}
    assert (p.changed, p.pending) == (True, False)
    add = tables.converge_plan(snap, want, "add")  # a change waits for the update step
    assert (add.phases, add.changed, add.pending) == ([], False, True)
    update = tables.converge_plan(snap, want, "update")
    assert (update.phases, update.pending) == (p.phases, False)
    assert_settled(world_b, p, want)


def test_one_endpoint_removed(world_b):
    snap, want = world_b.snap, world_b.state("from")
    gone = endpoint(want, 100, "10.0.0.5")
    want["endpoints"] = [e for e in want["endpoints"] if e is not gone]
    assert EPS.home(gone) == 193282 and raw(snap, 193283) == EMPTY["endpoints"]
    p = tables.converge_plan(snap, want)
    # retired, then cleaned: nothing lies beyond it in its probe run
    assert p.phases == [("retire", "mzr_endpoints", [(193282, DEAD + raw(snap, 193282)[4:])]),
                        ("clean", "mzr_endpoints", [(193282, EMPTY["endpoints"])])]
    assert changes(p) == {"endpoints": {"removed": [gone]}}
    assert (p.changed, p.pending) == (True, False)
    for scope in ("add", "update"):  # a removal waits for the last step
        q = tables.converge_plan(snap, want, scope)
        assert (q.phases, q.changed, q.pending) == ([], False, True), scope
    assert_settled(world_b, p, want)


# ---------------------------------------------------------------- an interrupted apply's leftovers


def test_a_move_stopped_after_publish_keeps_the_desired_version(move_after_publish):
    """Both moved endpoints are live twice, old version at home, new one
    next to it: the next run retires the stale versions and says so."""
    rec = move_after_publish
    snap, want = rec.snap, rec.state("to")
    eps = snap.tables["endpoints"]
    torn = dict((key, [slot for slot, dummy in eps.versions(key)]) for key in eps.extra)
    assert torn == {EPS.bin_key_of((100, "10.0.0.6")): [194103, 194104],
                    EPS.bin_key_of((200, "10.0.0.5")): [271583, 271584]}
    stale = [endpoint(rec.state("from"), 100, "10.0.0.6"), endpoint(rec.state("from"), 200, "10.0.0.5")]
    assert [raw(snap, 194103), raw(snap, 271583)] == [encoded(snap, e) for e in stale]

    p = tables.converge_plan(snap, want)
    assert p.phases == [("retire", "mzr_endpoints", [(194103, DEAD + raw(snap, 194103)[4:]),
                                                     (271583, DEAD + raw(snap, 271583)[4:])])]
    assert changes(p) == {"endpoints": {"repaired": [
        {"what": "stale second version", "slot": 194103, "entry": stale[0], "detail": None},
        {"what": "stale second version", "slot": 271583, "entry": stale[1], "detail": None}]}}
    assert (p.changed, p.pending) == (True, False)
    # a scoped run settles a torn key on its desired value at once
    add = tables.converge_plan(snap, want, "add")
    assert (add.phases, add.pending) == (p.phases, False)
    assert_settled(rec, p, want)


def test_a_move_stopped_after_publish_can_be_rolled_back(move_after_publish):
    rec = move_after_publish
    snap, back = rec.snap, rec.state("from")
    newer = [endpoint(rec.state("to"), 100, "10.0.0.6"), endpoint(rec.state("to"), 200, "10.0.0.5")]
    p = tables.converge_plan(snap, back)
    # the versions the interrupted run published go; their slots end runs, so they are cleaned too
    assert p.phases == [("retire", "mzr_endpoints", [(194104, DEAD + raw(snap, 194104)[4:]),
                                                     (271584, DEAD + raw(snap, 271584)[4:])]),
                        ("clean", "mzr_endpoints", [(194104, EMPTY["endpoints"]),
                                                    (271584, EMPTY["endpoints"])])]
    assert changes(p) == {"endpoints": {"repaired": [
        {"what": "stale second version", "slot": 194104, "entry": newer[0], "detail": None},
        {"what": "stale second version", "slot": 271584, "entry": newer[1], "detail": None}]}}
    assert_settled(rec, p, back)


def test_a_remove_stopped_after_retire_is_cleaned_and_freed(remove_after_retire):
    """Stopped before clean: the retired entries are tombstones still, and
    substrate host h6, which nothing uses any more, keeps its slot."""
    rec = remove_after_retire
    snap, want = rec.snap, rec.state("to")
    assert dict((n, t.dead) for n, t in snap.tables.items() if t.dead) == {
        "endpoints": [194103, 271583], "networks": [46853], "vpcs": [3440]}
    assert snap.host_slots[H6] == [6]
    p = tables.converge_plan(snap, want)
    assert p.phases == [("clean", "mzr_vpcs", [(3440, EMPTY["vpcs"])]),
                        ("clean", "mzr_networks", [(46853, EMPTY["networks"])]),
                        ("clean", "mzr_endpoints", [(194103, EMPTY["endpoints"]), (271583, EMPTY["endpoints"])]),
                        ("free", "mzr_substrate", [(6, bytes(ctypes.sizeof(abi.Host)))])]
    left = {"what": "tombstones left behind", "slot": None, "entry": None}
    assert changes(p) == {
        "substrate": {"removed": [{"ip": H6, "mac": "02:00:00:00:00:06"}]},
        "endpoints": {"repaired": [dict(left, detail="2 cleaned")]},
        "networks": {"repaired": [dict(left, detail="1 cleaned")]},
        "vpcs": {"repaired": [dict(left, detail="1 cleaned")]}}
    assert (p.changed, p.pending) == (True, False)
    # the first steps clean up but keep every substrate host: freeing h6 is a removal, it waits
    add = tables.converge_plan(snap, want, "add")
    assert (add.phases, add.pending) == (p.phases[:3], True)
    assert_settled(rec, p, want)
