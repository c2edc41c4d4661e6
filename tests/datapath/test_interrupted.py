"""Interrupted applies on the real kernel: whatever phase a run stops
after (or wherever a SIGKILL lands), the next run repairs the maps to
exactly the desired state, says it changed something, shows the repair in
its diff, and the run after it writes nothing. Every table write, at every
phase, shows a lookup either a dead slot or a whole entry."""
import copy
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import fixtures as F
from harness import Harness
from test_tables import _logical
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, tables
from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from ansible_collections.mizar.transit.plugins.module_utils.ops import map_state

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".build")
TABLE_MAPS = set(c.pin_name for c in abi.TABLES.values())


@pytest.fixture(scope="module")
def host():
    h = Harness()
    yield h
    h.close()


def wipe(pin_dir):
    """Every data map back to all-zero slots (a freshly loaded datapath)."""
    with tables.Maps(pin_dir) as maps:
        for name in abi.DATA_MAPS:
            m = maps[name]
            if name == abi.COUNTERS_MAP:
                continue
            zero = bytes(m.value_size)
            # the engine never leaves data behind a zero tag (the first u32)
            dirty = [i for i, tag in enumerate(tables._tags(libbpf.read_array_blob(m), m.value_size)) if tag]
            tables.write_slots(m, [(i, zero) for i in dirty])


def assert_converged(pin_dir, desired, logical=None):
    """The maps hold exactly desired: it reads back (the members of
    scaled endpoints included), every key is live once, every substrate
    host has one slot, and a new plan writes nothing."""
    with tables.Maps(pin_dir) as maps:
        snap = tables.Snapshot(maps)
        assert snap.logical() == (logical or _logical(desired))
        for name, t in snap.tables.items():
            assert not t.extra, (name, "a key is live more than once")
        assert all(len(slots) == 1 for slots in snap.host_slots.values())
        again = tables.plan(snap, desired)
        assert not again.changed and again.writes() == 0, again.phases[:3]


def assert_whole(maps, map_name, writes):
    """Every write of a table either keeps the slot invisible (empty or
    dead before and after) or changes nothing but the tag."""
    if map_name not in TABLE_MAPS:
        return
    m = maps[map_name]
    size = m.value_size
    blob = libbpf.read_array_blob(m)
    invisible = (abi.TAG_EMPTY, abi.TAG_DEAD)
    for slot, new in writes:
        old = bytes(blob[slot * size:(slot + 1) * size])
        old_tag, new_tag = int.from_bytes(old[:4], "little"), int.from_bytes(new[:4], "little")
        assert (old_tag in invisible and new_tag in invisible) or old[4:] == new[4:], (map_name, slot, old, new)


# ---------------------------------------------------------------- scenarios


def _without(w, vni, last):
    w["endpoints"] = [e for e in w["endpoints"] if (e["vni"], e["ip"]) != (vni, "10.0.0.%d" % last)]
    return w


def _add():
    return _without(copy.deepcopy(F.WORLD_B), 100, 6), F.WORLD_B


def _move():
    new = copy.deepcopy(F.WORLD_B)
    for e in new["endpoints"]:
        if (e["vni"], e["ip"]) in ((100, "10.0.0.6"), (200, "10.0.0.5")):
            e["host_ip"] = F.ip("h4")
    return F.WORLD_B, new


def _bouncers():
    new = copy.deepcopy(F.WORLD_B)
    new["networks"][1]["bouncers"] = [F.ip("h5"), F.ip("h1")]
    new["vpcs"][0]["dividers"] = [F.ip("d"), F.ip("h6")]
    new["agents"][0]["bouncers"] = [F.ip("h4")]
    return F.WORLD_B, new


def _remove():
    new = _without(copy.deepcopy(F.WORLD_B), 200, 5)
    new["vpcs"] = [v for v in new["vpcs"] if v["vni"] != 200]
    new["networks"] = new["networks"][:2]
    new["substrate"] = [s for s in new["substrate"] if s["ip"] != F.ip("h6")]
    return F.WORLD_B, _without(new, 100, 6)


def _backends():
    new = copy.deepcopy(F.WORLD_B)
    for e in new["endpoints"]:
        if e["type"] == "scaled":
            e["backends"] = ["10.0.0.6", "10.0.0.7", "10.0.0.8"]
    new["endpoints"].append(F.ep(100, 11, type="scaled", backends=["10.0.0.5"]))
    new["substrate"].append({"ip": "192.168.0.7", "mac": "02:00:00:00:00:07"})  # a new host, unused
    return F.WORLD_B, new


