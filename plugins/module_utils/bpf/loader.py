# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath of one host: load, attach, program, inspect, tear down.

A Loader owns a pin directory (see stages.Layout): the maps shared by the
transit, agent and pass programs (and by stage programs), the programs and
the XDP links that attach them.

Loading is idempotent and never mixes map layouts:

* nothing pinned: the objects are loaded and their maps pinned;
* pinned maps with the same layout as the new objects (type, key and value
  size, max_entries, flags, and the BTF description of the key and value
  types, so a reordered struct of the same size counts as a change): the
  maps are reused with all their entries. A program whose instructions and
  maps are unchanged (same tag, same map ids) stays as it is; a changed one
  replaces the old one in every link through bpf_link_update;
* any layout difference: a migration. The new objects are loaded with
  fresh maps in <pin_dir>/maps_new; every entry of every data map is copied
  converting by BTF member name (members in both layouts are copied, arrays
  keep their common prefix, new members start zeroed; integers that change
  size keep their low-order bytes); maps private to stage functions (not
  declared by the datapath objects) move along as they are, state kept;
  stage programs are reloaded against the new maps (their objects, built
  for the new ABI, must be given), each stage's chain in bank 0 of the new
  stage table (a table from before chains held one program per stage); every link is switched to the program of
  the same role from the new objects; then maps_new and maps are exchanged
  (renameat2 RENAME_EXCHANGE, else three renames) and the old pins removed.
  A map an older ABI had and this one retired is converted, not kept:
  ABI 3's backend sets (mzr_backends, 32 backends each) become the
  mzr_members entries of the same scaled endpoints, so a backend's replies
  from its VIP pass the agent from the first packet on the new programs.
  Per-CPU maps (counters, scratch) restart from zero across a migration
  (statistics, not state). Entries
  written to the old maps by someone else during a migration would be lost:
  the Loader is meant to be the only writer.

Attachments are always bpf_links pinned in <pin_dir>/links (named after
the namespace and interface), so a migration or a program change can find
and switch every one of them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import os
import socket
import struct

from ansible_collections.mizar.transit.plugins.module_utils import nsenter
from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, pinned, stages, tables, xdp
from ansible_collections.mizar.transit.plugins.module_utils.bpf.pinned import ROLE_OF_PROG, ROLES, link_name

LOAD_ORDER = ("transit", "agent", "pass")  # transit declares every shared map
RENAME_EXCHANGE = 1 << 1


class LoaderError(Exception):
    """A datapath operation that cannot be carried out."""


# ---------------------------------------------------------------- layouts


def pinned_layout(path):
    """Layout of the map pinned at path: sizes, flags and BTF descriptions."""
    fd = libbpf.obj_get(path)
    try:
        info = libbpf.map_info(fd)
    finally:
        os.close(fd)
    out = {"type": info["type"], "key_size": info["key_size"], "value_size": info["value_size"],
           "max_entries": info["max_entries"], "flags": info["map_flags"], "key": None, "value": None,
           "id": info["id"]}
    if info["btf_id"]:
        btf = libbpf.Btf.from_kernel(info["btf_id"])
        try:
            if info["btf_key_type_id"]:
                out["key"] = btf.describe(info["btf_key_type_id"])
            if info["btf_value_type_id"]:
                out["value"] = btf.describe(info["btf_value_type_id"])
        finally:
            btf.close()
    return out


def object_layout(obj, btf, name):
    """Layout of map name as the (opened, not loaded) object declares it."""
    d = obj.map_def(name)
    kid, vid = obj.map_btf_ids(name)
    return {"type": d["type"], "key_size": d["key_size"], "value_size": d["value_size"],
            "max_entries": d["max_entries"], "flags": libbpf.object_map_flags(obj, name),
            "key": btf.describe(kid) if kid else None, "value": btf.describe(vid) if vid else None}


_COMPARED = ("type", "key_size", "value_size", "max_entries", "flags", "key", "value")


def layout_changes(old, new):
    """Names of the layout properties that differ ([] = same layout). A BTF
    description missing on either side is compared by sizes alone."""
    out = []
    for k in _COMPARED:
        if k in ("key", "value") and (old[k] is None or new[k] is None):
            continue
        if old[k] != new[k]:
            out.append(k)
    return out


# ---------------------------------------------------------------- conversion


def desc_size(desc):
    if desc[0] == "int":
        return desc[1]
    if desc[0] == "array":
        return desc_size(desc[1]) * desc[2]
    return desc[2]


