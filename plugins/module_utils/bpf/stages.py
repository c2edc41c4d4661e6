# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stage programs: the chains of functions of the transit program's stages.

A stage program is an XDP program loaded from its own object; it declares
the data maps it needs (by including mzr_maps.h), and they are reused from
the datapath's pins, so it sees the same state as the transit program.

mzr_stages holds two banks of chains (bpf/include/mzr_stages.h): position
pos of a stage's chain in bank b is slot abi.stage_slot(b, stage, pos), and
mzr_stage_bank holds each stage's live bank, read once as a packet enters
the stage. The table is changed one stage at a time:

* set_chain (install and remove are chains of one and none): one stage's
  chain swapped whole. The new chain goes into the stage's other bank, the
  bank word flips, the kernel is waited on until no packet still runs the
  old bank (an RCU grace period: libbpf.wait_for_programs), and only then
  is the old bank emptied. A packet runs the old chain or the new one,
  never a mix or a part. Each function is pinned at
  <pin_dir>/progs/stage_<name>[_<pos>], so it can be introspected, and a
  request for the same chain (same tags, same maps, same order) changes
  nothing.

The other way, "move together" (a new prog array and a new transit
program, switched on every link), is kept in tests/kernel/rebuild.py: it
cannot move chains of several functions, since functions go on through the
array they were loaded with (docs/architecture.md, "Stages").

The pin layout is shared with loader.py (see Layout).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf

TRANSIT_PROG = "mzr_transit"


class StageError(Exception):
    """A stage request that cannot be carried out."""


class Layout:
    """Where a datapath keeps its pins (bpffs forbids '.' in names):

    <pin_dir>/maps/<map>        maps, pinned by name (libbpf pin_root_path):
                                the datapath's and stage functions' own
    <pin_dir>/maps_new/<map>    maps of a layout migration in progress
    <pin_dir>/progs/<role>      transit, agent, pass programs
    <pin_dir>/progs/stage_<s>   the first function of stage s's chain
    <pin_dir>/progs/stage_<s>_<n>  the function at position n of it
    <pin_dir>/links/<name>      XDP links
    """

    def __init__(self, pin_dir):
        self.root = pin_dir
        self.maps = os.path.join(pin_dir, "maps")
        self.maps_new = os.path.join(pin_dir, "maps_new")
        self.maps_old = os.path.join(pin_dir, "maps_old")
        self.progs = os.path.join(pin_dir, "progs")
        self.links = os.path.join(pin_dir, "links")

    def map(self, name):
        return os.path.join(self.maps, name)

    def prog(self, name):
        return os.path.join(self.progs, name)

    def stage(self, stage, pos=0):
        """The pin of position pos of a stage's chain."""
        return os.path.join(self.progs, "stage_%s%s" % (stage, "_%d" % pos if pos else ""))

    def link(self, name):
        return os.path.join(self.links, name)

    def make_dirs(self):
        for d in (self.root, self.maps, self.progs, self.links):
            if not os.path.isdir(d):
                os.mkdir(d)

    def link_pins(self):
        if not os.path.isdir(self.links):
            return []
        return sorted(os.path.join(self.links, f) for f in os.listdir(self.links))


def slot_of(stage):
    """Slot of a stage given by name (on_xdp_tx, ...) or number."""
    if isinstance(stage, int) and stage in abi.STAGE_NAMES:
        return stage
    if stage in abi.STAGES:
        return abi.STAGES[stage]
    raise StageError("unknown stage %r: one of %s" % (stage, ", ".join(sorted(abi.STAGES))))


def name_of(stage):
    return abi.STAGE_NAMES[slot_of(stage)]


def pin_replace(fd, path):
    """Pin fd at path, replacing what is there in one rename."""
    tmp = path + "_new"
    libbpf.unpin(tmp)
    libbpf.obj_pin(fd, tmp)
    os.rename(tmp, path)


def _key(slot):
    return struct.pack("<I", slot)


def _prog_summary(prog_id):
    """{prog_id, name, tag, map_ids} of a loaded program, or None if gone."""
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
    except libbpf.BpfError:
        return None
    try:
        info = libbpf.prog_info(fd)
        return {"prog_id": prog_id, "name": info["name"], "tag": info["tag"],
                "map_ids": libbpf.prog_map_ids(fd)}
    finally:
        os.close(fd)


def same_program(a, b):
    """Two program summaries behave the same: same instructions (tag) on the
    same maps (the tag alone ignores which maps a program uses)."""
    return bool(a and b and a["tag"] == b["tag"] and a["map_ids"] == b["map_ids"])


