# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading a BPF object to learn what its program would be, changing nothing.

Check mode must tell whether a program would be replaced without touching
bpffs. A program's tag is a hash of its instructions with the map
references blanked out, and stages.same_program() also compares the ids of
the maps a program uses. So the object is loaded with every map that is
pinned under maps_dir reused by fd (same ids as a real load would get) and
with pinning switched off for all of them: maps not pinned yet are created
privately and vanish with the object. Without switching pinning off, libbpf
would pin maps declared LIBBPF_PIN_BY_NAME under /sys/fs/bpf.

The verifier's work is the cost of a read (a tenth of a second a program
on a fast machine, seconds under emulation), and its answer is a function
of the object's bytes, the program, the maps reused (by id), libbpf and the
running kernel. So when every map of the object is pinned, the answer is
kept in CACHE_DIR under a digest of all of these, the kernel by its boot id
(map and program ids are per boot too), and a later read with the same
inputs takes it from there without loading anything. CACHE_DIR is on /run:
it goes with the boot. A program whose maps are not all pinned yet is not
kept: its private maps get new ids at every load.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tempfile

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf

CACHE_DIR = "/run/mizar-transit"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def program_summary(obj_path, prog_name, maps_dir, cache_dir=CACHE_DIR):
    """{prog_id: None, name, tag, map_ids, new_maps: [names not pinned]} of
    prog_name in obj_path as a real load against maps_dir would make it.
    Nothing stays loaded or pinned. cache_dir: where answers are kept (None:
    load every time)."""
    obj = libbpf.BpfObject(obj_path)
    try:
        fresh, reused = [], []
        for m in obj.map_names():
            obj.set_pin_path(m, None)
            pin = os.path.join(maps_dir, m) if maps_dir else None
            if pin and os.path.exists(pin):
                fd = libbpf.obj_get(pin)
                try:
                    obj.reuse_fd(m, fd)  # libbpf keeps a duplicate
                    reused.append((m, libbpf.map_info(fd)["id"]))
                finally:
                    os.close(fd)
            else:
                fresh.append(m)
        key = _key(obj_path, prog_name, reused) if cache_dir and not fresh else None
        found = _recall(cache_dir, key)
        if found is not None:
            return found
        obj.load()
        prog = obj.program(prog_name)
        info = prog.info()
        summary = {"prog_id": None, "name": info["name"], "tag": info["tag"],
                   "map_ids": libbpf.prog_map_ids(prog.fd), "new_maps": fresh}
    finally:
        obj.close()
    _keep(cache_dir, key, summary)
    return summary


def _key(obj_path, prog_name, reused):
    """The digest of everything a load's answer depends on."""
    with open(obj_path, "rb") as f:
        data = f.read()
    with open(BOOT_ID) as f:
        boot = f.read().strip()
    what = {"object": hashlib.sha256(data).hexdigest(), "program": prog_name, "maps": sorted(reused),
            "libbpf": libbpf.version(), "boot": boot}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _recall(cache_dir, key):
    if key is None:
        return None
    try:
        with open(os.path.join(cache_dir, key)) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    fields = ("prog_id", "name", "tag", "map_ids", "new_maps")
    return found if isinstance(found, dict) and sorted(found) == sorted(fields) else None


def _keep(cache_dir, key, summary):
    """Keep an answer, whole or not at all; a cache that cannot be written
    only costs the next read a load."""
    if key is None:
        return
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(summary, f)
        os.rename(tmp, os.path.join(cache_dir, key))
    except OSError:
        pass


def program_names(obj_path):
    """Names of the programs in an object (opened, not loaded)."""
    obj = libbpf.BpfObject(obj_path)
    try:
        return obj.program_names()
    finally:
        obj.close()
