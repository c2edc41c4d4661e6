# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a datapath's pin directory holds, read without loading anything:
the pinned programs of each role, the XDP links and what each attaches, the
maps and their entry counts, the counters.

The Loader (loader.py), which changes the pins, and the transit_info module,
which only reads them, share these readers; the pin layout itself is
stages.Layout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, stages, xdp

# role -> (object file, program name): the datapath's own programs
ROLES = {
    "transit": ("transit.bpf.o", "mzr_transit"),
    "agent": ("agent.bpf.o", "mzr_agent"),
    "pass": ("pass.bpf.o", "mzr_pass"),
}
ROLE_OF_PROG = dict((prog, role) for role, (_obj, prog) in ROLES.items())


def _esc(text):
    return text.replace("%", "%25").replace(".", "%2e").replace("/", "%2f")


def _unesc(text):
    return text.replace("%2f", "/").replace("%2e", ".").replace("%25", "%")


def link_name(iface, netns=None):
    """Pin name of the link attaching XDP to iface in netns ("" = the
    Loader's own namespace): "<netns>:<iface>" with '.' escaped, since
    bpffs refuses dots."""
    return "%s:%s" % (_esc(netns or ""), _esc(str(iface)))


def parse_link_name(name):
    ns, dummy, iface = name.partition(":")
    return (_unesc(ns) or None), _unesc(iface)


