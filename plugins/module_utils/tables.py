# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath's tables as a declarative state.

read_state() decodes what a host's maps hold into the same logical entries
the renderer produces; plan() computes the slot writes that take the maps
from what they hold to a desired state, and the per-map difference a
person reads in --diff; apply_plan() performs them, in batches, in an order
that never shows a reader a gap or a half-written entry:

  1. if_cfg, new substrate hosts and backend sets (nothing refers to them yet)
  2. stage: new and changed entries written into free slots with the
     tombstone tag, invisible to lookups
  3. publish: the same slots rewritten with their real tag; a changed entry
     now has two versions, and lookups find one or the other, both whole
  4. retire: removed entries and old versions get the tombstone tag
  5. clean: tombstones at the end of a probe run become empty again
  6. free the substrate and backend slots nothing refers to any more

An entry added into an empty (all-zero) slot skips staging: a reader can
then only see it whole or with zeroed fields, and a zeroed entry forwards
nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import array
import ctypes
import os

from ansible_collections.mizar.transit.plugins.module_utils import abi, capacity, libbpf
from ansible_collections.mizar.transit.plugins.module_utils.libbpf import Map

TAG_DEAD = abi.TAG_DEAD.to_bytes(4, "little")
TAG_EMPTY = bytes(4)
ORDER = ("vpcs", "networks", "endpoints", "agents")  # publish order
LOGICAL = ("if_cfg", "substrate", "endpoints", "networks", "vpcs", "agents")


class TableError(Exception):
    """A desired state that the tables cannot hold; nothing was written."""


# ---------------------------------------------------------------- map access


class Maps:
    """The pinned maps of one host's datapath."""

    def __init__(self, pin_dir):
        self.pin_dir = pin_dir
        self.maps = {}
        for name in abi.DATA_MAPS:
            self.maps[name] = Map.from_pin(os.path.join(pin_dir, name))

    def __getitem__(self, name):
        return self.maps[name]

    def close(self):
        for m in self.maps.values():
            m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_slots(m, writes):
    """Write [(slot, value bytes)] into an ARRAY map in one batch."""
    if writes:
        m.update_batch([(slot.to_bytes(4, "little"), value) for slot, value in writes])