def table(array):
    """{slot: prog_id} of a prog array (a libbpf.Map): user space reads ids."""
    out = {}
    for slot in range(array.max_entries):
        v = array.lookup(_key(slot))
        if v is not None:
            out[slot] = struct.unpack("<I", v)[0]
    return out


def read_banks(path, bank_map=None):
    """{stage number: live bank} from the bank map pinned at path (or the
    open bank_map); {} when there is none (a table from before chains:
    bank 0)."""
    if bank_map is None:
        if path is None or not os.path.exists(path):
            return {}
        with libbpf.Map.from_pin(path) as m:
            return read_banks(None, m)
    out = {}
    for number in abi.STAGE_NAMES:
        v = bank_map.lookup(_key(number))
        out[number] = struct.unpack("<I", v)[0] & 1 if v is not None else 0
    return out


def live_chains(ids, max_entries, banks, numbers=None):
    """{stage number: [prog_id, ...]} of a stage table ({slot: prog_id}, of
    max_entries slots): each stage's (of numbers, default all) chain in its
    live bank (banks: {stage number: bank}, missing: 0), up to the first
    empty position. A table from before chains (one slot per stage) holds
    chains of one."""
    out = {}
    for number in sorted(abi.STAGE_NAMES) if numbers is None else numbers:
        chain = []
        for pos in range(abi.CHAIN_MAX):
            slot = abi.stage_slot(banks.get(number, 0), number, pos)
            if slot >= max_entries or slot not in ids:
                break
            chain.append(ids[slot])
        out[number] = chain
    return out


def _bank_slots(bank, number):
    return [abi.stage_slot(bank, number, pos) for pos in range(abi.CHAIN_MAX)]


def shared_maps(maps_dir):
    """Names of the datapath's own maps: the ones its transit program uses
    (plus the ABI's data maps), as opposed to a function's private maps."""
    names = set(abi.DATA_MAPS) | set([abi.STAGES_MAP])
    prog_pin = os.path.join(os.path.dirname(maps_dir), "progs", "transit")
    if os.path.exists(prog_pin):
        fd = libbpf.obj_get(prog_pin)
        try:
            for mid in libbpf.prog_map_ids(fd):
                mfd = libbpf.map_fd_by_id(mid)
                try:
                    names.add(libbpf.map_info(mfd)["name"])
                finally:
                    os.close(mfd)
        finally:
            os.close(fd)
    return names


def load_stage(pin_dir, obj_path, prog_name, maps_dir=None):
    """Load a stage object reusing the datapath's pinned maps (from maps_dir,
    default <pin_dir>/maps). Returns the open BpfObject (the caller closes
    it) and the Program.

    Every datapath map the object declares must already be pinned: a stage
    that created its own empty copy of one would silently see nothing. Maps
    private to the function (its rules, its statistics) are created and
    pinned beside them on first load, and reused afterwards."""
    maps_dir = maps_dir or Layout(pin_dir).maps
    if not os.path.exists(os.path.join(maps_dir, abi.STAGES_MAP)):
        raise StageError("no datapath at %s (load the datapath first)" % maps_dir)
    shared = shared_maps(maps_dir)
    obj = libbpf.BpfObject(obj_path, pin_root=maps_dir)
    try:
        for m in obj.map_names():
            path = obj.pin_path(m)
            if path is None or m not in shared:
                continue  # a private map of the function
            if not os.path.exists(path):
                raise StageError("%s declares map %s, which the datapath at %s does not have "
                                 "(load the datapath first)" % (obj_path, m, pin_dir))
        obj.load()
        prog = obj.program(prog_name)
        if prog.info()["type"] != 6:  # BPF_PROG_TYPE_XDP
            raise StageError("%s in %s is not an XDP program" % (prog_name, obj_path))
        return obj, prog
    except Exception:
        obj.close()
        raise