def _crowded_agents():
    """A full probe window: changing one agent can only happen in place."""
    codec = abi.TABLES["agents"]
    target = codec.home({"ifindex": 1})
    same = [i for i in range(1, 2000000) if codec.home({"ifindex": i}) == target][:capacity.PROBES]
    old = copy.deepcopy(F.WORLD_B)
    old["agents"] = [dict(old["agents"][0], ifindex=i) for i in same]
    new = copy.deepcopy(old)
    new["agents"][3]["bouncers"] = [F.ip("h1"), F.ip("h2")]
    new["agents"][3]["mac"] = "02:77:00:00:00:01"
    return old, new


SCENARIOS = {"add": _add, "move": _move, "bouncers": _bouncers, "remove": _remove, "backends": _backends,
             "crowded": _crowded_agents}


def _start(pin_dir, old, new):
    wipe(pin_dir)
    tables.converge(pin_dir, old)
    with tables.Maps(pin_dir) as maps:
        return tables.plan(tables.Snapshot(maps), new)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_phase_prefix_is_repaired(host, name):
    """Apply the first k phases of a plan, for every k, then run again
    towards the new state or back to the old: the maps hold exactly that
    state, the repairing run changed something, the next one nothing."""
    old, new = SCENARIOS[name]()
    n = len(_start(host.pin_dir, old, new).phases)
    assert n >= 2
    for k in range(n + 1):
        for target in (new, old):
            p = _start(host.pin_dir, old, new)
            with tables.Maps(host.pin_dir) as maps:
                for phase, map_name, writes in p.phases[:k]:
                    assert_whole(maps, map_name, writes)
                    tables.write_slots(maps[map_name], writes)
            again = tables.converge(host.pin_dir, target)
            done = k == n if target is new else k == 0
            assert again.changed != done, (k, p.phases[k - 1][:2] if k else None, again.diff)
            assert assert_converged(host.pin_dir, target) is None


def test_whole_writes_and_in_place_change(host):
    """With no free slot in its window, a changed entry is retired, then
    restaged and republished in its own slot: every other entry stays
    found all along, the changed one is found whole (old or new) or not at
    all, and no write shows a half-written entry."""
    old, new = _crowded_agents()
    codec = abi.TABLES["agents"]
    p = _start(host.pin_dir, old, new)
    assert [ph for ph, m, w in p.phases if m == codec.pin_name] == ["retire", "restage", "republish"]
    assert [(o["bouncers"], n["bouncers"]) for o, n in p.diff["agents"]["changed"]] == [
        ([F.ip("b")], [F.ip("h1"), F.ip("h2")])]
    old_l, new_l = _logical(old)["agents"], _logical(new)["agents"]
    changed_key = new["agents"][3]["ifindex"]
    missing_in = []
    with tables.Maps(host.pin_dir) as maps:
        for phase, map_name, writes in p.phases:
            assert_whole(maps, map_name, writes)
            tables.write_slots(maps[map_name], writes)
            snap = tables.Snapshot(maps)
            got = snap.logical()["agents"]
            for key, entry in old_l.items():
                if key != changed_key:
                    assert got[key] == entry, (phase, key)
            seen = got.get(changed_key)
            assert seen in (old_l[changed_key], new_l[changed_key], None), (phase, seen)
            if seen is None:
                missing_in.append(phase)
    assert missing_in == ["retire", "restage"]
    assert_converged(host.pin_dir, new)


def test_a_move_stopped_after_publish_is_repaired_and_shown(host):
    """The bug: stopped after publish, a moved endpoint is live twice, and
    every later run said changed: false while lookups could find the old
    host. Now the next run retires the stale version and says so."""
    old, new = _move()
    p = _start(host.pin_dir, old, new)
    with tables.Maps(host.pin_dir) as maps:
        for phase, map_name, writes in p.phases:
            if phase in ("retire", "clean", "free"):
                break
            tables.write_slots(maps[map_name], writes)
        snap = tables.Snapshot(maps)
        assert len(snap.tables["endpoints"].versions(abi.TABLES["endpoints"].bin_key_of((100, "10.0.0.6")))) == 2
    again = tables.converge(host.pin_dir, new)
    assert again.changed and again.writes() > 0
    d = again.diff["endpoints"]
    assert not (d["added"] or d["changed"] or d["removed"])
    stale = sorted((r["what"], r["entry"]["ip"], r["entry"]["host_ip"]) for r in d["repaired"] if r["entry"])
    assert stale == [("stale second version", "10.0.0.5", F.ip("h6")), ("stale second version", "10.0.0.6", F.ip("h2"))]
    before, after, changes = map_state.describe(again, map_state.Names({}, lambda i: None))
    assert "repair stale second version (slot %d)" % d["repaired"][0]["slot"] in before
    assert [c["op"] for c in changes if c["map"] == "endpoints"] == ["repair", "repair"]
    assert_converged(host.pin_dir, new)


