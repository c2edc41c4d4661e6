# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's tables as a declarative state.

read_state() decodes what a host's maps hold into the same logical entries
the renderer produces; plan() computes the slot writes that take the maps
from what they hold to a desired state, and the per-map difference a
person reads in --diff; apply_plan() performs them, in batches, in an order
that never shows a reader a gap or a half-written entry:

  1. prepare: if_cfg, new substrate hosts (nothing refers to them yet)
  2. stage: new and changed entries written into free slots with the
     tombstone tag, invisible to lookups
  3. publish: the same slots rewritten with their real tag; a changed entry
     now has two versions, and lookups find one or the other, both whole
  4. retire: removed entries and old versions get the tombstone tag
  5. restage, republish: see below
  6. clean: tombstones at the end of a probe run become empty again
  7. free: the substrate slots nothing refers to any more

Whole entries. An array map update copies a slot's bytes with no order a
concurrent lookup can rely on, so a slot is only ever rewritten in ways
where all bytes but the tag stay the same: every entry, even one going into
an empty slot, is staged with the tombstone tag and then published, and
retiring changes only the tag. A lookup sees a dead slot or a whole entry,
never, say, a found endpoint with a zero MAC.

No free slot. A changed entry whose probe window holds no free slot cannot
be made before it is broken. It is retired first, then staged and published
in its own slot (restage, republish): lookups miss it for the moment
between, and a miss is a dropped, counted packet the sender retransmits. We
do not refuse instead: the crowding comes from hash collisions the operator
cannot see, and a refused change leaves the old value -- a route to where
the endpoint no longer is -- in place for good. A new entry with no free
slot is still refused (TableError), as nothing else could make room.

Interrupted runs. A run stopped between phases (a killed ansible-playbook,
a reboot of the controller) leaves states a finished run never does:
several live versions of a key (stopped after publish), staged entries and
tombstones left uncleaned, substrate slots nobody uses. The
snapshot sees all of them and plan() repairs them with the same phases: of
several versions the desired one is kept (or a new one published) and the
others retired; such work is reported as a change, in the diff's
"repaired" lists, so a run after an interruption says changed and the one
after it writes nothing.

Map I/O and planning are apart: read_images() reads the bytes of every slot
of the maps a plan depends on, Snapshot decodes such images, and
converge_plan() (like plan() and scoped()) works on a Snapshot alone. A
Snapshot of images recorded from a host (Snapshot.from_images) plans
exactly as the host's maps would, with no maps and no root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import ctypes
import itertools
import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf

from ansible_collections.mizar.transit.plugins.module_utils.model import capacity
from ansible_collections.mizar.transit.plugins.module_utils.bpf.libbpf import Map

TAG_DEAD = abi.TAG_DEAD.to_bytes(4, "little")
TAG_EMPTY = bytes(4)
# publish order: a peer route before the VPC entry that lists its prefix length
# and a scaled endpoint's members before the endpoint
ORDER = ("sources", "peers", "vpcs", "networks", "members", "endpoints", "agents")
LOGICAL = ("if_cfg", "substrate", "sources", "endpoints", "members", "networks", "vpcs", "agents", "peers")


class TableError(Exception):
    """A desired state that the tables cannot hold; nothing was written."""


# ---------------------------------------------------------------- map access


class Maps:
    """The pinned maps of one host's datapath (abi.DATA_MAPS), each opened
    once, when first used, and kept open until close(): one set of fds for
    a whole read or apply, and none for a map it does not touch."""

    def __init__(self, pin_dir):
        self.pin_dir = pin_dir
        self.maps = {}

    def __getitem__(self, name):
        m = self.maps.get(name)
        if m is None:
            if name not in abi.DATA_MAPS:
                raise KeyError("%s is not a datapath map" % name)
            m = self.maps[name] = Map.from_pin(os.path.join(self.pin_dir, name))
        return m

    def write(self, name, writes):
        """One batch of a plan's writes, [(slot, value bytes)], into map name."""
        write_slots(self[name], writes)

    def close(self):
        for m in self.maps.values():
            m.close()
        self.maps = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_slots(m, writes):
    """Write [(slot, value bytes)] into an ARRAY map in one batch."""
    if writes:  # keys: u32 slot numbers, little-endian like the hosts we run on (see _tags)
        m.update_batch_blobs(array.array("I", [slot for slot, dummy in writes]).tobytes(),
                             b"".join([value for dummy, value in writes]))