class Stages:
    """The stage table of the datapath pinned at pin_dir: per stage, its
    chain of functions in the live bank of mzr_stages."""

    def __init__(self, pin_dir):
        self.pin_dir = pin_dir
        self.layout = Layout(pin_dir)

    def _array(self):
        path = self.layout.map(abi.STAGES_MAP)
        if not os.path.exists(path):
            raise StageError("no stage table at %s: load the datapath first" % path)
        return libbpf.Map.from_pin(path)

    def banks(self):
        """{stage number: its live bank}; all 0 on a table from before chains."""
        return read_banks(self.layout.map(abi.STAGE_BANK_MAP))

    def chains(self):
        """{stage: [prog_id, ...]}: every stage's live chain, in order."""
        with self._array() as arr:
            live = live_chains(table(arr), arr.max_entries, self.banks())
        return dict((abi.STAGE_NAMES[s], ids) for s, ids in live.items())

    def stale(self):
        """{stage: [slot, ...]}: the slots holding a program that no packet
        reaches (the other bank, or past a hole in the chain): what an
        interrupted swap leaves."""
        with self._array() as arr:
            ids = table(arr)
            live = live_chains(ids, arr.max_entries, self.banks())
        reached = set()
        banks = self.banks()
        for s, chain in live.items():
            reached.update(abi.stage_slot(banks.get(s, 0), s, pos) for pos in range(len(chain)))
        out = {}
        for slot in sorted(ids):
            if slot not in reached:
                out.setdefault(abi.STAGE_NAMES[abi.slot_place(slot)[1]], []).append(slot)
        return out

    def clear_stale(self, stage):
        """Empty the slots of stage that no packet reaches (stale()).
        Returns how many held a program."""
        stage = name_of(stage)
        slots = self.stale().get(stage, [])
        with self._array() as arr:
            return sum(1 for slot in slots if arr.delete(_key(slot)))

    def list(self):
        """{stage: None or {slot, prog_id, name, tag, pinned, bank, chain}}
        for every stage: its chain's first program at the top (slot: the
        stage's number), and chain: [{pos, slot, prog_id, name, tag,
        pinned}] of the whole chain, in order."""
        banks = self.banks()
        out = {}
        for name, chain in sorted(self.chains().items(), key=lambda kv: abi.STAGES[kv[0]]):
            if not chain:
                out[name] = None
                continue
            number, bank = abi.STAGES[name], banks.get(abi.STAGES[name], 0)
            entries = []
            for pos, pid in enumerate(chain):
                s = _prog_summary(pid) or {"prog_id": pid, "name": None, "tag": None}
                entries.append({"pos": pos, "slot": abi.stage_slot(bank, number, pos), "prog_id": pid,
                                "name": s["name"], "tag": s["tag"], "pinned": self._pinned_id(name, pos) == pid})
            first = entries[0]
            out[name] = {"slot": number, "prog_id": first["prog_id"], "name": first["name"], "tag": first["tag"],
                         "pinned": first["pinned"], "bank": bank, "chain": entries}
        return out

    def _pinned_id(self, stage, pos=0):
        prog = libbpf.pinned_prog(self.layout.stage(stage, pos))
        return prog["prog_id"] if prog else None

    def install(self, stage, obj_path, prog_name):
        """Make prog_name from obj_path the stage's whole chain (set_chain).
        Returns {changed, action: installed|replaced|unchanged, stage, slot,
        prog_id, tag, old_prog_id}."""
        slot = slot_of(stage)
        stage = name_of(slot)
        obj, prog = load_stage(self.pin_dir, obj_path, prog_name)
        try:
            return self.install_program(stage, prog)
        finally:
            obj.close()

    def install_program(self, stage, prog):
        """install() for an already loaded libbpf.Program."""
        res = self.set_chain(stage, [prog])
        return dict((k, res[k]) for k in ("changed", "action", "stage", "slot", "prog_id", "tag", "old_prog_id"))

    def remove(self, stage):
        """Empty a stage (the pipeline falls through to its own verdict) and
        unpin its programs. Returns {changed, stage, old_prog_id}."""
        res = self.set_chain(stage, [])
        return {"changed": res["changed"], "stage": res["stage"], "old_prog_id": res["old_prog_id"]}

    def set_chain(self, stage, progs):
        """Make the stage run progs (libbpf.Programs), in order, swapped as a
        whole: the chain is written into the stage's other bank (emptied
        first), mzr_stage_bank flips to it, and once every packet that
        entered the stage before the flip is done (libbpf.wait_for_programs)
        the old bank is emptied. A packet enters one bank and stays in it, so
        it runs the old chain or the new one, whole. The same chain (same
        programs on the same maps, in the same order) changes nothing but
        lost pins and unreachable slots. Returns {changed, action: installed|
        replaced|removed|unchanged, stage, slot (the stage's number), bank
        (live after), chain ([{prog_id, name, tag}]), old_chain ([prog_id]),
        prog_id, tag, old_prog_id (the first of each, or None)}."""
        number = slot_of(stage)
        stage = name_of(number)
        progs = list(progs)
        if len(progs) > abi.CHAIN_MAX:
            raise StageError("stage %s: a chain holds %d functions at most, not %d" % (
                stage, abi.CHAIN_MAX, len(progs)))
        new = [_prog_summary(p.info()["id"]) for p in progs]
        with self._array() as arr, self._bank_map() as banks:
            bank = read_banks(None, banks).get(number, 0)
            ids = table(arr)
            old_ids = live_chains(ids, arr.max_entries, {number: bank}, [number])[number]
            old = [_prog_summary(pid) for pid in old_ids]
            other = 1 - bank
            same = len(old) == len(new) and all(same_program(a, b) for a, b in zip(old, new))
            if same:
                chain_ids = old_ids
                for slot in _bank_slots(other, number):
                    if slot in ids:
                        arr.delete(_key(slot))
            else:
                for slot in _bank_slots(other, number):
                    arr.delete(_key(slot))
                for pos, prog in enumerate(progs):
                    arr.update(_key(abi.stage_slot(other, number, pos)), struct.pack("<I", prog.fd))
                banks.update(_key(number), struct.pack("<I", other))
                libbpf.wait_for_programs()
                for slot in _bank_slots(bank, number):
                    arr.delete(_key(slot))
                bank, chain_ids = other, [s["prog_id"] for s in new]
        if same:
            self._pin_chain(stage, [None] * len(old_ids), chain_ids)
        else:
            self._pin_chain(stage, [p.fd for p in progs], chain_ids)
        chain = old if same else new
        action = "unchanged" if same else ("removed" if not new else ("replaced" if old_ids else "installed"))
        return {"changed": not same, "action": action, "stage": stage, "slot": number, "bank": bank,
                "chain": [{"prog_id": s["prog_id"], "name": s["name"], "tag": s["tag"]} for s in chain],
                "old_chain": old_ids, "prog_id": chain[0]["prog_id"] if chain else None,
                "tag": chain[0]["tag"] if chain else None, "old_prog_id": old_ids[0] if old_ids else None}

    def _bank_map(self):
        path = self.layout.map(abi.STAGE_BANK_MAP)
        if not os.path.exists(path):
            raise StageError("the stage table at %s is from before chains of functions: load the datapath "
                             "(mizar.transit.transit) to migrate it" % self.layout.maps)
        return libbpf.Map.from_pin(path)

    def _pin_chain(self, stage, fds, ids):
        """Pin a stage's chain at progs/stage_<stage>[_<pos>] (fds: each
        position's program fd, or None to pin it again by id only where its
        pin is lost), and unpin the positions past it."""
        if not os.path.isdir(self.layout.progs):
            os.mkdir(self.layout.progs)
        for pos, (fd, pid) in enumerate(zip(fds, ids)):
            if fd is not None:
                pin_replace(fd, self.layout.stage(stage, pos))
            elif self._pinned_id(stage, pos) != pid:
                held = libbpf.prog_fd_by_id(pid)
                try:
                    pin_replace(held, self.layout.stage(stage, pos))
                finally:
                    os.close(held)
        for pos in range(len(ids), abi.CHAIN_MAX):
            libbpf.unpin(self.layout.stage(stage, pos))