def _tags(blob, size):
    """The first u32 of every slot."""
    if size % 4 == 0:
        return array.array("I", blob)[::size // 4]
    return [int.from_bytes(blob[i:i + 4], "little") for i in range(0, len(blob), size)]


# ---------------------------------------------------------------- snapshot


class Snapshot:
    """What a host's maps hold: raw slots, decoded entries and free slots."""

    def __init__(self, maps):
        self.if_cfg = maps[abi.IF_CFG_MAP].lookup(bytes(4))
        hosts = libbpf.read_array_blob(maps[abi.SUBSTRATE_MAP])
        hsize = ctypes.sizeof(abi.Host)
        self.hosts = {}  # slot -> {ip, mac}
        for slot in range(1, len(hosts) // hsize):
            h = abi.decode_host(hosts[slot * hsize:(slot + 1) * hsize])
            if h:
                self.hosts[slot] = h
        self.host_slot = dict((h["ip"], s) for s, h in self.hosts.items())
        backends = libbpf.read_array_blob(maps[abi.BACKENDS_MAP])
        bsize = ctypes.sizeof(abi.BackendSet)
        self.backends = {}  # slot -> (owner key, [ips])
        for slot in range(1, len(backends) // bsize):
            b = abi.decode_backends(backends[slot * bsize:(slot + 1) * bsize])
            if b:
                self.backends[slot] = b
        self.tables = {}
        for name, codec in abi.TABLES.items():
            self.tables[name] = _TableSnapshot(codec, libbpf.read_array_blob(maps[codec.pin_name]))

    def host_ip(self, slot):
        h = self.hosts.get(slot)
        return h["ip"] if h else None

    def backend_ips(self, slot):
        b = self.backends.get(slot)
        return b[1] if b else []

    def logical(self):
        """{map: {key: entry}} in the renderer's terms."""
        out = {"if_cfg": abi.decode_if_cfg(self.if_cfg) if self.if_cfg else None,
               "substrate": dict((h["ip"], h) for h in self.hosts.values())}
        for name, t in self.tables.items():
            decoded = (t.codec.decode(raw, self.host_ip, self.backend_ips) for slot, raw in t.live.values())
            out[name] = dict((t.codec.key(e), e) for e in decoded)
        return out


class _TableSnapshot:
    def __init__(self, codec, blob):
        self.codec = codec
        self.size = ctypes.sizeof(codec.ctype)
        self.blob = blob
        self.tags = _tags(blob, self.size)
        self.live = {}  # binary key (codec.bin_key) -> (slot, raw)
        size, key_len = self.size, codec.key_len
        for slot in [i for i, tag in enumerate(self.tags) if tag and tag != abi.TAG_DEAD]:
            raw = blob[slot * size:(slot + 1) * size]
            self.live[raw[:key_len]] = (slot, raw)

    def raw(self, slot):
        return self.blob[slot * self.size:(slot + 1) * self.size]


def read_state(pin_dir):
    """The logical state a host's maps hold."""
    with Maps(pin_dir) as maps:
        return Snapshot(maps).logical()


# ---------------------------------------------------------------- planning


class _RawDiff:
    """One table's difference as slot bytes, decoded only when asked for:
    a plan of 100,000 additions need not build 100,000 dicts to be applied."""

    def __init__(self, codec, old_ctx, new_ctx):
        self.codec, self.old_ctx, self.new_ctx = codec, old_ctx, new_ctx
        self.added, self.changed, self.removed = [], [], []

    def __len__(self):
        return len(self.added) + len(self.changed) + len(self.removed)

    def decoded(self):
        dec = self.codec.decode
        return {"added": [dec(r, *self.new_ctx) for r in self.added],
                "changed": [(dec(o, *self.old_ctx), dec(n, *self.new_ctx)) for o, n in self.changed],
                "removed": [dec(r, *self.old_ctx) for r in self.removed]}


class Plan:
    """Slot writes in phases, and the logical difference they make
    (diff: {map: {added: [entry], changed: [(old, new)], removed: [entry]}})."""

    def __init__(self):
        self.phases = []  # [(phase name, map name, [(slot, bytes)])]
        self._diff = dict((name, {"added": [], "changed": [], "removed": []}) for name in LOGICAL)
        self._raw = {}  # table name -> _RawDiff, decoded into _diff on first use
        self.pending = False  # a later scope has work left (converge())

    def add(self, phase, map_name, writes):
        if writes:
            self.phases.append((phase, map_name, writes))

    @property
    def diff(self):
        for name, raw in self._raw.items():
            self._diff[name] = raw.decoded()
        self._raw = {}
        return self._diff

    @property
    def changed(self):
        return (any(len(r) for r in self._raw.values())
                or any(d["added"] or d["changed"] or d["removed"] for d in self._diff.values()))

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
    "vpcs": [...], "agents": [...]}. Raises TableError, writing nothing,
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
    for ip in sorted(want_hosts, key=abi.ip_to_u32):
        mac = want_hosts[ip]
        if ip in snap.host_slot:
            slot = snap.host_slot[ip]
            old_mac = snap.hosts[slot]["mac"]
            if old_mac != mac.lower():
                host_writes.append((slot, abi.encode_host({"ip": ip, "mac": mac})))
                p._diff["substrate"]["changed"].append(({"ip": ip, "mac": old_mac}, {"ip": ip, "mac": mac.lower()}))
        else:
            slot = next(free_host)
            host_writes.append((slot, abi.encode_host({"ip": ip, "mac": mac})))
            p._diff["substrate"]["added"].append({"ip": ip, "mac": mac.lower()})
        slot_of[ip] = slot
    for slot, h in sorted(snap.hosts.items()):
        if h["ip"] not in want_hosts:
            host_frees.append((slot, bytes(ctypes.sizeof(abi.Host))))
            p._diff["substrate"]["removed"].append(h)

    def host_slot(ip):
        try:
            return slot_of[ip]
        except KeyError:
            raise TableError("an entry refers to substrate host %s, which has no substrate entry" % ip)

    # -- backend sets of scaled endpoints
    owned = dict((key, (slot, ips)) for slot, (key, ips) in snap.backends.items())
    taken = set(snap.backends)
    backend_of, backend_writes, backend_frees = {}, [], []
    for e in _norm_entries(desired, "endpoints"):
        if e.get("type") != "scaled":
            continue
        key = (e["vni"], e["ip"])
        ips = list(e.get("backends") or [])
        if key in owned and owned[key][1] == ips:
            backend_of[key] = owned[key][0]
            continue
        slot = next((s for s in range(1, capacity.BACKEND_SLOTS) if s not in taken), None)
        if slot is None:
            raise TableError("scaled endpoints: more than %d on one host" % capacity.MAX_SCALED)
        taken.add(slot)
        backend_of[key] = slot
        try:
            backend_writes.append((slot, abi.encode_backends(key, ips)))
        except ValueError as err:
            raise TableError("endpoints: entry %r: backends: %s" % (key, err))
    for key, (slot, dummy) in owned.items():
        if backend_of.get(key) != slot:
            backend_frees.append((slot, bytes(ctypes.sizeof(abi.BackendSet))))

    def backend_slot(key):
        return backend_of[key]

    # -- VPC entries carry the prefix lengths of the networks held here
    networks = _norm_entries(desired, "networks")
    plens = {}
    for n in networks:
        try:
            abi.check_vni(n["vni"])
        except ValueError as err:
            raise TableError("networks: entry %r: %s" % (_key_of(abi.TABLES["networks"], n), err))
        plens.setdefault(n["vni"], set()).add(int(n["cidr"].partition("/")[2] or 32))
    vpcs = {}
    for v in _norm_entries(desired, "vpcs"):
        vpcs[v["vni"]] = dict(v, plens=sorted(plens.get(v["vni"], ()), reverse=True))
    for vni, ps in plens.items():  # networks of a VPC with no entry of its own
        vpcs.setdefault(vni, {"vni": vni, "dividers": [], "local_divider": False, "plens": sorted(ps, reverse=True)})
    want = {"endpoints": _norm_entries(desired, "endpoints"), "networks": networks,
            "vpcs": [vpcs[k] for k in sorted(vpcs)], "agents": _norm_entries(desired, "agents")}

    limits = {"endpoints": capacity.MAX_ENDPOINTS, "networks": capacity.MAX_NETWORKS,
              "vpcs": capacity.MAX_VPCS, "agents": capacity.MAX_AGENTS}
    stage, publish, retire, clean = {}, {}, {}, {}
    new_host_ip = dict((s, ip) for ip, s in slot_of.items()).get
    new_backend_ips = dict((s, ips) for s, ips in
                           [(backend_of[k], list(e.get("backends") or [])) for k, e in
                            [((e["vni"], e["ip"]), e) for e in want["endpoints"] if e.get("type") == "scaled"]]).get
    for name in ORDER:
        codec = abi.TABLES[name]
        t = snap.tables[name]
        entries = want[name]
        if len(entries) > limits[name]:
            raise TableError("%s: %d entries, at most %d on one host" % (name, len(entries), limits[name]))
        raw_diff = p._raw[name] = _RawDiff(codec, (snap.host_ip, snap.backend_ips),
                                           (new_host_ip, lambda slot: new_backend_ips(slot) or []))
        try:
            s, pb, r, c = _plan_table(codec, t, entries, host_slot, backend_slot, raw_diff)
        except (KeyError, ValueError) as e:
            raise TableError("%s: %s" % (name, e))
        stage[name], publish[name], retire[name], clean[name] = s, pb, r, c

    p.add("prepare", abi.SUBSTRATE_MAP, host_writes)
    p.add("prepare", abi.BACKENDS_MAP, backend_writes)
    for phase, writes in (("stage", stage), ("publish", publish), ("retire", retire), ("clean", clean)):
        for name in ORDER:
            p.add(phase, abi.TABLES[name].pin_name, writes[name])
    p.add("free", abi.BACKENDS_MAP, backend_frees)
    p.add("free", abi.SUBSTRATE_MAP, host_frees)
    return p


def _key_of(codec, entry):
    try:
        return codec.key(entry)
    except (KeyError, ValueError, TypeError):
        return entry


TAKEN = 0xFFFFFFFE  # a slot this plan fills (not a tag the datapath ever sees)


def _plan_table(codec, t, entries, host_slot, backend_slot, diff):
    mask = codec.slots - 1
    tags = array.array("I", t.tags)
    size = t.size
    zero = bytes(size)
    blob = t.blob
    live = t.live
    probes = capacity.PROBES
    free = (abi.TAG_EMPTY, abi.TAG_DEAD)
    key_len = codec.key_len
    stage, publish, retire = [], [], []
    seen = set()
    for e in entries:
        try:
            raw = codec.encode(e, host_slot, backend_slot)
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
        if cur is not None and cur[1] == raw:
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
            publish.append((cur[0], raw))  # rewritten in place: the only way left
            continue
        if tags[slot] == abi.TAG_EMPTY and blob[slot * size:(slot + 1) * size] == zero:
            publish.append((slot, raw))
        else:
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
    for slot, dummy in retire:
        tags[slot] = abi.TAG_DEAD
    clean = _cleanable(tags, mask) if retire or abi.TAG_DEAD in tags else []
    return stage, publish, retire, [(s, zero) for s in clean]


def _cleanable(tags, mask):
    """Tombstones that may become empty: those followed (in probe order) by
    an empty slot, repeatedly, so no live entry's probe run is cut."""
    out = []
    dead = [i for i, t in enumerate(tags) if t == abi.TAG_DEAD]
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
    for name in ("endpoints", "networks", "vpcs", "agents"):
        codec = abi.TABLES[name]
        merged = dict(have[name])
        for e in _norm_entries(desired, name):
            key = codec.key(e)
            if scope == "update" or key not in merged:
                merged[key] = e
        out[name] = list(merged.values())
    return out


def apply_plan(maps, p):
    """Perform a plan's writes, phase by phase, one batch per map."""
    for dummy, map_name, writes in p.phases:
        write_slots(maps[map_name], writes)


def converge(pin_dir, desired, check_mode=False, scope="all"):
    """Plan and (unless check_mode) apply; returns the plan. scope: see
    scoped(). The plan's pending says whether a later scope still has work
    after this one (always False for scope all)."""
    with Maps(pin_dir) as maps:
        snap = Snapshot(maps)
        p = plan(snap, scoped(snap, desired, scope))
        p.pending = scope != "all" and plan(snap, desired).diff != p.diff
        if not check_mode:
            apply_plan(maps, p)
        return p