def convert(old, new, data):
    """Bytes of a value of BTF description old, re-laid as description new:
    struct members by name, arrays by common prefix, integers by low-order
    bytes (host order), anything else zero."""
    size = desc_size(new)
    if old == new:
        return bytes(data[:size])
    out = bytearray(size)
    if old[0] == "struct" and new[0] == "struct":
        old_members = dict((m[0], (m[1], m[2])) for m in old[3])
        for mname, off, mdesc in new[3]:
            if mname in old_members and mname:
                ooff, odesc = old_members[mname]
                part = convert(odesc, mdesc, data[ooff:ooff + desc_size(odesc)])
                out[off:off + len(part)] = part
    elif old[0] == "array" and new[0] == "array":
        osz, nsz = desc_size(old[1]), desc_size(new[1])
        for i in range(min(old[2], new[2])):
            part = convert(old[1], new[1], data[i * osz:(i + 1) * osz])
            out[i * nsz:i * nsz + len(part)] = part
    elif old[0] == "int" and new[0] == "int":
        n = min(old[1], new[1])
        out[:n] = data[:n]
    return bytes(out)


def _converter(old, new, size_old, size_new):
    if old is None or new is None:
        if size_old != size_new:
            raise LoaderError("no BTF to convert a %d-byte layout to %d bytes" % (size_old, size_new))
        return bytes
    return lambda b: convert(old, new, b)


# ---------------------------------------------------------------- helpers


def chain_sources(stage_sources):
    """{stage: [(obj_path, prog_name), ...]}: each stage's chain, in order,
    of stage_sources, whose values are such lists or one (obj_path,
    prog_name)."""
    return dict((s, [src] if isinstance(src, tuple) else list(src)) for s, src in (stage_sources or {}).items())


def array_entries(m):
    """[(key bytes, value bytes)] of the non-zero slots of an ARRAY map."""
    blob = libbpf.read_array_blob(m)
    size = m.value_size
    return [(struct.pack("<I", s), blob[s * size:(s + 1) * size]) for s in pinned.nonzero_slots(blob, size)]


def _members_from_legacy(old_path, new_path):
    """Fill the new, empty mzr_members map at new_path with the backends of
    ABI 3's backend sets pinned at old_path; returns the count."""
    with libbpf.Map.from_pin(old_path) as old:
        size = ctypes.sizeof(abi.LegacyBackendSet)
        if old.value_size != size:
            raise LoaderError("%s: %d-byte values, not the %d of ABI 3's backend sets: cannot convert it to %s"
                              % (old_path, old.value_size, size, os.path.basename(new_path)))
        blob = libbpf.read_array_blob(old)
    # An old run stopped between writing a changed set and freeing the old
    # one leaves two sets of one endpoint: each member is taken once (the
    # next converge removes the members the inventory no longer lists).
    entries = {}
    for slot in range(1, len(blob) // size):
        found = abi.decode_legacy_backends(blob[slot * size:(slot + 1) * size])
        if found:
            (vni, vip), ips = found
            for ip in ips:
                entries[(vni, vip, ip)] = {"vni": vni, "vip": vip, "ip": ip}
    with libbpf.Map.from_pin(new_path) as m:
        return tables.fill(m, abi.TABLES["members"], list(entries.values()))


def _rmtree_pins(path):
    """Unpin everything under path and remove the directories."""
    removed = 0
    if not os.path.isdir(path):
        return removed
    for dirpath, dirs, files in os.walk(path, topdown=False):
        for f in files:
            if libbpf.unpin(os.path.join(dirpath, f)):
                removed += 1
        for d in dirs:
            try:
                os.rmdir(os.path.join(dirpath, d))
            except FileNotFoundError:
                pass
    os.rmdir(path)
    return removed


_libc = None


def _exchange(a, b):
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE); False when
    the filesystem cannot."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(_libc, "renameat2"):
        return False
    at_fdcwd = -100
    ret = _libc.renameat2(at_fdcwd, a.encode(), at_fdcwd, b.encode(), RENAME_EXCHANGE)
    if ret == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, "exchanging %s and %s: %s" % (a, b, os.strerror(err)))


_prog_summary_at = libbpf.pinned_prog


# ---------------------------------------------------------------- the datapath


