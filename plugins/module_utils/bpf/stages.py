# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stage programs: the tail-call slots of the transit program's mzr_stages.

A stage program is an XDP program loaded from its own object; it declares
the data maps it needs (by including mzr_maps.h), and they are reused from
the datapath's pins, so it sees the same state as the transit program.

Two ways to change the table:

* install/remove: one bpf_map_update_elem / delete on the pinned prog
  array, which swaps one slot atomically. Each stage program is pinned at
  <pin_dir>/progs/stage_<name>, so it can be introspected, and a request
  for the same program (same tag, same maps) changes nothing.

* rebuild ("move together"): several slots must change at once, and a
  packet must never meet half of an old table and half of a new one. A
  referenced table is never edited: a new transit program is loaded with a
  fresh prog array (the data maps are still reused from their pins), the
  array is filled, every link running the old program is switched to the
  new one (bpf_link_update, atomic per interface), and only then is the
  new array pinned over the old pin (pinned under a temporary name and
  renamed, which bpffs supports). At every instant the attached program
  reaches either the whole old table or the whole new one.

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
    <pin_dir>/progs/stage_<s>   stage programs
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

    def stage(self, stage):
        return os.path.join(self.progs, "stage_" + stage)

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
    """The stage table of the datapath pinned at pin_dir."""

    def __init__(self, pin_dir):
        self.pin_dir = pin_dir
        self.layout = Layout(pin_dir)

    def _array(self):
        path = self.layout.map(abi.STAGES_MAP)
        if not os.path.exists(path):
            raise StageError("no stage table at %s: load the datapath first" % path)
        return libbpf.Map.from_pin(path)

    def list(self):
        """{stage: None or {slot, prog_id, name, tag, pinned}} for every stage."""
        with self._array() as arr:
            ids = table(arr)
        out = {}
        for name, slot in sorted(abi.STAGES.items(), key=lambda kv: kv[1]):
            pid = ids.get(slot)
            if pid is None:
                out[name] = None
                continue
            s = _prog_summary(pid) or {"prog_id": pid, "name": None, "tag": None}
            pinned = self._pinned_id(name)
            out[name] = {"slot": slot, "prog_id": pid, "name": s["name"], "tag": s["tag"],
                         "pinned": pinned == pid}
        return out

    def _pinned_id(self, stage):
        prog = libbpf.pinned_prog(self.layout.stage(stage))
        return prog["prog_id"] if prog else None

    def install(self, stage, obj_path, prog_name):
        """Put prog_name from obj_path in the stage's slot (one atomic update).
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
        slot = slot_of(stage)
        stage = name_of(slot)
        new = _prog_summary(prog.info()["id"])
        with self._array() as arr:
            old_id = table(arr).get(slot)
            old = _prog_summary(old_id) if old_id else None
            if same_program(old, new):
                if self._pinned_id(stage) != old_id:  # repair the bookkeeping pin
                    fd = libbpf.prog_fd_by_id(old_id)
                    try:
                        pin_replace(fd, self.layout.stage(stage))
                    finally:
                        os.close(fd)
                return {"changed": False, "action": "unchanged", "stage": stage, "slot": slot,
                        "prog_id": old_id, "tag": old["tag"], "old_prog_id": old_id}
            arr.update(_key(slot), struct.pack("<I", prog.fd))
        if not os.path.isdir(self.layout.progs):
            os.mkdir(self.layout.progs)
        pin_replace(prog.fd, self.layout.stage(stage))
        return {"changed": True, "action": "replaced" if old_id else "installed", "stage": stage,
                "slot": slot, "prog_id": new["prog_id"], "tag": new["tag"], "old_prog_id": old_id}

    def remove(self, stage):
        """Empty a slot (the transit program falls through to its own
        verdict) and unpin its program. Returns {changed, stage, old_prog_id}."""
        slot = slot_of(stage)
        stage = name_of(slot)
        with self._array() as arr:
            old_id = table(arr).get(slot)
            if old_id is not None:
                arr.delete(_key(slot))
        unpinned = libbpf.unpin(self.layout.stage(stage))
        return {"changed": old_id is not None or unpinned, "stage": stage, "old_prog_id": old_id}

    def rebuild(self, transit_obj, stages, on_step=None):
        """Move together: make the table exactly `stages` ({stage: Program or
        (obj_path, prog_name) or None}; stages not named keep their current
        program) with a new prog array and a new transit program, switching
        every link of <pin_dir>/links that runs a program using the old array.

        on_step(step, info) is called after each step (loaded, filled,
        switched, pinned), for tests and logs. Returns {changed, old_array_id,
        new_array_id, old_prog_id, new_prog_id, links, table}."""
        lay = self.layout
        # held to the end: the old table stays whole (a prog array is emptied
        # when its last user reference goes) while packets may still run the
        # old program
        old_arr = self._array()
        old_array_id = old_arr.info["id"]
        current = table(old_arr)
        want = dict((s, current.get(slot)) for s, slot in abi.STAGES.items())
        opened = [old_arr]
        try:
            progs = {}
            for s, src in (stages or {}).items():
                s = name_of(s)
                if src is None:
                    want[s] = None
                elif isinstance(src, tuple):
                    obj, prog = load_stage(self.pin_dir, src[0], src[1])
                    opened.append(obj)
                    progs[s] = prog
                    want[s] = prog.info()["id"]
                else:
                    progs[s] = src
                    want[s] = src.info()["id"]

            # 1. a new transit program with its own, empty table
            obj = libbpf.BpfObject(transit_obj, pin_root=lay.maps)
            opened.append(obj)
            for m in obj.map_names():
                if m != abi.STAGES_MAP and not os.path.exists(lay.map(m)):
                    raise StageError("map %s is not pinned at %s: load the datapath first" % (m, lay.maps))
            obj.set_pin_path(abi.STAGES_MAP, None)
            obj.load()
            new_prog = obj.program(TRANSIT_PROG)
            new_arr = obj.map(abi.STAGES_MAP)
            new_array_id = new_arr.info["id"]
            new_prog_id = new_prog.info()["id"]
            _step(on_step, "loaded", new_prog_id=new_prog_id, new_array_id=new_array_id)

            # 2. fill it while nothing can reach it
            held = []
            try:
                for s, pid in want.items():
                    if pid is None:
                        continue
                    if s in progs:
                        fd = progs[s].fd
                    else:
                        fd = libbpf.prog_fd_by_id(pid)
                        held.append(fd)
                    new_arr.update(_key(abi.STAGES[s]), struct.pack("<I", fd))
            finally:
                for fd in held:
                    os.close(fd)
            _step(on_step, "filled", table=table(new_arr))

            # 3. switch every link whose program uses the old table
            switched = []
            old_fds = []  # kept for a rollback until the new table is pinned
            old_prog_id = None
            try:
                for path in lay.link_pins():
                    lfd = libbpf.obj_get(path)
                    try:
                        info = libbpf.link_info(lfd)
                        pid = info["prog_id"]
                        if not info["ifindex"] or not pid:
                            continue  # defunct link
                        pfd = libbpf.prog_fd_by_id(pid)
                        if old_array_id not in libbpf.prog_map_ids(pfd):
                            os.close(pfd)
                            continue
                        old_fds.append((path, pfd))
                        libbpf.link_update(lfd, new_prog.fd, old_prog_fd=pfd)
                    finally:
                        os.close(lfd)
                    old_prog_id = pid
                    switched.append({"link": os.path.basename(path), "link_id": info["id"],
                                     "old_prog_id": pid, "new_prog_id": new_prog_id})
                _step(on_step, "switched", links=switched)

                # 4. only now does the pin move: new table and program in place.
                # Until this pin exists the new table lives on our fd alone, and
                # the kernel empties a prog array when its last user reference
                # goes: a failure before this point puts the old program back.
                pin_replace(new_arr.fd, lay.map(abi.STAGES_MAP))
            except Exception:
                for path, pfd in old_fds:
                    _rollback(path, pfd, new_prog.fd)
                raise
            finally:
                for _path, pfd in old_fds:
                    os.close(pfd)
            if not os.path.isdir(lay.progs):
                os.mkdir(lay.progs)
            pin_replace(new_prog.fd, lay.prog("transit"))
            for s, pid in want.items():
                if s in progs:
                    pin_replace(progs[s].fd, lay.stage(s))
                elif pid is None:
                    libbpf.unpin(lay.stage(s))
            result_table = table(new_arr)
            _step(on_step, "pinned", table=result_table)
        finally:
            for o in opened:
                o.close()
        return {"changed": True, "old_array_id": old_array_id, "new_array_id": new_array_id,
                "old_prog_id": old_prog_id, "new_prog_id": new_prog_id, "links": switched,
                "table": dict((abi.STAGE_NAMES[k], v) for k, v in result_table.items())}


def _rollback(link_path, old_prog_fd, new_prog_fd):
    """Point a link switched by rebuild() back at its old program, if it
    still runs the new one."""
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


def _step(on_step, step, **info):
    if on_step is not None:
        on_step(step, info)


def attached_table(prog_id):
    """{slot: prog_id} of the stage table the program prog_id uses, or None."""
    fd = libbpf.prog_fd_by_id(prog_id)
    try:
        for mid in libbpf.prog_map_ids(fd):
            mfd = libbpf.map_fd_by_id(mid)
            m = libbpf.Map(mfd, owned=True)
            try:
                if m.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY:
                    return table(m)
            finally:
                m.close()
    finally:
        os.close(fd)
    return None
