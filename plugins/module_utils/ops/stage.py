# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One stage slot of a datapath: which function program runs there, and its
configuration.

    res = ensure(StageSpec(stage="on_xdp_redirect", object=".../acl.bpf.o",
                           function="acl", config={...}, vpcs={...},
                           pin_dir="/sys/fs/bpf/mizar"), check_mode=False)

present: the object is loaded against the datapath's pinned maps (its
private maps are created and pinned beside them on first load), the
function's configuration is written through its configurator, and only then
is the program put in the slot, with one atomic update of the prog array.
Packets therefore never meet the program before its rules. The same program
(same tag, same maps) already in the slot is left alone, so re-runs are
no-ops. A configuration is changed only when the rules differ.

absent: the slot is emptied (the transit program falls through to its own
verdict) and its pin removed. The maps private to the program that was
there (a function's rules and statistics) are unpinned too, unless a
program in another slot still uses them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, dryload, fnconfig, libbpf, stages

SUFFIX = ".bpf.o"


class StageSlotError(Exception):
    """The stage cannot be brought to the wanted state; says why."""


def object_stem(obj_path):
    base = os.path.basename(obj_path)
    return base[:-len(SUFFIX)] if base.endswith(SUFFIX) else os.path.splitext(base)[0]


def resolve_program(obj_path, stage, program=None):
    """The program to run at stage from obj_path: `program` when given (it
    must be in the object), else <stem>_<stage> when the object has it, else
    the object's only program."""
    if not os.path.isfile(obj_path):
        raise StageSlotError("object: %s does not exist (build it with mizar.transit.bpf_build)" % obj_path)
    try:
        names = dryload.program_names(obj_path)
    except libbpf.BpfError as e:
        raise StageSlotError("object: %s cannot be opened: %s" % (obj_path, e))
    if program:
        if program not in names:
            raise StageSlotError("program: %s has no program %r; it has %s" % (
                obj_path, program, ", ".join(names) or "none"))
        return program
    wanted = "%s_%s" % (object_stem(obj_path), stage)
    if wanted in names:
        return wanted
    if len(names) == 1:
        return names[0]
    raise StageSlotError("program: %s has no program %s and %d others (%s); name the one to run at %s" % (
        obj_path, wanted, len(names), ", ".join(names) or "none", stage))


class StageSpec:
    """What one stage slot should hold. Checked on construction."""

    def __init__(self, stage, pin_dir, state="present", object=None, program=None, function=None, config=None,
                 vpcs=None):
        if stage not in abi.STAGES:
            raise StageSlotError("stage: %r is not a stage; one of %s" % (stage, ", ".join(sorted(abi.STAGES))))
        self.stage = stage
        self.pin_dir = pin_dir
        self.state = state
        self.object = object
        self.function = function
        self.config = config or {}
        self.vpcs = dict(vpcs or {})
        for name, vni in self.vpcs.items():
            if not isinstance(vni, int) or isinstance(vni, bool) or not 0 < vni <= 0xFFFFFF:
                raise StageSlotError("vpcs.%s: %r is not a VNI (1..16777215)" % (name, vni))
        self.configurator = None
        if function:
            self.configurator = fnconfig.configurator(function)
            if self.configurator is None and self.config:
                raise StageSlotError("function: %s has no configurator in this collection, so its config cannot be "
                                     "applied (configurable functions: %s)" % (
                                         function, ", ".join(sorted(fnconfig.CONFIGURATORS))))
        self.program = None
        if state == "present":
            if not object:
                raise StageSlotError("object is required with state=present: the function's .bpf.o")
            self.program = resolve_program(object, stage, program)


def _maps_dir(pin_dir):
    return stages.Layout(pin_dir).maps


def _require_datapath(pin_dir):
    if not os.path.exists(os.path.join(_maps_dir(pin_dir), abi.STAGES_MAP)):
        raise StageSlotError("pin_dir: no datapath is loaded at %s (run mizar.transit.transit first)" % pin_dir)


def _map_names_by_id(ids):
    out = {}
    for mid in ids:
        try:
            fd = libbpf.map_fd_by_id(mid)
        except libbpf.BpfError:
            continue
        try:
            out[mid] = libbpf.map_info(fd)["name"]
        finally:
            os.close(fd)
    return out


def _pinned_maps(maps_dir):
    """{name: map id} of the maps pinned in maps_dir."""
    out = {}
    for f in sorted(os.listdir(maps_dir)) if os.path.isdir(maps_dir) else ():
        path = os.path.join(maps_dir, f)
        if libbpf.pin_kind(path) != "map":
            continue
        fd = libbpf.obj_get(path)
        try:
            out[f] = libbpf.map_info(fd)["id"]
        finally:
            os.close(fd)
    return out


def read(pin_dir, stage):
    """The slot's program: None, or {prog_id, name, tag, map_ids, pinned}."""
    _require_datapath(pin_dir)
    cur = stages.Stages(pin_dir).list()[stage]
    if cur is None:
        return None
    summary = stages._prog_summary(cur["prog_id"]) or {"map_ids": []}
    return dict(cur, map_ids=summary["map_ids"])


def private_maps(pin_dir, map_ids):
    """{name: id} of the pinned maps among map_ids that are not the
    datapath's own (a function's rules, statistics)."""
    maps_dir = _maps_dir(pin_dir)
    shared = stages.shared_maps(maps_dir)
    pinned = _pinned_maps(maps_dir)
    ids = set(map_ids)
    return dict((n, i) for n, i in pinned.items() if i in ids and n not in shared)


def _maps_in_use(pin_dir, except_stage):
    """Ids of the maps used by the programs of every other slot."""
    used = set()
    for name, cur in stages.Stages(pin_dir).list().items():
        if cur is None or name == except_stage:
            continue
        s = stages._prog_summary(cur["prog_id"])
        used.update(s["map_ids"] if s else ())
    return used


def _describe(stage, prog):
    """One line for a slot; names as the kernel keeps them (15 characters)."""
    if prog is None:
        return "%s: empty" % stage
    return "%s: %s (tag %s)" % (stage, (prog.get("name") or "?")[:15], prog.get("tag"))


def _config_lines(config):
    """A function's config, one line per rule or setting."""
    if config is None:
        return ["config: none yet (the function's maps do not exist)"]
    lines = ["config:"]
    rules = config.get("rules") if isinstance(config, dict) else None
    if isinstance(rules, list):
        lines.append("  rules:" + ("" if rules else " []"))
        for r in rules:
            lines.append("    - " + ", ".join("%s: %s" % (k, r[k]) for k in sorted(r)))
        rest = dict((k, v) for k, v in config.items() if k != "rules")
    else:
        rest = config or {}
    for k in sorted(rest):
        lines.append("  %s: %s" % (k, rest[k]))
    return lines


def _config_maps_missing(spec):
    maps_dir = _maps_dir(spec.pin_dir)
    return [m for m in spec.configurator.maps if not os.path.exists(os.path.join(maps_dir, m))]


def _converge_config(spec, check_mode, fresh):
    """(changed, before, after) of the function's config; before is None
    when its maps did not exist before this run (fresh)."""
    c = spec.configurator
    missing = _config_maps_missing(spec)
    try:
        if missing:
            if not check_mode:
                raise StageSlotError("function: %s's maps %s were not created by loading %s; is it the %s "
                                     "function's object?" % (spec.function, ", ".join(missing), spec.object,
                                                             spec.function))
            vpc_of = dict((v, k) for k, v in spec.vpcs.items())
            return True, None, c.decode(c.encode(spec.config, spec.vpcs), vpc_of)
        changed, before, after = c.converge(_maps_dir(spec.pin_dir), spec.config, spec.vpcs, check_mode=check_mode)
        return changed or fresh, None if fresh else before, after
    except fnconfig.FunctionConfigError as e:
        raise StageSlotError("config: %s" % e)


def ensure(spec, check_mode=False):
    """Bring the slot of spec to its state. Returns {changed, actions, stage,
    slot, program, prog_id, tag, config_changed, config, removed_maps,
    diff: {before, after}}. With no datapath loaded, absent has nothing to
    do (the teardown removed every slot with the datapath)."""
    if spec.state == "absent" and not os.path.exists(os.path.join(_maps_dir(spec.pin_dir), abi.STAGES_MAP)):
        text = "%s: no datapath at %s\n" % (spec.stage, spec.pin_dir)
        return {"changed": False, "actions": [], "stage": spec.stage, "slot": abi.STAGES[spec.stage],
                "program": None, "prog_id": None, "tag": None, "config_changed": False, "config": None,
                "removed_maps": [], "diff": {"before": text, "after": text}}
    _require_datapath(spec.pin_dir)
    before = read(spec.pin_dir, spec.stage)
    if spec.state == "present":
        return _present(spec, before, check_mode)
    return _absent(spec, before, check_mode)


def _present(spec, before, check_mode):
    actions = []
    slot = abi.STAGES[spec.stage]
    maps_dir = _maps_dir(spec.pin_dir)
    cfg = None
    if check_mode:
        try:
            want = dryload.program_summary(spec.object, spec.program, maps_dir)
        except libbpf.BpfError as e:
            raise StageSlotError("object: loading %s from %s: %s" % (spec.program, spec.object, e))
        same = stages.same_program(before, want)
        if spec.configurator is not None:
            cfg = _converge_config(spec, True, bool(_config_maps_missing(spec)))
        after_prog = before if same else want
        replaced = before is not None and not same
        if not same:
            actions.append("%s %s from %s in stage %s (slot %d)" % (
                "replace %s (tag %s) with" % (before["name"], before["tag"]) if before else "install",
                spec.program, spec.object, spec.stage, slot))
        res = {"prog_id": before["prog_id"] if same else None, "tag": after_prog["tag"]}
    else:
        fresh = spec.configurator is not None and bool(_config_maps_missing(spec))
        try:
            obj, prog = stages.load_stage(spec.pin_dir, spec.object, spec.program)
        except (libbpf.BpfError, stages.StageError) as e:
            raise StageSlotError("object: loading %s from %s: %s" % (spec.program, spec.object, e))
        try:
            if spec.configurator is not None:  # rules first: the program never runs without them
                cfg = _converge_config(spec, False, fresh)
            res = stages.Stages(spec.pin_dir).install_program(spec.stage, prog)
        finally:
            obj.close()
        if res["changed"]:
            actions.append("%s %s from %s in stage %s (slot %d)" % (
                "replace %s (tag %s) with" % (before["name"], before["tag"]) if before else "install",
                spec.program, spec.object, spec.stage, slot))
        after_prog = {"name": spec.program, "tag": res["tag"]}
        replaced = before is not None and res["changed"]
    # maps private to the program this one replaced, which nothing uses now
    removable = []
    if replaced:
        old_private = private_maps(spec.pin_dir, before["map_ids"])
        new_ids = want["map_ids"] if check_mode else stages._prog_summary(res["prog_id"])["map_ids"]
        in_use = _maps_in_use(spec.pin_dir, spec.stage) | set(new_ids)
        removable = sorted(n for n, i in old_private.items() if i not in in_use)
        for m in removable:
            actions.append("unpin map %s of the replaced program (no stage uses it any more)" % m)
            if not check_mode:
                libbpf.unpin(stages.Layout(spec.pin_dir).map(m))
    config_changed = bool(cfg and cfg[0])
    if config_changed:
        actions.insert(0, "write the %s rules of %s (%s)" % (
            spec.function, spec.stage, "first configuration" if cfg[1] is None else "changed"))
    before_text = [_describe(spec.stage, before)] + (_config_lines(cfg[1]) if cfg else [])
    after_text = [_describe(spec.stage, after_prog)] + (_config_lines(cfg[2]) if cfg else [])
    return {"changed": bool(actions), "actions": actions, "stage": spec.stage, "slot": slot,
            "program": spec.program, "prog_id": res["prog_id"], "tag": res["tag"],
            "config_changed": config_changed, "config": cfg[2] if cfg else None, "removed_maps": removable,
            "diff": {"before": "\n".join(before_text) + "\n", "after": "\n".join(after_text) + "\n"}}


def _absent(spec, before, check_mode):
    actions = []
    lay = stages.Layout(spec.pin_dir)
    slot = abi.STAGES[spec.stage]
    private = private_maps(spec.pin_dir, before["map_ids"]) if before else {}
    if spec.configurator is not None:  # the named function's maps, even with the slot already empty
        pinned = _pinned_maps(lay.maps)
        private.update((m, pinned[m]) for m in spec.configurator.maps if m in pinned)
    in_use = _maps_in_use(spec.pin_dir, spec.stage)
    removable = sorted(n for n, i in private.items() if i not in in_use)
    if before is not None:
        actions.append("remove %s (tag %s) from stage %s (slot %d)" % (before["name"], before["tag"], spec.stage, slot))
    elif os.path.exists(lay.stage(spec.stage)):
        actions.append("unpin the stale program pin of stage %s" % spec.stage)
    for m in removable:
        actions.append("unpin map %s (no stage uses it any more)" % m)
    if not check_mode:
        stages.Stages(spec.pin_dir).remove(spec.stage)
        for m in removable:
            libbpf.unpin(lay.map(m))
    return {"changed": bool(actions), "actions": actions, "stage": spec.stage, "slot": slot, "program": None,
            "prog_id": None, "tag": None, "config_changed": False, "config": None, "removed_maps": removable,
            "diff": {"before": _describe(spec.stage, before) + "\n" + "".join("map %s\n" % m for m in removable),
                     "after": _describe(spec.stage, None) + "\n"}}