class Loader:
    """The datapath pinned at pin_dir, built from the objects in obj_dir.
    netns is where its interfaces live unless an attach says otherwise."""

    def __init__(self, pin_dir, obj_dir, netns=None):
        self.pin_dir = pin_dir
        self.obj_dir = obj_dir
        self.netns = netns
        self.layout = stages.Layout(pin_dir)

    # ------------------------------------------------------------ load

    def _obj_path(self, role):
        path = os.path.join(self.obj_dir, ROLES[role][0])
        if not os.path.exists(path):
            raise LoaderError("%s missing (build the BPF objects: scripts/bootstrap)" % path)
        return path

    def _new_layouts(self):
        """{map: layout} declared by the objects (every map of every role)."""
        out = {}
        for role in LOAD_ORDER:
            path = self._obj_path(role)
            obj = libbpf.BpfObject(path)
            btf = None
            try:
                names = obj.map_names()
                if names:
                    btf = libbpf.Btf.from_elf(path)
                for m in names:
                    lay = object_layout(obj, btf, m)
                    if m in out and layout_changes(out[m], lay):
                        raise LoaderError("%s and another object disagree on the layout of %s" % (path, m))
                    out[m] = lay
            finally:
                if btf is not None:
                    btf.close()
                obj.close()
        return out

    def layout_diff(self, unpinned=None):
        """{map: [changed properties]} between the pinned maps and the
        objects; maps not pinned yet are absent; {} means all reusable.
        unpinned, a list, gets the names of the maps the objects declare
        that are not pinned yet (a load creates them)."""
        out = {}
        for m, new in sorted(self._new_layouts().items()):
            path = self.layout.map(m)
            if os.path.exists(path):
                changes = layout_changes(pinned_layout(path), new)
                if changes:
                    out[m] = changes
            elif unpinned is not None:
                unpinned.append(m)
        return out

    def _load_objects(self, maps_dir):
        """Open and load every role's object with pin_root maps_dir.
        Returns {role: BpfObject}; the caller closes them."""
        objs = {}
        try:
            for role in LOAD_ORDER:
                obj = libbpf.BpfObject(self._obj_path(role), pin_root=maps_dir)
                objs[role] = obj
                obj.load()
        except Exception:
            for o in objs.values():
                o.close()
            raise
        return objs

    def load(self, stage_sources=None):
        """Load (or reload) the datapath; see the module doc. stage_sources
        ({stage: [(obj_path, prog_name), ...]}, each stage's chain in order;
        one (obj_path, prog_name) is a chain of one) is needed only by a
        migration while stages are installed. Returns {changed, action: created|reused|
        migrated, maps: {map: created|reused|migrated}, programs: {role:
        {prog_id, tag, changed}}, entries: {map: copied} (migration),
        relinked: [link names]}."""
        lay = self.layout
        self._recover()
        lay.make_dirs()
        new = self._new_layouts()
        pinned = [m for m in new if os.path.exists(lay.map(m))]
        diff = {}
        for m in pinned:
            changes = layout_changes(pinned_layout(lay.map(m)), new[m])
            if changes:
                diff[m] = changes
        if diff:
            return self._migrate(new, diff, stage_sources or {})
        maps = dict((m, "reused" if m in pinned else "created") for m in new)
        objs = self._load_objects(lay.maps)
        try:
            programs, relinked = self._adopt_programs(objs)
        finally:
            for o in objs.values():
                o.close()
        changed = any(v == "created" for v in maps.values()) or any(p["changed"] for p in programs.values())
        return {"changed": changed, "action": "reused" if pinned else "created", "maps": maps,
                "programs": programs, "entries": {}, "relinked": relinked, "layout_changes": {}}

    def _recover(self):
        """Clean up after an interrupted migration. maps_new and maps_old
        are never in use once maps exists; if maps is missing (a crash
        between the renames of the fallback swap), the set the attached
        programs use becomes maps again."""
        lay = self.layout
        if not os.path.isdir(lay.maps):
            used = set()
            for path in lay.link_pins() + [lay.prog(r) for r in ROLES]:
                kind = libbpf.pin_kind(path)
                fd = libbpf.obj_get(path) if kind else None
                if fd is None:
                    continue
                try:
                    pid = libbpf.link_info(fd)["prog_id"] if kind == "link" else libbpf.prog_info(fd)["id"]
                finally:
                    os.close(fd)
                s = stages._prog_summary(pid) if pid else None
                used.update(s["map_ids"] if s else ())
            for cand in (lay.maps_new, lay.maps_old):
                if os.path.isdir(cand) and used & set(self._pinned_map_ids(cand)):
                    os.rename(cand, lay.maps)
                    break
        for d in (lay.maps_new, lay.maps_old):
            if os.path.isdir(d):
                _rmtree_pins(d)

    @staticmethod
    def _pinned_map_ids(d):
        ids = []
        for f in os.listdir(d):
            if libbpf.pin_kind(os.path.join(d, f)) == "map":
                fd = libbpf.obj_get(os.path.join(d, f))
                try:
                    ids.append(libbpf.map_info(fd)["id"])
                finally:
                    os.close(fd)
        return ids

    def _adopt_programs(self, objs):
        """Keep pinned programs identical to the new ones; replace the others
        (pin and every link running them)."""
        programs = {}
        relinked = []
        for role, obj in objs.items():
            prog = obj.program(ROLES[role][1])
            info = prog.info()
            new = {"prog_id": info["id"], "name": info["name"], "tag": info["tag"],
                   "map_ids": libbpf.prog_map_ids(prog.fd)}
            old = _prog_summary_at(self.layout.prog(role))
            if stages.same_program(old, new):
                programs[role] = {"prog_id": old["prog_id"], "tag": old["tag"], "changed": False}
                continue
            if old is not None:
                relinked += self._relink({old["prog_id"]: prog})
            stages.pin_replace(prog.fd, self.layout.prog(role))
            programs[role] = {"prog_id": info["id"], "tag": info["tag"], "changed": True}
        return programs, relinked

    def _relink(self, by_old_id, rollback=None):
        """Switch every pinned link running a program in by_old_id to its
        replacement (atomically per link, expecting the old program).
        rollback, a list, collects (link path, old prog fd, new prog fd)."""
        done = []
        for path in self.layout.link_pins():
            lfd = libbpf.obj_get(path)
            try:
                info = libbpf.link_info(lfd)
                new_prog = by_old_id.get(info["prog_id"])
                if new_prog is None or not info["ifindex"]:
                    continue
                old_fd = libbpf.prog_fd_by_id(info["prog_id"])
                try:
                    libbpf.link_update(lfd, new_prog.fd, old_prog_fd=old_fd)
                finally:
                    if rollback is not None:
                        rollback.append((path, old_fd, new_prog.fd))
                    else:
                        os.close(old_fd)
                done.append(os.path.basename(path))
            finally:
                os.close(lfd)
        return done

    def _migrate(self, new, diff, stage_sources):
        lay = self.layout
        # stage programs are bound to the old maps: they must be reloaded
        table = {}
        if os.path.exists(lay.map(abi.STAGES_MAP)):
            with libbpf.Map.from_pin(lay.map(abi.STAGES_MAP)) as arr:
                table = stages.table(arr)
        stage_sources = chain_sources(stage_sources)
        missing = sorted(set(abi.STAGE_NAMES[abi.slot_place(s)[1]] for s in table) - set(stage_sources))
        if missing:
            raise LoaderError("map layout changed (%s) while stages %s are installed: give their objects "
                              "(stage_sources) so they can be reloaded against the new maps" % (
                                  ", ".join(sorted(diff)), ", ".join(sorted(missing))))
        os.mkdir(lay.maps_new)  # _recover() removed any leftover
        opened = []
        rollback = []
        swapped = False
        try:
            objs = self._load_objects(lay.maps_new)
            opened += objs.values()

            # 1. copy every data map, converting by BTF member name
            entries = {}
            for m in new:
                if m in (abi.STAGES_MAP, abi.STAGE_BANK_MAP) or not os.path.exists(lay.map(m)):
                    continue  # the stage table is refilled below, in bank 0
                entries[m] = self._copy_map(lay.map(m), os.path.join(lay.maps_new, m), new[m])

            # 1b. maps this ABI retired, converted into their successors
            retired = {}
            if abi.LEGACY_BACKENDS_MAP not in new and os.path.exists(lay.map(abi.LEGACY_BACKENDS_MAP)):
                members = abi.TABLES["members"].pin_name
                entries[members] = _members_from_legacy(lay.map(abi.LEGACY_BACKENDS_MAP),
                                                        os.path.join(lay.maps_new, members))
                retired[abi.LEGACY_BACKENDS_MAP] = "converted"

            # 2. maps private to stage functions (rules, statistics) are not
            # the datapath's ABI: the same map objects move along, state kept
            kept = []
            for m in sorted(os.listdir(lay.maps)):
                if m not in new and m not in retired and libbpf.pin_kind(lay.map(m)) == "map":
                    fd = libbpf.obj_get(lay.map(m))
                    try:
                        libbpf.obj_pin(fd, os.path.join(lay.maps_new, m))
                    finally:
                        os.close(fd)
                    kept.append(m)

            # 3. the stage table, against the new maps: each chain in bank 0
            stage_progs = {}
            for sname, chain in sorted(stage_sources.items()):
                progs = stage_progs.setdefault(stages.name_of(sname), [])
                for obj_path, prog_name in chain:
                    obj, prog = stages.load_stage(self.pin_dir, obj_path, prog_name, maps_dir=lay.maps_new)
                    opened.append(obj)
                    progs.append(prog)
            with libbpf.Map.from_pin(os.path.join(lay.maps_new, abi.STAGES_MAP)) as arr:
                for sname, progs in stage_progs.items():
                    for pos, prog in enumerate(progs):
                        arr.update(struct.pack("<I", abi.stage_slot(0, stages.slot_of(sname), pos)),
                                   struct.pack("<I", prog.fd))

            # 4. every link to the program of the same role in the new objects
            by_old_id = {}
            for path in lay.link_pins():
                lfd = libbpf.obj_get(path)
                try:
                    info = libbpf.link_info(lfd)
                finally:
                    os.close(lfd)
                if not info["ifindex"]:
                    continue
                summary = stages._prog_summary(info["prog_id"])
                role = ROLE_OF_PROG.get(summary["name"]) if summary else None
                if role is None:
                    raise LoaderError("link %s runs %s, which is none of %s" % (
                        path, summary and summary["name"], ", ".join(sorted(ROLE_OF_PROG))))
                by_old_id[info["prog_id"]] = objs[role].program(ROLES[role][1])
            relinked = self._relink(by_old_id, rollback)

            # 5. swap the map directories, then the program pins
            if not _exchange(lay.maps_new, lay.maps):
                os.rename(lay.maps, lay.maps_old)
                os.rename(lay.maps_new, lay.maps)
                os.rename(lay.maps_old, lay.maps_new)
            swapped = True
            for role, obj in objs.items():
                stages.pin_replace(obj.program(ROLES[role][1]).fd, lay.prog(role))
            for sname in abi.STAGES:
                progs = stage_progs.get(sname, [])
                for pos in range(abi.CHAIN_MAX):
                    if pos < len(progs):
                        stages.pin_replace(progs[pos].fd, lay.stage(sname, pos))
                    else:
                        libbpf.unpin(lay.stage(sname, pos))
        except Exception:
            if not swapped:  # back to the old programs; the new maps were never used
                for path, old_fd, new_fd in rollback:
                    stages._rollback(path, old_fd, new_fd)
                _rmtree_pins(lay.maps_new)
            raise
        finally:
            for _p, old_fd, _n in rollback:
                os.close(old_fd)
            for o in opened:
                o.close()
        _rmtree_pins(lay.maps_new)  # the old maps now
        programs = dict((role, _prog_summary_at(lay.prog(role))) for role in ROLES)
        return {"changed": True, "action": "migrated",
                "maps": dict([(m, "migrated" if m in diff else "copied") for m in new] + [(m, "kept") for m in kept]
                             + list(retired.items())),
                "programs": dict((r, {"prog_id": p["prog_id"], "tag": p["tag"], "changed": True})
                                 for r, p in programs.items()),
                "entries": entries, "relinked": relinked, "layout_changes": diff}

    def _copy_map(self, old_path, new_path, new_layout):
        """Copy the entries of one map into its new incarnation; returns the
        count. All-zero array slots are skipped (the new array starts zeroed);
        per-CPU maps (counters) are not copied."""
        old_layout = pinned_layout(old_path)
        with libbpf.Map.from_pin(old_path) as old, libbpf.Map.from_pin(new_path) as new:
            if old.percpu or new.percpu or old.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY:
                return 0
            ck = _converter(old_layout["key"], new_layout["key"], old.key_size, new.key_size)
            cv = _converter(old_layout["value"], new_layout["value"], old.value_size, new.value_size)
            if old.type == libbpf.BPF_MAP_TYPE_ARRAY:
                items = [(ck(k), cv(v)) for k, v in array_entries(old)]
            else:
                items = [(ck(k), cv(v)) for k, v in old.items()]
            if new.type == libbpf.BPF_MAP_TYPE_ARRAY:
                items = [kv for kv in items if struct.unpack("<I", kv[0][:4])[0] < new.max_entries]
            done = 0
            for i in range(0, len(items), 8192):
                done += new.update_batch(items[i:i + 8192])
            return done

    # ------------------------------------------------------------ programs, attach

    def program(self, role):
        """The pinned program of a role (transit, agent, pass)."""
        if role not in ROLES:
            raise LoaderError("unknown role %r: one of %s" % (role, ", ".join(sorted(ROLES))))
        path = self.layout.prog(role)
        if not os.path.exists(path):
            raise LoaderError("no %s program pinned at %s: load() first" % (role, path))
        return libbpf.Program.from_pin(path)

    def prog_ids(self):
        """Ids of the programs this datapath pinned (what counts as ours)."""
        return pinned.prog_ids(self.layout)

    def _ifname(self, iface, ns):
        """Links are pinned by interface name: resolve an index to it."""
        if not isinstance(iface, int):
            return iface
        try:
            return nsenter.run_in_netns(ns, socket.if_indextoname, iface)
        except OSError:
            raise LoaderError("no interface with index %d%s" % (iface, " in netns %s" % ns if ns else ""))

    def attach(self, role, iface, mode="native", netns=None, switch_mode=False):
        """Attach the role's program to iface (a name or index, in netns,
        default the Loader's) by a link pinned in <pin_dir>/links. Another
        program of ours there is replaced atomically; see xdp.attach."""
        ns = netns if netns is not None else self.netns
        iface = self._ifname(iface, ns)
        prog = self.program(role)
        try:
            res = xdp.attach(iface, prog, mode, netns=ns, link_pin=self.layout.link(link_name(iface, ns)),
                             via="link", switch_mode=switch_mode, ours=self.prog_ids())
        finally:
            prog.close()
        res["role"] = role
        return res

    def detach(self, iface, netns=None):
        """Detach our program from iface and unpin its link."""
        ns = netns if netns is not None else self.netns
        iface = self._ifname(iface, ns)
        return xdp.detach(iface, netns=ns, link_pin=self.layout.link(link_name(iface, ns)),
                          ours=self.prog_ids())

    def attachments(self):
        """pinned.attachments() of this datapath: every pinned link, and what
        it attaches (ifindex 0: its interface is gone)."""
        return pinned.attachments(self.layout, self.netns)

    # ------------------------------------------------------------ map entries

    @property
    def maps_dir(self):
        """Where the maps are pinned (what tables.py calls a pin dir)."""
        return self.layout.maps

    def map(self, name):
        """The pinned map by name (mzr_endpoints, ...); the caller closes it."""
        path = self.layout.map(name)
        if not os.path.exists(path):
            raise LoaderError("no map pinned at %s: load() first" % path)
        return libbpf.Map.from_pin(path)

    def converge(self, desired, check_mode=False):
        """Bring the maps to the desired logical state (the renderer's per-host
        maps: if_cfg, substrate, endpoints, networks, vpcs, agents) with the
        ordered, never-half-visible writes of tables.py; returns its plan
        (plan.changed, plan.diff)."""
        if not os.path.isdir(self.layout.maps):
            raise LoaderError("no maps at %s: load() first" % self.layout.maps)
        return tables.converge(self.layout.maps, desired, check_mode=check_mode)

    def read_state(self):
        """The logical state the maps hold (tables.read_state)."""
        return tables.read_state(self.layout.maps)

    def counters(self):
        """{counter or drop reason: total over CPUs}."""
        return pinned.counters(self.layout)

    def status(self):
        """What is loaded and attached, entry counts, counters and stages
        (pinned.status())."""
        return pinned.status(self.layout, self.netns)

    # ------------------------------------------------------------ teardown

    def teardown(self):
        """Detach every link, unpin everything, remove pin_dir. Returns
        {changed, detached: [link names], unpinned: count}."""
        detached = []
        for path in self.layout.link_pins():
            fd = libbpf.obj_get(path)
            try:
                live = libbpf.link_info(fd)["ifindex"] != 0
            finally:
                os.close(fd)
            xdp.link_detach_pinned(path)
            if live:
                detached.append(os.path.basename(path))
        existed = os.path.isdir(self.pin_dir)
        unpinned = _rmtree_pins(self.pin_dir) if existed else 0
        return {"changed": existed, "detached": detached, "unpinned": unpinned}