def _tags(blob, size):
    """The first u32 of every slot."""
    if size % 4 == 0:
        return array.array("I", blob)[::size // 4]
    return [int.from_bytes(blob[i:i + 4], "little") for i in range(0, len(blob), size)]


def _scan(blob, size, block=4096):
    """(used, dead): the slots of an image whose tag is not 0, and those of
    them with the tombstone tag, in order. Tables are mostly empty: a block
    of slots whose bytes are all 0 is skipped by one comparison, and the
    tags of the others are picked out without a Python loop."""
    used, dead = [], []
    step = block * size
    zero = bytes(step)
    for off in range(0, len(blob) - len(blob) % size, step):
        chunk = blob[off:off + step]
        if chunk == zero[:len(chunk)]:
            continue
        tags = _tags(chunk[:len(chunk) - len(chunk) % size], size)
        base = off // size
        found = list(itertools.compress(range(base, base + len(tags)), tags))
        used += found
        if abi.TAG_DEAD in tags:
            dead += [slot for slot in found if tags[slot - base] == abi.TAG_DEAD]
    return used, dead


# ---------------------------------------------------------------- snapshot

# the maps a plan depends on: their images make a Snapshot
IMAGE_MAPS = (abi.IF_CFG_MAP, abi.SUBSTRATE_MAP) + tuple(c.pin_name for c in abi.TABLES.values())


def read_images(maps):
    """{map name: the bytes of every slot, slot i at i * value size} of the
    IMAGE_MAPS of a host's Maps: all a Snapshot is made of."""
    return dict((name, libbpf.read_array_blob(maps[name])) for name in IMAGE_MAPS)


class Snapshot:
    """What a host's maps hold: raw slots, decoded entries and free slots,
    including what an interrupted run may have left behind (several live
    versions of a key, several substrate slots of one host), for plan() to
    repair.

    Snapshot(maps) reads a host's Maps; Snapshot.from_images(images) decodes
    images read_images() gave, live or recorded."""

    def __init__(self, maps):
        self._decode(read_images(maps))

    @classmethod
    def from_images(cls, images):
        """The snapshot of map images ({map name: bytes}, as read_images()
        gives them): no map is read."""
        snap = cls.__new__(cls)
        snap._decode(images)
        return snap

    def _decode(self, images):
        missing = [name for name in IMAGE_MAPS if name not in images]
        if missing:
            raise ValueError("map images: %s missing" % ", ".join(missing))
        self.if_cfg = images[abi.IF_CFG_MAP]
        hosts = images[abi.SUBSTRATE_MAP]
        hsize = ctypes.sizeof(abi.Host)
        self.hosts = {}  # slot -> {ip, mac}
        for slot in _scan(hosts, hsize)[0]:  # a slot whose address (its first u32) is 0 is free
            if slot:
                self.hosts[slot] = abi.decode_host(hosts[slot * hsize:(slot + 1) * hsize])
        self.host_slots = {}  # ip -> [slots], lowest first
        for slot in sorted(self.hosts):
            self.host_slots.setdefault(self.hosts[slot]["ip"], []).append(slot)
        self.host_slot = dict((ip, slots[0]) for ip, slots in self.host_slots.items())
        self.tables = {}
        for name, codec in abi.TABLES.items():
            self.tables[name] = _TableSnapshot(codec, images[codec.pin_name])

    def host_ip(self, slot):
        h = self.hosts.get(slot)
        return h["ip"] if h else None

    def logical(self):
        """{map: {key: entry}} in the renderer's terms; of several versions
        of a key, the one a lookup finds. A scaled endpoint's backends are
        its members, in address order (the membership is a set)."""
        out = {"if_cfg": abi.decode_if_cfg(self.if_cfg) if self.if_cfg else None,
               "substrate": dict((ip, self.hosts[slots[0]]) for ip, slots in self.host_slots.items())}
        for name, t in self.tables.items():
            decoded = (t.codec.decode(raw, self.host_ip) for slot, raw in t.live.values())
            out[name] = dict((t.codec.key(e), e) for e in decoded)
        backends = {}
        for vni, vip, ip in out["members"]:
            backends.setdefault((vni, vip), []).append(ip)
        for key, ips in backends.items():
            ep = out["endpoints"].get(key)
            if ep is not None and ep["type"] == "scaled":
                ep["backends"] = sorted(ips, key=abi.ip_to_u32)
        return out


def _no_host(slot):
    return None


class _TableSnapshot:
    """One table's image: the slots in use and the tombstones at once; the
    tags of every slot and the live versions by key (live, extra) when
    first asked for. A run that changes nothing never builds them (see
    holds())."""

    def __init__(self, codec, blob):
        self.codec = codec
        self.size = ctypes.sizeof(codec.ctype)
        self.blob = blob
        self.used, self.dead = _scan(blob, self.size)  # slots with a tag; of them, the tombstones
        self._tags = self._raws = self._live = self._extra = None

    @property
    def tags(self):
        """The first u32 of every slot."""
        if self._tags is None:
            self._tags = _tags(self.blob, self.size)
        return self._tags

    @property
    def live(self):
        """{binary key (codec.bin_key): (slot, raw)}: the version a lookup
        finds first."""
        if self._live is None:
            self._index()
        return self._live

    @property
    def extra(self):
        """{binary key: [(slot, raw)]}: further live versions, in probe order."""
        if self._extra is None:
            self._index()
        return self._extra

    def raws(self):
        """The bytes of every slot in use (tombstones included), in slot order."""
        if self._raws is None:
            blob, size = self.blob, self.size
            self._raws = [blob[slot * size:(slot + 1) * size] for slot in self.used]
        return self._raws

    def holds(self, raws):
        """Whether the table holds exactly the entries raws (encoded), each
        in one live version, and no tombstone: then a plan has nothing to
        write. Whole entries are compared as bytes, none is decoded."""
        have = self.raws()
        if self.dead or len(have) != len(raws):
            return False
        key_len = self.codec.key_len
        return len(set(raw[:key_len] for raw in have)) == len(have) and set(have) == set(raws)

    def _index(self):
        live, extra, key_len = {}, {}, self.codec.key_len
        dead_slots = set(self.dead)
        for slot, raw in zip(self.used, self.raws()):
            if slot in dead_slots:
                continue
            key = raw[:key_len]
            if key in live:
                extra.setdefault(key, []).append((slot, raw))
            else:
                live[key] = (slot, raw)
        codec = self.codec
        mask = codec.slots - 1
        for key, more in extra.items():
            versions = [live[key]] + more
            home = codec.home(codec.decode(versions[0][1], _no_host))
            versions.sort(key=lambda v: (v[0] - home) & mask)
            live[key], extra[key] = versions[0], versions[1:]
        self._live, self._extra = live, extra

    def raw(self, slot):
        return self.blob[slot * self.size:(slot + 1) * self.size]

    def versions(self, key):
        """Every live (slot, raw) of a binary key, in probe order."""
        cur = self.live.get(key)
        return ([cur] + self.extra.get(key, [])) if cur else []


def read_state(pin_dir):
    """The logical state a host's maps hold."""
    with Maps(pin_dir) as maps:
        return Snapshot(maps).logical()


# ---------------------------------------------------------------- planning


DIFF_KEYS = ("added", "changed", "removed", "repaired")


def _repair(what, slot=None, entry=None, detail=None):
    """One thing an interrupted run left behind that a plan puts right."""
    return {"what": what, "slot": slot, "entry": entry, "detail": detail}


class _RawDiff:
    """One table's difference as slot bytes, decoded only when asked for:
    a plan of 100,000 additions need not build 100,000 dicts to be applied.
    repaired: [(what, slot, raw or None, detail)]."""

    def __init__(self, codec, old_ctx, new_ctx):
        self.codec, self.old_ctx, self.new_ctx = codec, old_ctx, new_ctx
        self.added, self.changed, self.removed, self.repaired = [], [], [], []

    def __len__(self):
        return len(self.added) + len(self.changed) + len(self.removed) + len(self.repaired)

    def decoded(self, repaired):
        dec = self.codec.decode
        return {"added": [dec(r, *self.new_ctx) for r in self.added],
                "changed": [pair for pair in ((dec(o, *self.old_ctx), dec(n, *self.new_ctx)) for o, n in self.changed)
                            if pair[0] != pair[1]],  # moved to a host's new slot only: the same entry
                "removed": [dec(r, *self.old_ctx) for r in self.removed],
                "repaired": repaired + [_repair(what, slot, dec(r, *self.old_ctx) if r else None, detail)
                                        for what, slot, r, detail in self.repaired]}


class Plan:
    """Slot writes in phases, and the logical difference they make
    (diff: {map: {added: [entry], changed: [(old, new)], removed: [entry],
    repaired: [{what, slot, entry, detail}]}}). repaired lists what an
    interrupted run left behind and this plan puts right: a stale second
    version of an entry (entry: that version), tombstones left uncleaned
    (detail: how many), a substrate slot nobody uses."""

    def __init__(self):
        self.phases = []  # [(phase name, map name, [(slot, bytes)])]
        self._diff = dict((name, dict((k, []) for k in DIFF_KEYS)) for name in LOGICAL)
        self._raw = {}  # table name -> _RawDiff, decoded into _diff on first use
        self.pending = False  # a later scope has work left (converge())

    def add(self, phase, map_name, writes):
        if writes:
            self.phases.append((phase, map_name, writes))

    @property
    def diff(self):
        for name, raw in self._raw.items():
            self._diff[name] = raw.decoded(self._diff[name]["repaired"])
        self._raw = {}
        return self._diff

    @property
    def changed(self):
        """Whether the plan writes anything: every write is in the diff."""
        return bool(self.phases or any(len(r) for r in self._raw.values())
                    or any(any(d[k] for k in DIFF_KEYS) for d in self._diff.values()))

    def writes(self):
        return sum(len(w) for dummy, dummy, w in self.phases)


def _norm_entries(desired, name):
    return desired.get(name) or []


def self_entry(state):
    """The substrate entry plan() adds for the host itself."""
    cfg = state.get("if_cfg")
    return {"ip": cfg["ip"], "mac": cfg["mac"].lower()} if cfg else None


def plan(snap, desired):
    """Plan the writes from snapshot snap to the desired logical state:
    {"if_cfg": {...}, "substrate": [...], "endpoints": [...], "networks": [...],
    "vpcs": [...], "agents": [...], "sources": [...], "peers": [...]}. Raises
    TableError, writing nothing,
    when the state does not fit."""
    p = Plan()

    # -- if_cfg
    want_cfg = desired.get("if_cfg")
    if want_cfg is not None:
        raw = abi.encode_if_cfg(want_cfg)
        if raw != snap.if_cfg:
            old = abi.decode_if_cfg(snap.if_cfg) if snap.if_cfg else None
            p._diff["if_cfg"]["changed" if old and old["ip"] != "0.0.0.0" else "added"].append(
                (old, abi.decode_if_cfg(raw)) if old and old["ip"] != "0.0.0.0" else abi.decode_if_cfg(raw))
            p.add("prepare", abi.IF_CFG_MAP, [(0, raw)])

    # -- substrate hosts: keep every slot of a host still wanted. This host
    # is one too: an agent whose bouncer is its own host refers to it.
    want_hosts = {}
    for h in _norm_entries(desired, "substrate"):
        want_hosts[h["ip"]] = h["mac"]
    me = want_cfg or (abi.decode_if_cfg(snap.if_cfg) if snap.if_cfg else None)
    if me and me["ip"] != "0.0.0.0":
        want_hosts.setdefault(me["ip"], me["mac"])
    if len(want_hosts) > capacity.MAX_SUBSTRATE:
        raise TableError("substrate: %d hosts, at most %d" % (len(want_hosts), capacity.MAX_SUBSTRATE))
    slot_of = {}
    free_host = (s for s in range(1, capacity.HOST_SLOTS) if s not in snap.hosts)
    host_writes, host_frees = [], []
    moved = set()  # slots of hosts whose MAC moved to a fresh slot
    sub_diff = p._diff["substrate"]
    for ip in sorted(want_hosts, key=abi.ip_to_u32):
        mac = want_hosts[ip]
        if ip in snap.host_slot:
            slots = snap.host_slots[ip]
            slot = next((s for s in slots if snap.hosts[s]["mac"] == mac.lower()), slots[0])
            old_mac = snap.hosts[slot]["mac"]
            if old_mac != mac.lower():
                # A new MAC goes into a fresh slot, and the entries that
                # refer to the host move to it through stage and publish:
                # a lookup never reads a MAC half-written. The old slot is
                # freed last. (With no slot free: rewritten in place.)
                fresh = next(free_host, None)
                if fresh is not None:
                    moved.add(slot)
                    slot = fresh
                host_writes.append((slot, abi.encode_host({"ip": ip, "mac": mac})))
                sub_diff["changed"].append(({"ip": ip, "mac": old_mac}, {"ip": ip, "mac": mac.lower()}))
        else:
            slot = next(free_host)
            host_writes.append((slot, abi.encode_host({"ip": ip, "mac": mac})))
            sub_diff["added"].append({"ip": ip, "mac": mac.lower()})
        slot_of[ip] = slot
    for ip, slots in sorted(snap.host_slots.items()):
        keep = slot_of.get(ip)
        if keep is None:
            keep = slots[0]
            host_frees.append((keep, bytes(ctypes.sizeof(abi.Host))))
            sub_diff["removed"].append(snap.hosts[keep])
        for slot in slots:  # a second slot of one host: its entries move to the one kept
            if slot != keep:
                host_frees.append((slot, bytes(ctypes.sizeof(abi.Host))))
                if slot not in moved:
                    sub_diff["repaired"].append(_repair("second slot of a host", slot, snap.hosts[slot]))
    host_frees.sort()

    def host_slot(ip):
        try:
            return slot_of[ip]
        except KeyError:
            raise TableError("an entry refers to substrate host %s, which has no substrate entry" % ip)

    # -- VPC entries carry the prefix lengths of the networks and of the
    # peer routes held here
    networks, peers = _norm_entries(desired, "networks"), _norm_entries(desired, "peers")
    plens = {"networks": {}, "peers": {}}
    for name, entries in (("networks", networks), ("peers", peers)):
        for n in entries:
            try:
                abi.check_vni(n["vni"])
            except ValueError as err:
                raise TableError("%s: entry %r: %s" % (name, _key_of(abi.TABLES[name], n), err))
            plens[name].setdefault(n["vni"], set()).add(int(n["cidr"].partition("/")[2] or 32))
    vpcs = {}
    for v in _norm_entries(desired, "vpcs"):
        vpcs[v["vni"]] = dict(v)
    for name, field in (("networks", "plens"), ("peers", "peer_plens")):
        for vni in plens[name]:  # networks or peer routes of a VPC with no entry of its own
            vpcs.setdefault(vni, {"vni": vni, "dividers": [], "local_divider": False})
    for vni, v in vpcs.items():
        v["plens"] = sorted(plens["networks"].get(vni, ()), reverse=True)
        v["peer_plens"] = sorted(plens["peers"].get(vni, ()), reverse=True)
    endpoints = _norm_entries(desired, "endpoints")
    want = {"endpoints": endpoints, "networks": networks, "members": members_of(endpoints),
            "vpcs": [vpcs[k] for k in sorted(vpcs)], "agents": _norm_entries(desired, "agents"),
            "sources": _norm_entries(desired, "sources"), "peers": peers}

    limits = {"endpoints": capacity.MAX_ENDPOINTS, "networks": capacity.MAX_NETWORKS,
              "vpcs": capacity.MAX_VPCS, "agents": capacity.MAX_AGENTS, "sources": capacity.MAX_SOURCES,
              "peers": capacity.MAX_PEERS, "members": capacity.MAX_MEMBERS}
    writes = {}
    new_host_ip = dict((s, ip) for ip, s in slot_of.items()).get
    for name in ORDER:
        codec = abi.TABLES[name]
        t = snap.tables[name]
        entries = want[name]
        if len(entries) > limits[name]:
            raise TableError("%s: %d entries, at most %d on one host" % (name, len(entries), limits[name]))
        raw_diff = p._raw[name] = _RawDiff(codec, (snap.host_ip,), (new_host_ip,))
        try:
            writes[name] = _plan_table(codec, t, entries, host_slot, raw_diff)
        except (KeyError, ValueError) as e:
            raise TableError("%s: %s" % (name, e))

    p.add("prepare", abi.SUBSTRATE_MAP, host_writes)
    for i, phase in enumerate(PHASES):
        for name in ORDER:
            p.add(phase, abi.TABLES[name].pin_name, writes[name][i])
    p.add("free", abi.SUBSTRATE_MAP, host_frees)
    return p


def members_of(endpoints):
    """The mzr_members entries of the scaled endpoints among endpoints: one
    {vni, vip, ip} per backend. Raises TableError for an endpoint with more
    backends than MAX_BACKENDS."""
    out = []
    for e in endpoints:
        if e.get("type") != "scaled":
            continue
        ips = e.get("backends") or []
        if len(ips) > capacity.MAX_BACKENDS:
            raise TableError("endpoints: entry %r: backends: %d, at most %d"
                             % ((e["vni"], e["ip"]), len(ips), capacity.MAX_BACKENDS))
        vni, vip = e["vni"], e["ip"]
        try:
            abi.check_vni(vni)
        except ValueError as err:
            raise TableError("endpoints: entry %r: backends: %s" % ((vni, vip), err))
        out += [{"vni": vni, "vip": vip, "ip": ip} for ip in ips]
    return out


def _key_of(codec, entry):
    try:
        return codec.key(entry)
    except (KeyError, ValueError, TypeError):
        return entry


TAKEN = 0xFFFFFFFE  # a slot this plan fills (not a tag the datapath ever sees)
PHASES = ("stage", "publish", "retire", "restage", "republish", "clean")


def _plan_table(codec, t, entries, host_slot, diff):
    """The writes of one table, one list per phase of PHASES.

    Every entry is written twice: first with the tombstone tag (stage), then
    with its own (publish); between the two only the tag changes, so a
    lookup sees either a dead slot or the whole entry. A changed entry's
    new version goes to a free slot of its probe window and the old one is
    retired after it is published. With no free slot in the window, the old
    version is retired first and the new one staged and published in that
    slot afterwards (restage, republish): the entry is missing for a moment,
    never half-written. Of several live versions of a key (an interrupted
    run's), the desired one is kept and the others retired."""
    try:  # all at once; an entry that does not encode is named by the loop below, in its turn
        raws = codec.encode_all(entries, host_slot)
    except Exception:
        raws = None
    if raws is not None and t.holds(raws):
        return [], [], [], [], [], []
    mask = codec.slots - 1
    tags = array.array("I", t.tags)
    size = t.size
    zero = bytes(size)
    live, extra = t.live, t.extra
    probes = capacity.PROBES
    free = (abi.TAG_EMPTY, abi.TAG_DEAD)
    key_len = codec.key_len
    stage, publish, retire, restage, republish = [], [], [], [], []
    seen = set()

    def stale(versions):
        for slot, raw in versions:
            diff.repaired.append(("stale second version", slot, raw, None))
            retire.append((slot, TAG_DEAD + raw[4:]))

    for i, e in enumerate(entries):
        try:
            raw = raws[i] if raws is not None else codec.encode(e, host_slot)
        except (KeyError, ValueError) as err:
            raise ValueError("entry %r: %s" % (_key_of(codec, e), err))
        tag = raw[:4]
        if tag == TAG_DEAD or tag == TAG_EMPTY:
            raise ValueError("entry %r: its first field (the slot's tag) is %d, which marks %s slot"
                             % (_key_of(codec, e), int.from_bytes(tag, "little"),
                                "a free" if tag == TAG_EMPTY else "a dead"))
        key = raw[:key_len]
        if key in seen:
            raise ValueError("entry %r is given twice" % (codec.key(e),))
        seen.add(key)
        cur = live.get(key)
        if cur is not None:
            more = extra.get(key) if extra else None
            if more:
                versions = [cur] + more
                keep = next((v for v in versions if v[1] == raw), None)
                if keep is not None:
                    stale([v for v in versions if v is not keep])
                    continue
                stale(more)
            elif cur[1] == raw:
                continue
        home = codec.home(e)
        slot = None
        for i in range(probes):
            cand = (home + i) & mask
            if tags[cand] in free:
                slot = cand
                break
        if cur is None:
            diff.added.append(raw)
        else:
            diff.changed.append((cur[1], raw))
        if slot is None:
            if cur is None:
                raise ValueError("no free slot within %d of the home slot of %r: the table is too crowded"
                                 % (probes, codec.key(e)))
            retire.append((cur[0], TAG_DEAD + cur[1][4:]))
            restage.append((cur[0], TAG_DEAD + raw[4:]))
            republish.append((cur[0], raw))
            continue
        stage.append((slot, TAG_DEAD + raw[4:]))
        publish.append((slot, raw))
        tags[slot] = TAKEN
        if cur is not None:
            retire.append((cur[0], TAG_DEAD + cur[1][4:]))
    if not seen.issuperset(live):
        for key, (slot, raw) in sorted(live.items(), key=lambda kv: kv[1][0]):
            if key not in seen:
                diff.removed.append(raw)
                retire.append((slot, TAG_DEAD + raw[4:]))
                stale(extra.get(key, ()))
    retire.sort()
    for slot, dummy in retire:
        tags[slot] = abi.TAG_DEAD
    for slot, dummy in republish:
        tags[slot] = TAKEN
    clean = []
    if retire or t.dead:
        # tombstones a finished run would have cleaned: an interrupted run's
        leftover = set(_cleanable(array.array("I", t.tags), mask, t.dead)) if t.dead else ()
        clean = _cleanable(tags, mask, t.dead + [s for s, dummy in retire])
        n = len(leftover.intersection(clean)) if leftover else 0
        if n:
            diff.repaired.append(("tombstones left behind", None, None, "%d cleaned" % n))
    return stage, publish, retire, restage, republish, [(s, zero) for s in clean]


def fill(m, codec, entries):
    """Write entries into m, an empty table of codec that no program reads
    yet (a migration's new map), each in the slot a plan would give it;
    returns the count. Raises TableError when they do not fit."""
    t = _TableSnapshot(codec, bytes(m.value_size * m.max_entries))
    try:
        writes = _plan_table(codec, t, entries, _no_host, _RawDiff(codec, (_no_host,), (_no_host,)))
    except (KeyError, ValueError) as e:
        raise TableError("%s: %s" % (codec.pin_name, e))
    write_slots(m, writes[1])  # published: nobody reads the map yet
    return len(writes[1])


def _cleanable(tags, mask, dead):
    """Tombstones that may become empty: those followed (in probe order) by
    an empty slot, repeatedly, so no live entry's probe run is cut. dead:
    the slots to consider (a superset of the tombstones)."""
    out = []
    for slot in dead:
        if tags[slot] != abi.TAG_DEAD or tags[(slot + 1) & mask] != abi.TAG_EMPTY:
            continue
        s = slot
        while tags[s] == abi.TAG_DEAD:
            tags[s] = abi.TAG_EMPTY
            out.append(s)
            s = (s - 1) & mask
    return sorted(out)


SCOPES = ("add", "update", "all")


def scoped(snap, desired, scope):
    """The desired state narrowed to one step of a fleet-wide change:

    add     entries whose key is new; everything the maps hold stays as is
    update  add, and entries whose value changed; nothing is removed
    all     exactly the desired state

    Run over every host step by step (all hosts add, then all update, then
    all remove), a change never points one host at another before that one
    is ready: a new bouncer learns its endpoints before anyone sends to it,
    and an old one forgets them only after nobody does."""
    if scope == "all":
        return desired
    if scope not in SCOPES:
        raise TableError("scope must be one of %s, not %r" % (", ".join(SCOPES), scope))
    have = snap.logical()
    out = {"if_cfg": desired.get("if_cfg")}
    subs = dict((ip, h) for ip, h in have["substrate"].items())
    for h in _norm_entries(desired, "substrate"):
        if scope == "update" or h["ip"] not in subs:
            subs[h["ip"]] = h
    out["substrate"] = list(subs.values())
    for name in ("sources", "endpoints", "networks", "vpcs", "agents", "peers"):
        codec = abi.TABLES[name]
        merged = dict(have[name])
        # a key with several versions (an interrupted run was changing it)
        # is settled on its desired value at once
        torn = set(codec.key(codec.decode(raw, _no_host)) for key in snap.tables[name].extra
                   for dummy, raw in snap.tables[name].versions(key)[:1])
        for e in _norm_entries(desired, name):
            key = codec.key(e)
            if scope == "update" or key not in merged or key in torn:
                if name == "endpoints" and key in have[name] and key not in torn:
                    e = _keep_members(e, have[name][key])
                merged[key] = e
        out[name] = list(merged.values())
    return out


def _keep_members(want, held):
    """A scaled endpoint's desired entry, with the backends held now that it
    no longer lists kept (after its own): the members table loses nothing
    before scope all."""
    if want.get("type") != "scaled" or held["type"] != "scaled":
        return want
    ips = list(want.get("backends") or [])
    listed = set(ips)
    gone = [ip for ip in held["backends"] if ip not in listed]
    return dict(want, backends=ips + gone) if gone else want


def apply_plan(maps, p):
    """Perform a plan's writes, phase by phase, one batch per map, through
    maps (a Maps, or anything that gives a map by name)."""
    for dummy, map_name, writes in p.phases:
        write_slots(maps[map_name], writes)


def converge_plan(snap, desired, scope="all"):
    """The plan converge() applies, from a Snapshot alone: the writes of one
    scope (see scoped()) and pending, whether a later scope still has work
    after this one (always False for scope all)."""
    p = plan(snap, scoped(snap, desired, scope))
    p.pending = scope != "all" and plan(snap, desired).diff != p.diff
    return p


def converge(pin_dir, desired, check_mode=False, scope="all"):
    """Plan (converge_plan()) and, unless check_mode, apply; returns the plan."""
    with Maps(pin_dir) as maps:
        p = converge_plan(Snapshot(maps), desired, scope)
        if not check_mode:
            apply_plan(maps, p)
        return p
