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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf


def program_summary(obj_path, prog_name, maps_dir):
    """{prog_id: None, name, tag, map_ids, new_maps: [names not pinned]} of
    prog_name in obj_path as a real load against maps_dir would make it.
    Nothing stays loaded or pinned."""
    obj = libbpf.BpfObject(obj_path)
    try:
        fresh = []
        for m in obj.map_names():
            obj.set_pin_path(m, None)
            pin = os.path.join(maps_dir, m) if maps_dir else None
            if pin and os.path.exists(pin):
                fd = libbpf.obj_get(pin)
                try:
                    obj.reuse_fd(m, fd)  # libbpf keeps a duplicate
                finally:
                    os.close(fd)
            else:
                fresh.append(m)
        obj.load()
        prog = obj.program(prog_name)
        info = prog.info()
        return {"prog_id": None, "name": info["name"], "tag": info["tag"],
                "map_ids": libbpf.prog_map_ids(prog.fd), "new_maps": fresh}
    finally:
        obj.close()


def program_names(obj_path):
    """Names of the programs in an object (opened, not loaded)."""
    obj = libbpf.BpfObject(obj_path)
    try:
        return obj.program_names()
    finally:
        obj.close()
