# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One stage slot of a datapath: which function program runs there, and its
configuration.

    res = ensure(StageSpec(stage="on_xdp_redirect", object=".../acl.bpf.o",
                           function="acl", config={...}, vpcs={...},
                           pin_dir="/sys/fs/bpf/mizar"), check_mode=False)

The backend contract of ops/runner.py. read() finds the slot's program, and
for present what the object's program would be (loaded against the pinned
maps and dropped: dryload), the function's rules in use, the maps private
to the slot's program and the maps the other slots use. plan() makes the
steps from that alone.

present: the function's configuration is written through its configurator
(the object is loaded first when its private maps do not exist yet: the
load creates and pins them), and only then is the program put in the slot,
with one atomic update of the prog array. Packets therefore never meet the
program before its rules. The same program (same tag, same maps) already in
the slot is left alone, so re-runs are no-ops. A configuration is changed
only when the rules differ.

absent: the slot is emptied (the transit program falls through to its own
verdict) and its pin removed. The maps private to the program that was
there (a function's rules and statistics) are unpinned too, unless a
program in another slot still uses them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, dryload, fnconfig, libbpf, stages
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out

SUFFIX = ".bpf.o"

NEEDS = (LIBBPF,)
MODULE = args.module_args(
    dict(
        stage=args.stage(),
        object=dict(type="path"),
        program=dict(type="str"),
        function=dict(type="str"),
        config=dict(type="dict", default={}),
        vpcs=dict(type="dict", default={}),
        pin_dir=args.pin_dir(),
        state=args.state(),
    ),
    required_if=[("state", "present", ("object",))],
)


class StageSlotError(Exception):
    """The stage cannot be brought to the wanted state; says why."""


ERRORS = (StageSlotError,)


def context(params):
    return "stage %s (pin_dir %s)" % (params["stage"], params["pin_dir"])


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
        self.headers = ("stage %s (before)" % stage, "stage %s (after)" % stage)
        self.pin_dir = pin_dir
        self.maps_dir = stages.Layout(pin_dir).maps
        self.state = state
        self.object = object
        self.function = function
        self.config = config or {}
        self.vpcs = dict(vpcs or {})
        for name, vni in self.vpcs.items():
            if not isinstance(vni, int) or isinstance(vni, bool) or not 0 < vni <= 0xFFFFFF:
                raise StageSlotError("vpcs.%s: %r is not a VNI (1..16777215)" % (name, vni))
        self.vpc_of = dict((v, k) for k, v in self.vpcs.items())
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

    @classmethod
    def from_params(cls, params):
        try:
            return cls(params["stage"], params["pin_dir"], state=params["state"], object=params["object"],
                       program=params["program"], function=params["function"], config=params["config"],
                       vpcs=params["vpcs"])
        except StageSlotError as e:
            raise StageSlotError("stage %s: %s" % (params["stage"], e))


Spec = StageSpec


# ---------------------------------------------------------------- reading


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


def slot_program(pin_dir, stage):
    """The slot's program: None, or {slot, prog_id, name, tag, pinned, map_ids}."""
    cur = stages.Stages(pin_dir).list()[stage]
    if cur is None:
        return None
    summary = stages._prog_summary(cur["prog_id"]) or {"map_ids": []}
    return dict(cur, map_ids=summary["map_ids"])


def private_maps(pin_dir, map_ids):
    """{name: id} of the pinned maps among map_ids that are not the
    datapath's own (a function's rules, statistics)."""
    maps_dir = stages.Layout(pin_dir).maps
    shared = stages.shared_maps(maps_dir)
    ids = set(map_ids)
    return dict((n, i) for n, i in _pinned_maps(maps_dir).items() if i in ids and n not in shared)


def _maps_in_use(pin_dir, except_stage):
    """Ids of the maps used by the programs of every other slot."""
    used = set()
    for name, cur in stages.Stages(pin_dir).list().items():
        if cur is None or name == except_stage:
            continue
        s = stages._prog_summary(cur["prog_id"])
        used.update(s["map_ids"] if s else ())
    return used


def read(spec):
    """The slot's state, as plain data: datapath (its stage table is
    pinned), slot (slot_program()), private ({name: id}: maps private to
    the slot's program, and the named function's maps), in_use (ids of the
    maps of the other slots), stage_pin (the slot's program pin exists);
    for present also want (the object's program as a load would make it:
    name, tag, map_ids), config_missing (the function's maps not pinned
    yet) and config_raw (the bytes of its rules in use, None without)."""
    st = {"datapath": os.path.exists(os.path.join(spec.maps_dir, abi.STAGES_MAP))}
    if not st["datapath"]:
        return st
    st["slot"] = slot_program(spec.pin_dir, spec.stage)
    st["private"] = private_maps(spec.pin_dir, st["slot"]["map_ids"]) if st["slot"] else {}
    st["in_use"] = sorted(_maps_in_use(spec.pin_dir, spec.stage))
    st["stage_pin"] = os.path.exists(stages.Layout(spec.pin_dir).stage(spec.stage))
    c = spec.configurator
    if spec.state == "absent":
        if c is not None:  # the named function's maps, even with the slot already empty
            pinned = _pinned_maps(spec.maps_dir)
            st["private"].update((m, pinned[m]) for m in c.maps if m in pinned)
        return st
    try:
        st["want"] = dryload.program_summary(spec.object, spec.program, spec.maps_dir)
    except libbpf.BpfError as e:
        raise StageSlotError("object: loading %s from %s: %s" % (spec.program, spec.object, e))
    st["config_missing"] = [m for m in c.maps if not os.path.exists(os.path.join(spec.maps_dir, m))] if c else []
    st["config_raw"] = c.current(spec.maps_dir) if c is not None and not st["config_missing"] else None
    return st


# ---------------------------------------------------------------- planning


class _Load:
    """The stage object, loaded against the pinned maps at most once for the
    steps that need it (creating and pinning its private maps)."""

    def __init__(self, spec):
        self.spec = spec
        self.obj = self.prog = None

    def program(self):
        if self.obj is None:
            try:
                self.obj, self.prog = stages.load_stage(self.spec.pin_dir, self.spec.object, self.spec.program)
            except (libbpf.BpfError, stages.StageError) as e:
                raise StageSlotError("object: loading %s from %s: %s" % (self.spec.program, self.spec.object, e))
        return self.prog

    def close(self):
        if self.obj is not None:
            self.obj.close()


def _write_config(spec, load):
    """Write the function's rules, its maps made by loading the object first
    when they do not exist yet."""
    c = spec.configurator
    missing = [m for m in c.maps if not os.path.exists(os.path.join(spec.maps_dir, m))]
    if missing:
        load.program()
        missing = [m for m in missing if not os.path.exists(os.path.join(spec.maps_dir, m))]
        if missing:
            raise StageSlotError("function: %s's maps %s were not created by loading %s; is it the %s "
                                 "function's object?" % (spec.function, ", ".join(missing), spec.object,
                                                         spec.function))
    try:
        return c.converge(spec.maps_dir, spec.config, spec.vpcs)[0]
    except fnconfig.FunctionConfigError as e:
        raise StageSlotError("config: %s" % e)


def _install(spec, load, result):
    result.update(stages.Stages(spec.pin_dir).install_program(spec.stage, load.program()))
    return result["changed"]


def _repin(spec, prog_id):
    fd = libbpf.prog_fd_by_id(prog_id)
    try:
        stages.pin_replace(fd, stages.Layout(spec.pin_dir).stage(spec.stage))
    finally:
        os.close(fd)


def _remove(spec):
    return stages.Stages(spec.pin_dir).remove(spec.stage)["changed"]


def _unpin_map(spec, name):
    return libbpf.unpin(stages.Layout(spec.pin_dir).map(name))


def wanted_config(spec):
    """The bytes of spec's rules (None without a configurator)."""
    if spec.configurator is None:
        return None
    try:
        return spec.configurator.encode(spec.config, spec.vpcs)
    except fnconfig.FunctionConfigError as e:
        raise StageSlotError("config: %s" % e)


def plan(spec, st, load=None, installed=None):
    """The steps from the slot's state st to spec. load (a _Load) and
    installed (a dict that gets the install's result) are what the steps
    share when they are carried out. Raises StageSlotError when the slot
    cannot be brought to spec."""
    if not st["datapath"]:
        if spec.state == "absent":
            return []  # the teardown removed every slot with the datapath
        raise StageSlotError("pin_dir: no datapath is loaded at %s (run mizar.transit.transit first)" % spec.pin_dir)
    load = load or _Load(spec)
    installed = {} if installed is None else installed
    slot, cur = abi.STAGES[spec.stage], st["slot"]
    steps = []
    if spec.state == "absent":
        if cur is not None:
            text = "remove %s (tag %s) from stage %s (slot %d)" % (cur["name"], cur["tag"], spec.stage, slot)
            steps.append(Step(text, _remove, spec))
        elif st["stage_pin"]:
            steps.append(Step("unpin the stale program pin of stage %s" % spec.stage, _remove, spec))
        return steps + [Step("unpin map %s (no stage uses it any more)" % m, _unpin_map, spec, m)
                        for m in _removable(st, st["in_use"])]
    want = wanted_config(spec)
    if spec.configurator is not None and (st["config_missing"] or st["config_raw"] != want):
        steps.append(Step("write the %s rules of %s (%s)" % (
            spec.function, spec.stage, "first configuration" if st["config_missing"] else "changed"),
            _write_config, spec, load))
    same = stages.same_program(cur, st["want"])
    if not same:
        steps.append(Step("%s %s from %s in stage %s (slot %d)" % (
            "replace %s (tag %s) with" % (cur["name"], cur["tag"]) if cur else "install",
            spec.program, spec.object, spec.stage, slot), _install, spec, load, installed))
        if cur is not None:  # maps private to the program replaced, which nothing uses now
            in_use = set(st["in_use"]) | set(st["want"]["map_ids"])
            steps += [Step("unpin map %s of the replaced program (no stage uses it any more)" % m, _unpin_map, spec, m)
                      for m in _removable(st, in_use)]
    elif not cur["pinned"]:
        steps.append(Step("pin the program of stage %s again (its pin was lost)" % spec.stage, _repin, spec,
                          cur["prog_id"]))
    return steps


def _removable(st, in_use):
    return sorted(n for n, i in st["private"].items() if i not in set(in_use))


# ---------------------------------------------------------------- reporting


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


def ensure(spec, check_mode=False):
    """Bring the slot of spec to its state. Returns {changed, actions, stage,
    slot, program, prog_id, tag, config_changed, config, removed_maps,
    diff: {before, after}, warnings}. With no datapath loaded, absent has
    nothing to do."""
    try:
        return _ensure(spec, check_mode)
    except StageSlotError as e:
        raise StageSlotError("stage %s: %s" % (spec.stage, e))


def _ensure(spec, check_mode):
    try:
        st = read(spec)
    except (libbpf.BpfError, stages.StageError, OSError) as e:
        raise StageSlotError("reading the slot: %s" % e)
    load, installed = _Load(spec), {}
    try:
        steps = plan(spec, st, load, installed)
        actions = carry_out(steps, check_mode=check_mode, error=StageSlotError)
    finally:
        load.close()
    slot = abi.STAGES[spec.stage]
    warnings = []
    if spec.state == "present" and spec.config and not spec.function:
        warnings.append("stage %s: config was given without function, so it was not applied: only shipped functions "
                        "with a configurator (function: acl) have their maps filled by this module" % spec.stage)
    result = {"changed": bool(steps), "actions": actions, "stage": spec.stage, "slot": slot, "program": None,
              "prog_id": None, "tag": None, "config_changed": False, "config": None, "warnings": warnings,
              "removed_maps": sorted(s.args[1] for s in steps if s.fn is _unpin_map)}
    if not st["datapath"]:
        text = "%s: no datapath at %s\n" % (spec.stage, spec.pin_dir)
        return dict(result, diff={"before": text, "after": text})
    cur = st["slot"]
    if spec.state == "absent":
        return dict(result, diff={"before": _describe(spec.stage, cur) + "\n" +
                                  "".join("map %s\n" % m for m in result["removed_maps"]),
                                  "after": _describe(spec.stage, None) + "\n"})
    same = stages.same_program(cur, st["want"])
    after_prog = cur if same else st["want"]
    if same:
        prog_id, tag = cur["prog_id"], cur["tag"]
    elif check_mode:
        prog_id, tag = None, st["want"]["tag"]
    else:
        prog_id, tag = installed["prog_id"], installed["tag"]
    result.update(program=spec.program, prog_id=prog_id, tag=tag)
    before_text, after_text = [_describe(spec.stage, cur)], [_describe(spec.stage, after_prog)]
    c = spec.configurator
    if c is not None:
        wrote = any(s.fn is _write_config for s in steps)
        have = None if st["config_missing"] else c.decode(st["config_raw"], spec.vpc_of)
        now = c.decode(wanted_config(spec), spec.vpc_of) if wrote else have
        result.update(config_changed=wrote, config=now)
        before_text += _config_lines(have)
        after_text += _config_lines(now)
    return dict(result, diff={"before": "\n".join(before_text) + "\n", "after": "\n".join(after_text) + "\n"})