def test_crafted_leftovers_are_repaired(host):
    """States no finished run leaves, written by hand: a second substrate
    slot of a host that an endpoint uses, a membership of a VIP nobody
    declares, a staged entry and a lone tombstone."""
    wipe(host.pin_dir)
    tables.converge(host.pin_dir, F.WORLD_B)
    eps = abi.TABLES["endpoints"]
    with tables.Maps(host.pin_dir) as maps:
        snap = tables.Snapshot(maps)
        h1 = snap.host_slot[F.ip("h1")]
        spare = max(snap.hosts) + 1
        tables.write_slots(maps[abi.SUBSTRATE_MAP], [(spare, abi.encode_host({"ip": F.ip("h1"), "mac": F.mac("h1")}))])
        slot, raw = snap.tables["endpoints"].live[eps.bin_key_of((100, "10.0.0.5"))]
        assert raw[10:12] == h1.to_bytes(2, "little")
        tables.write_slots(maps[eps.pin_name], [(slot, raw[:10] + spare.to_bytes(2, "little") + raw[12:])])
        members = abi.TABLES["members"]
        stray = {"vni": 300, "vip": "10.3.0.9", "ip": "10.3.0.5"}
        tables.write_slots(maps[members.pin_name], [(members.home(stray), members.encode(stray, None))])
        ghost = eps.encode(F.ep(100, 99, host_ip=F.ip("h1")), lambda ip: h1)
        far = (eps.home(F.ep(100, 99)) + 7) & (eps.slots - 1)
        tables.write_slots(maps[eps.pin_name], [(far, tables.TAG_DEAD + ghost[4:])])
        lone = (eps.home(F.ep(100, 98)) + 3) & (eps.slots - 1)
        tables.write_slots(maps[eps.pin_name], [(lone, tables.TAG_DEAD + bytes(eps.layout.size - 4))])
    p = tables.converge(host.pin_dir, F.WORLD_B)
    assert p.changed
    # the endpoint moves to h1's kept slot: rewritten, but the same entry, so no "changed" line for it;
    # the substrate's repair says why
    assert p.diff["endpoints"]["changed"] == []
    assert [(r["what"], r["slot"]) for r in p.diff["substrate"]["repaired"]] == [("second slot of a host", spare)]
    whats = sorted((r["what"], r["slot"], r["detail"]) for r in p.diff["endpoints"]["repaired"])
    assert whats == [("tombstones left behind", None, "2 cleaned")]
    assert p.diff["members"]["removed"] == [stray]
    assert_converged(host.pin_dir, F.WORLD_B)


def test_scoped_run_settles_a_torn_key_on_its_desired_value(host):
    """scope=add keeps what the maps hold, but of two versions of a key
    left by an interrupted run it keeps the desired one, not the old."""
    old, new = _move()
    p = _start(host.pin_dir, old, new)
    with tables.Maps(host.pin_dir) as maps:
        for phase, map_name, writes in p.phases:
            if phase == "retire":
                break
            tables.write_slots(maps[map_name], writes)
    tables.converge(host.pin_dir, new, scope="add")
    got = tables.read_state(host.pin_dir)["endpoints"]
    assert got[(100, "10.0.0.6")]["host_ip"] == F.ip("h4")
    assert tables.converge(host.pin_dir, new, scope="all").writes() == 0
    assert_converged(host.pin_dir, new)


# ---------------------------------------------------------------- SIGKILL

