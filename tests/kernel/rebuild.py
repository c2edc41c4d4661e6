"""Move together: the stage table replaced whole, by a new prog array in a
new transit program switched on every link at once (bpf_link_update,
atomic per interface), never by edits of the table in use.

This was Stages.rebuild() in bpf/stages.py before chains of functions; no
module uses it any more (set_chain() swaps one stage's chain through the
table's two banks), but test_stages.py keeps it as the alternative
docs/architecture.md ("Stages") weighs: it works for chains of one function
only, since functions go on along their chain through the prog array they
were loaded with.
"""
import os
import struct

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, libbpf, stages


def rebuild(st, transit_obj, stages_, on_step=None):
    """Move together: make the table of st (a Stages) exactly stages_ ({stage: Program or
    (obj_path, prog_name) or None}; stages not named keep their current
    chain) with a new prog array and a new transit program, switching
    every link of <pin_dir>/links that runs a program using the old array.
    Functions reach the rest of their chain through the array they were
    loaded with, so only chains of one function can move this way
    (set_chain() swaps a stage's chain of any length on its own).

    on_step(step, info) is called after each step (loaded, filled,
    switched, pinned), for tests and logs. Returns {changed, old_array_id,
    new_array_id, old_prog_id, new_prog_id, links, table}."""
    lay = st.layout
    # held to the end: the old table stays whole (a prog array is emptied
    # when its last user reference goes) while packets may still run the
    # old program
    old_arr = st._array()
    old_array_id = old_arr.info["id"]
    banks = st.banks()
    live = stages.live_chains(stages.table(old_arr), old_arr.max_entries, banks)
    want = dict((abi.STAGE_NAMES[n], ids) for n, ids in live.items())
    opened = [old_arr]
    try:
        progs = {}
        for s, src in (stages_ or {}).items():
            s = stages.name_of(s)
            if src is None:
                want[s] = []
            elif isinstance(src, tuple):
                obj, prog = stages.load_stage(st.pin_dir, src[0], src[1])
                opened.append(obj)
                progs[s] = prog
                want[s] = [prog.info()["id"]]
            else:
                progs[s] = src
                want[s] = [src.info()["id"]]
        longer = sorted(s for s, chain in want.items() if len(chain) > 1)
        if longer:
            raise stages.StageError("stages %s run chains of several functions, which a rebuild cannot move: "
                                    "swap them with set_chain" % ", ".join(longer))

        # 1. a new transit program with its own, empty table
        obj = libbpf.BpfObject(transit_obj, pin_root=lay.maps)
        opened.append(obj)
        for m in obj.map_names():
            if m != abi.STAGES_MAP and not os.path.exists(lay.map(m)):
                raise stages.StageError("map %s is not pinned at %s: load the datapath first" % (m, lay.maps))
        obj.set_pin_path(abi.STAGES_MAP, None)
        obj.load()
        new_prog = obj.program(stages.TRANSIT_PROG)
        new_arr = obj.map(abi.STAGES_MAP)
        new_array_id = new_arr.info["id"]
        new_prog_id = new_prog.info()["id"]
        step(on_step, "loaded", new_prog_id=new_prog_id, new_array_id=new_array_id)

        # 2. fill it while nothing can reach it
        held = []
        try:
            for s, chain in want.items():
                if not chain:
                    continue
                if s in progs:
                    fd = progs[s].fd
                else:
                    fd = libbpf.prog_fd_by_id(chain[0])
                    held.append(fd)
                number = abi.STAGES[s]
                new_arr.update(stages._key(abi.stage_slot(banks.get(number, 0), number, 0)), struct.pack("<I", fd))
        finally:
            for fd in held:
                os.close(fd)
        step(on_step, "filled", table=stages.table(new_arr))

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
            step(on_step, "switched", links=switched)

            # 4. only now does the pin move: new table and program in place.
            # Until this pin exists the new table lives on our fd alone, and
            # the kernel empties a prog array when its last user reference
            # goes: a failure before this point puts the old program back.
            stages.pin_replace(new_arr.fd, lay.map(abi.STAGES_MAP))
        except Exception:
            for path, pfd in old_fds:
                stages._rollback(path, pfd, new_prog.fd)
            raise
        finally:
            for _path, pfd in old_fds:
                os.close(pfd)
        if not os.path.isdir(lay.progs):
            os.mkdir(lay.progs)
        stages.pin_replace(new_prog.fd, lay.prog("transit"))
        for s, chain in want.items():
            if s in progs:
                stages.pin_replace(progs[s].fd, lay.stage(s))
            elif not chain:
                libbpf.unpin(lay.stage(s))
        live = stages.live_chains(stages.table(new_arr), new_arr.max_entries, banks)
        result_table = dict((n, ids[0]) for n, ids in live.items() if ids)
        step(on_step, "pinned", table=result_table)
    finally:
        for o in opened:
            o.close()
    return {"changed": True, "old_array_id": old_array_id, "new_array_id": new_array_id,
            "old_prog_id": old_prog_id, "new_prog_id": new_prog_id, "links": switched,
            "table": dict((abi.STAGE_NAMES[k], v) for k, v in result_table.items())}


def step(on_step, name, **info):
    if on_step is not None:
        on_step(name, info)