def nonzero_slots(blob, size):
    """Indexes of the values of `size` bytes in blob that are not all zero.
    Blocks of slots are compared with zeros first (a memcmp each), so a big,
    mostly empty table is scanned in milliseconds."""
    step = size * max(1, 8192 // size)
    zero_block, zero = bytes(step), bytes(size)
    out = []
    n = len(blob)
    base = 0
    while base < n:
        end = min(base + step, n)
        if blob[base:end] != zero_block[:end - base]:
            for off in range(base, end, size):
                if blob[off:off + size] != zero:
                    out.append(off // size)
        base = end
    return out


def programs(layout):
    """{role: {prog_id, name, tag, map_ids} or None} of the pinned programs."""
    return dict((role, libbpf.pinned_prog(layout.prog(role))) for role in ROLES)


def prog_ids(layout):
    """Ids of every program pinned under the layout's progs (what counts as
    this datapath's own: its roles' programs and the stage programs)."""
    ids = set()
    if os.path.isdir(layout.progs):
        for f in os.listdir(layout.progs):
            s = libbpf.pinned_prog(os.path.join(layout.progs, f))
            if s:
                ids.add(s["prog_id"])
    return ids


def attachments(layout, netns=None):
    """[{link, netns, iface, link_id, ifindex, prog_id, role, tag, mode}] for
    every pinned link (ifindex 0: its interface is gone). netns is where
    the links named without a namespace live (None: this one)."""
    out = []
    for path in layout.link_pins():
        name = os.path.basename(path)
        ns, iface = parse_link_name(name)
        fd = libbpf.obj_get(path)
        try:
            info = libbpf.link_info(fd)
        finally:
            os.close(fd)
        s = stages._prog_summary(info["prog_id"]) if info["prog_id"] else None
        entry = {"link": name, "netns": ns, "iface": iface, "link_id": info["id"],
                 "ifindex": info["ifindex"], "prog_id": info["prog_id"],
                 "role": ROLE_OF_PROG.get(s["name"]) if s else None, "tag": s["tag"] if s else None,
                 "mode": None}
        if info["ifindex"]:
            try:
                entry["mode"] = xdp.query(info["ifindex"], netns=ns if ns is not None else netns)["mode"]
            except Exception:  # namespace gone meanwhile
                pass
        out.append(entry)
    return out


def map_counts(layout):
    """{map: {id, entries, max_entries}} of every pinned map. Entries: the
    filled slots of a prog array or an array, the keys of a hash, all of a
    per-CPU map (every slot exists)."""
    out = {}
    for f in sorted(os.listdir(layout.maps)):
        with libbpf.Map.from_pin(layout.map(f)) as m:
            if m.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY:
                n = len(stages.table(m))
            elif m.percpu:
                n = m.max_entries
            elif m.type == libbpf.BPF_MAP_TYPE_ARRAY:
                n = len(nonzero_slots(libbpf.read_array_blob(m), m.value_size))
            else:
                n = len(m.keys())
            out[f] = {"id": m.info["id"], "entries": n, "max_entries": m.max_entries}
    return out


def _per_slot(m):
    """{slot: [per-CPU values]} of a per-CPU array (a libbpf.Map)."""
    return dict((struct.unpack("<I", k)[0], v) for k, v in m.items())


def counters(layout):
    """{counter or drop reason: total over CPUs}."""
    with libbpf.Map.from_pin(layout.map(abi.COUNTERS_MAP)) as m:
        return abi.sum_counters(_per_slot(m))


class CountersError(Exception):
    """A function's declared counters do not fit the map pinned under its name."""


def function_counters(layout, declared, stage_list):
    """{function: {counters: {name: total over CPUs}, stages: [stage]}} of
    every function of declared ({function: {map, counters: [slot names]}},
    what its schema declares) whose counters map is pinned, with the stages
    whose chain runs a program on that map (stage_list: Stages.list()). A
    map of another shape than a per-CPU array of __u64 with a slot per name
    raises CountersError, naming the function."""
    on_map = {}  # map id -> stages running a program that uses it
    for stage, entry in sorted((stage_list or {}).items()):
        for fn in (entry or {}).get("chain") or []:
            summary = stages._prog_summary(fn["prog_id"]) if fn.get("prog_id") else None
            for map_id in (summary or {}).get("map_ids") or ():
                if stage not in on_map.setdefault(map_id, []):
                    on_map[map_id].append(stage)
    out = {}
    for name, decl in sorted(declared.items()):
        path = layout.map(decl["map"])
        if not os.path.exists(path):
            continue  # not installed on this host
        with libbpf.Map.from_pin(path) as m:
            names = decl["counters"]
            if m.type != libbpf.BPF_MAP_TYPE_PERCPU_ARRAY or m.value_size != 8 or m.max_entries < len(names):
                raise CountersError("function %s: its counters map %s is not a per-CPU array of %d __u64 slots or "
                                    "more (type %d, value size %d, %d slots)" % (name, decl["map"], len(names), m.type,
                                                                                 m.value_size, m.max_entries))
            out[name] = {"counters": abi.sum_slots(_per_slot(m), dict((c, i) for i, c in enumerate(names))),
                         "stages": on_map.get(m.info["id"], [])}
    return out


def status(layout, netns=None):
    """What is loaded and attached, entry counts, counters and stages:
    {pin_dir, loaded} and, when loaded, programs ({role: {prog_id, tag,
    name} or None}), attachments, maps, counters (verdicts and paths),
    drops (reasons with drops), the same counters by kind: verdicts,
    paths ({transit: {path: n}, agent: {path: n}}) and drop_reasons (every
    reason, 0 included), and stages."""
    if not os.path.isdir(layout.maps):
        return {"pin_dir": layout.root, "loaded": False}
    progs = dict((role, dict((k, s[k]) for k in ("prog_id", "tag", "name")) if s else None)
                 for role, s in programs(layout).items())
    maps = map_counts(layout)
    totals = counters(layout) if os.path.exists(layout.map(abi.COUNTERS_MAP)) else {}
    verdicts = dict((k, totals.get(k, 0)) for k in abi.COUNTERS)
    drops = dict((k, v) for k, v in totals.items() if k in abi.DROP_REASONS and v)
    return {"pin_dir": layout.root, "loaded": True, "programs": progs, "attachments": attachments(layout, netns),
            "maps": maps, "counters": verdicts, "drops": drops,
            "verdicts": dict((k, verdicts[k]) for k in abi.VERDICTS),
            "paths": dict((prog, dict((k, verdicts[k]) for k in names)) for prog, names in abi.PATHS.items()),
            "drop_reasons": dict((k, totals.get(k, 0)) for k in abi.DROP_REASONS),
            "stages": stages.Stages(layout.root).list() if abi.STAGES_MAP in maps else {}}