def _rollback(link_path, old_prog_fd, new_prog_fd):
    """Point a link switched to new_prog_fd (loader.py's program swap) back
    at its old program, if it still runs the new one."""
    try:
        lfd = libbpf.obj_get(link_path)
    except libbpf.BpfError:
        return
    try:
        libbpf.link_update(lfd, old_prog_fd, old_prog_fd=new_prog_fd)
    except libbpf.BpfError:
        pass  # not switched yet, or changed by someone else: leave it
    finally:
        os.close(lfd)


def attached_table(prog_id):
    """{stage number: prog_id of its chain's first function} of the stage
    table the program prog_id uses (in the live banks of its bank map), or
    None."""
    fd = libbpf.prog_fd_by_id(prog_id)
    found = {}
    try:
        for mid in libbpf.prog_map_ids(fd):
            m = libbpf.Map(libbpf.map_fd_by_id(mid), owned=True)
            try:
                if m.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY:
                    found["table"] = (table(m), m.max_entries)
                elif m.name == abi.STAGE_BANK_MAP:
                    found["banks"] = read_banks(None, m)
            finally:
                m.close()
    finally:
        os.close(fd)
    if "table" not in found:
        return None
    ids, size = found["table"]
    return dict((n, chain[0]) for n, chain in live_chains(ids, size, found.get("banks", {})).items() if chain)