CHILD = r"""
import json, sys
sys.path.insert(0, %(collections)r)
from ansible_collections.mizar.transit.plugins.module_utils.bpf import tables
import time
pin_dir, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    state = json.load(f)
apply_plan = tables.apply_plan


def timed_apply(maps, p):  # when the writes begin, for the parent's calibration
    print("apply %%f" %% (time.monotonic() - t0), flush=True)
    apply_plan(maps, p)


tables.apply_plan = timed_apply
print("go", flush=True)
t0 = time.monotonic()
tables.converge(pin_dir, state)
print("done %%f" %% (time.monotonic() - t0), flush=True)
"""


def big_state(n, shift, drop):
    """n endpoints over 500 hosts; shift moves every endpoint to another
    host; drop leaves out every drop-th endpoint (and adds as many new)."""
    hosts = [{"ip": "10.200.%d.%d" % (i // 250, i % 250 + 1), "mac": "02:00:00:00:%02x:%02x" % (i // 256, i % 256)}
             for i in range(500)]
    eps = []
    for i in range(n):
        j = i + n if drop and i % drop == 0 else i
        eps.append({"vni": 100 + j % 300, "ip": "10.%d.%d.%d" % (j // 65536, (j // 256) % 256, j % 256),
                    "type": "simple", "host_ip": hosts[(j + shift) % 500]["ip"], "ifindex": 0,
                    "mac": "02:ee:00:%02x:%02x:%02x" % ((j >> 16) & 255, (j >> 8) & 255, j & 255),
                    "bypass_decap": False, "backends": []})
    return {"if_cfg": {"ip": "10.201.0.1", "mac": "02:00:00:00:ff:01", "ifindex": 1}, "substrate": hosts,
            "endpoints": eps, "networks": [], "vpcs": [], "agents": []}


def _child(pin_dir, path):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen([sys.executable, "-c", CHILD % {"collections": COLLECTIONS}, pin_dir, path],
                            stdout=subprocess.PIPE, universal_newlines=True, env=env)


def test_sigkill_at_random_points_of_a_large_apply(host, tmp_path):
    """A subprocess applies ~50,000 endpoint changes with tables.converge
    and is SIGKILLed after a random (seeded) delay; the next run repairs
    the maps to exactly the state asked for."""
    rng = random.Random(8013)
    states = [big_state(50000, 0, 0), big_state(50000, 1, 10)]
    logical = []
    paths = []
    for i, s in enumerate(states):
        path = str(tmp_path / ("state%d.json" % i))
        with open(path, "w") as f:
            json.dump(s, f)
        paths.append(path)
        logical.append(_logical(s))
    wipe(host.pin_dir)
    tables.converge(host.pin_dir, states[0])
    # calibration: one whole run of the child
    child = _child(host.pin_dir, paths[1])
    out = child.communicate(timeout=300)[0].split()
    assert child.returncode == 0 and [out[0], out[1], out[3]] == ["go", "apply", "done"], out
    writes_from, duration = float(out[2]), float(out[4])
    assert_converged(host.pin_dir, states[1], logical[1])
    cur, killed, midway, torn, repaired = 1, 0, 0, 0, 0
    rounds = 8
    for rnd in range(rounds):
        target = 1 - cur
        child = _child(host.pin_dir, paths[target])
        said = [child.stdout.readline().split()[0]]
        assert said == ["go"]
        if rnd % 2:  # anywhere in the run, reading and planning included
            time.sleep(rng.uniform(0, 1.05 * duration))
        else:  # during its writes, which are short: from when they begin
            said.append(child.stdout.readline().split()[0])
            time.sleep(rng.uniform(0, 1.2 * (duration - writes_from)))
        child.send_signal(signal.SIGKILL)
        said += child.communicate(timeout=300)[0].split()[::2]
        killed += child.returncode == -signal.SIGKILL
        midway += "apply" in said and "done" not in said
        with tables.Maps(host.pin_dir) as maps:
            torn += any(t.extra for t in tables.Snapshot(maps).tables.values())
        cur = target if rnd % 3 else 1 - target  # mostly on towards the target, sometimes back
        p = tables.converge(host.pin_dir, states[cur])
        repaired += any(d["repaired"] for d in p.diff.values())
        assert_converged(host.pin_dir, states[cur], logical[cur])
    print("sigkill: %d of %d killed, %d during the writes, %d left keys live twice, %d runs repaired leftovers"
          % (killed, rounds, midway, torn, repaired))
    assert midway >= 2, "too few kills landed during the writes (%d of %d): the test tested little" % (midway, rounds)
