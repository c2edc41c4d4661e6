# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stage slots of a datapath: which function program runs in each, and
its configuration.

The module takes one slot (stage, object, ...: the single form) or a host's
whole list of functions (functions: one item per stage), and with
`exclusive` also empties the slots the list leaves out:

    res = ensure(Spec.from_params(dict(functions=[dict(stage="on_xdp_redirect",
                 object=".../acl.bpf.o", function="acl", config={...})], vpcs={...},
                 exclusive=True, pin_dir="/sys/fs/bpf/mizar", state="present")), check_mode=False)

The single form is a list of one item. The backend contract of
ops/runner.py: read() reads every slot once (its program, the maps private
to it, its pin) and, for each item to install, what the object's program
would be (loaded against the pinned maps and dropped: dryload) and the
function's rules in use. plan() makes the steps of every slot from that
alone (plan_slot() is one slot's), so every refusal comes before anything
is done; they are carried out in the list's order, the slots exclusive
empties last.

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
program in another slot still uses them once the plan is carried out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import abi, dryload, fnconfig, libbpf, stages
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import Step, carry_out

SUFFIX = ".bpf.o"
SLOT_ORDER = tuple(sorted(abi.STAGES, key=abi.STAGES.get))

# One slot's options: the module's own in the single form, and each item's
# of `functions` (which may also carry a name, for messages, and a state).
SINGLE_OPTIONS = ("stage", "object", "program", "function", "config")
FUNCTION_OPTIONS = dict(
    object=dict(type="path"),
    program=dict(type="str"),
    function=dict(type="str"),
    config=dict(type="dict", default={}),
)
NEEDS = (LIBBPF,)
MODULE = args.module_args(
    dict(FUNCTION_OPTIONS,
         stage=args.stage(required=False),
         functions=dict(type="list", elements="dict", options=dict(
             FUNCTION_OPTIONS, name=dict(type="str"), stage=args.stage(),
             state=dict(type="str", choices=list(args.STATES)))),
         rendered=dict(type="dict"),
         exclusive=dict(type="bool", default=False),
         vpcs=dict(type="dict", default={}),
         pin_dir=args.pin_dir(),
         state=args.state()),
    required_one_of=[("stage", "functions", "rendered")],
    mutually_exclusive=[("functions", option) for option in SINGLE_OPTIONS + ("rendered",)] +
                       [("rendered", option) for option in SINGLE_OPTIONS + ("vpcs",)],
    required_if=[("exclusive", True, ("functions", "rendered"), True)],
)


class StageSlotError(BackendError):
    """The stage cannot be brought to the wanted state; says why."""


ERRORS = (StageSlotError,)


def context(params):
    if params.get("functions") is not None or params.get("rendered") is not None:
        return "functions (pin_dir %s)" % params["pin_dir"]
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


def vni_map(vpcs):
    """vpcs ({VPC name: VNI}) checked: every value a VNI."""
    vpcs = dict(vpcs or {})
    for name, vni in vpcs.items():
        if not isinstance(vni, int) or isinstance(vni, bool) or not 0 < vni <= 0xFFFFFF:
            raise StageSlotError("vpcs.%s: %r is not a VNI (1..16777215)" % (name, vni))
    return vpcs


class StageSpec:
    """What one stage slot should hold. Checked on construction; errors
    name the field (the module's Spec adds the item: label)."""

    def __init__(self, stage, pin_dir, state="present", object=None, program=None, function=None, config=None,
                 vpcs=None, name=None, label=None):
        if stage not in abi.STAGES:
            raise StageSlotError("stage: %r is not a stage; one of %s" % (stage, ", ".join(sorted(abi.STAGES))))
        self.stage = stage
        self.name = name
        self.label = label or "stage %s" % stage
        self.pin_dir = pin_dir
        self.maps_dir = stages.Layout(pin_dir).maps
        self.state = state
        self.object = object
        self.function = function
        self.config = config or {}
        self.vpcs = vni_map(vpcs)
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


def _item_spec(item, state, label, vpcs, pin_dir):
    try:
        return StageSpec(item["stage"], pin_dir, state=state, object=item.get("object"), program=item.get("program"),
                         function=item.get("function"), config=item.get("config"), vpcs=vpcs,
                         name=item.get("name"), label=label)
    except StageSlotError as e:
        raise StageSlotError("%s: %s" % (label, e))


class Spec:
    """The module's arguments: one slot (the single form) or a host's
    functions (one StageSpec per item), the options they share, and
    exclusive: empty the slots the list does not claim. A stage holds one
    program, and a function's rules are one set for every stage it runs
    at: the items must agree on both."""

    def __init__(self, items, pin_dir, vpcs=None, exclusive=False, single=False):
        self.items = list(items)  # [StageSpec]
        self.pin_dir = pin_dir
        self.maps_dir = stages.Layout(pin_dir).maps
        self.vpcs = vni_map(vpcs)
        self.exclusive = bool(exclusive)
        self.single = single
        self.label = self.items[0].label if single else "functions"
        shown = "stage %s" % self.items[0].stage if single else "stages"
        self.headers = ("%s (before)" % shown, "%s (after)" % shown)
        claimed, configured = {}, {}
        for item in self.items:
            first = claimed.setdefault(item.stage, item)
            if first is not item:
                raise StageSlotError("%s: stage: %s is the stage of %s too; a stage holds one program" % (
                    item.label, item.stage, first.label))
            if item.configurator is None or item.state != "present":
                continue
            first = configured.setdefault(item.function, item)
            if first is not item and first.config != item.config:
                raise StageSlotError("%s: config: differs from the config of %s, which runs %s too; the %s rules "
                                     "are kept in maps every stage running it shares (%s): give both the same "
                                     "config" % (item.label, first.label, item.function, item.function,
                                                 ", ".join(item.configurator.maps)))

    @classmethod
    def from_params(cls, params):
        pin_dir = params["pin_dir"]
        if params.get("rendered") is not None:
            params = dict(params, functions=rendered_functions(params["rendered"]),
                          vpcs=params["rendered"].get("vnis") or {})
        if params.get("functions") is None:
            item = _item_spec(params, params["state"], "stage %s" % params["stage"], params["vpcs"], pin_dir)
            return cls([item], pin_dir, vpcs=params["vpcs"], single=True)
        vpcs = vni_map(params["vpcs"])
        items = []
        for i, fn in enumerate(params["functions"]):
            label = "function %s (functions[%d])" % (fn["name"], i) if fn.get("name") else "functions[%d]" % i
            items.append(_item_spec(fn, fn.get("state") or params["state"], label, vpcs, pin_dir))
        return cls(items, pin_dir, vpcs=vpcs, exclusive=params["exclusive"])


def rendered_functions(rendered):
    """The items of `functions` for a host's rendering: its functions, each
    with its name, stage, object and config, and for a shipped one the
    function whose rules are written (the rendering's `program` names it;
    a user's source has no configurator here)."""
    return [{"name": f["name"], "stage": f["stage"], "object": f["object"], "config": f.get("config") or {},
             "function": f["program"] if f.get("shipped") else None}
            for f in rendered.get("functions") or []]


def _cleared_spec(spec, stage):
    """What exclusive makes of a slot the list leaves out: state=absent."""
    return StageSpec(stage, spec.pin_dir, state="absent", vpcs=spec.vpcs, label="stage %s (not in functions)" % stage)


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


def read_slots(pin_dir):
    """{stage: None, or {slot, prog_id, name, tag, pinned, map_ids}} of
    every slot."""
    out = {}
    for stage, cur in stages.Stages(pin_dir).list().items():
        summary = stages._prog_summary(cur["prog_id"]) if cur else None
        out[stage] = dict(cur, map_ids=(summary or {"map_ids": []})["map_ids"]) if cur else None
    return out


def _read_item(spec, st, pinned):
    """Add to st, its slot's state, what spec needs read: for present the
    object's program as a load would make it and the function's rules in
    use; for absent the named function's maps (of pinned: {name: id}),
    even with the slot empty."""
    c = spec.configurator
    if spec.state == "absent":
        if c is not None:
            st["private"].update((m, pinned[m]) for m in c.maps if m in pinned)
        return
    try:
        st["want"] = dryload.program_summary(spec.object, spec.program, spec.maps_dir)
    except libbpf.BpfError as e:
        raise StageSlotError("object: loading %s from %s: %s" % (spec.program, spec.object, e))
    st["config_missing"] = [m for m in c.maps if not os.path.exists(os.path.join(spec.maps_dir, m))] if c else []
    st["config_raw"] = c.current(spec.maps_dir) if c is not None and not st["config_missing"] else None


def read(spec):
    """Every slot's state, as plain data: {datapath (its stage table is
    pinned), slots: {stage: the slot's state}}. A slot's state: datapath,
    slot (read_slots()), private ({name: id}: the maps private to the
    slot's program), in_use (ids of the maps the other slots' programs use
    now), stage_pin (the slot's program pin exists); for the slot of a
    present item also want (the object's program as a load would make it:
    name, tag, map_ids), config_missing (the function's maps not pinned
    yet) and config_raw (the bytes of its rules in use, None without); for
    an absent item naming a function, its maps among private."""
    if not os.path.exists(os.path.join(spec.maps_dir, abi.STAGES_MAP)):
        return {"datapath": False}
    slots = read_slots(spec.pin_dir)
    pinned = _pinned_maps(spec.maps_dir)
    shared = stages.shared_maps(spec.maps_dir)
    layout = stages.Layout(spec.pin_dir)
    out = {}
    for stage, cur in slots.items():
        ids = set(cur["map_ids"]) if cur else set()
        others = set(i for s, p in slots.items() if p is not None and s != stage for i in p["map_ids"])
        out[stage] = {"datapath": True, "slot": cur, "in_use": sorted(others),
                      "private": dict((n, i) for n, i in pinned.items() if i in ids and n not in shared),
                      "stage_pin": os.path.exists(layout.stage(stage))}
    for item in spec.items:
        try:
            _read_item(item, out[item.stage], pinned)
        except StageSlotError as e:
            raise StageSlotError("%s: %s" % (item.label, e))
    return {"datapath": True, "slots": out}


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


def plan_slot(spec, st, load=None, installed=None):
    """The steps from one slot's state st to spec (a StageSpec); st's
    in_use holds the ids of the maps the other slots use once the plan is
    carried out. load (a _Load) and installed (a dict that gets the
    install's result) are what the steps share when they are carried out.
    Raises StageSlotError (naming the field) when the slot cannot be
    brought to spec."""
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


class SlotPlan:
    """One slot's part of the plan: its StageSpec, its state (in_use as it
    will be), its steps, and what they share when carried out."""

    def __init__(self, spec, st, cleared=False):
        self.spec = spec
        self.st = st
        self.cleared = cleared
        self.load = _Load(spec)
        self.installed = {}
        self.steps = []

    def writes(self):
        return any(s.fn is _write_config for s in self.steps)


def _pairs(spec, state):
    """[(StageSpec, its slot's state, cleared)]: the items in order, then
    (exclusive) the slots they leave out that hold a program or its pin."""
    if not state["datapath"]:
        return [(item, state, False) for item in spec.items]
    pairs = [(item, state["slots"][item.stage], False) for item in spec.items]
    if spec.exclusive:
        claimed = set(item.stage for item in spec.items)
        for stage in SLOT_ORDER:
            st = state["slots"][stage]
            if stage not in claimed and (st["slot"] is not None or st["stage_pin"]):
                pairs.append((_cleared_spec(spec, stage), st, True))
    return pairs


def _maps_after(state, pairs):
    """{stage: ids of the maps its slot's program uses once the plan is
    carried out}."""
    after = dict((stage, set(st["slot"]["map_ids"]) if st["slot"] else set())
                 for stage, st in state["slots"].items())
    for item, st, dummy in pairs:
        after[item.stage] = set(st["want"]["map_ids"]) if item.state == "present" else set()
    return after


def slot_plans(spec, state):
    """[SlotPlan] of every slot the plan touches, in order. Each slot is
    planned against the maps the others use after the plan; a function's
    rules are written once, by the first of its items; a map is unpinned
    once, by the last slot that lets it go. Raises StageSlotError naming
    the item."""
    pairs = _pairs(spec, state)
    after = _maps_after(state, pairs) if state["datapath"] else {}
    plans = []
    for item, st, cleared in pairs:
        if state["datapath"]:
            others = set(i for stage, ids in after.items() if stage != item.stage for i in ids)
            st = dict(st, in_use=sorted(others))
        p = SlotPlan(item, st, cleared)
        try:
            p.steps = plan_slot(item, st, p.load, p.installed)
        except StageSlotError as e:
            raise StageSlotError("%s: %s" % (item.label, e))
        plans.append(p)
    written = set()
    for p in plans:
        if p.writes():
            if p.spec.function in written:
                p.steps = [s for s in p.steps if s.fn is not _write_config]
            written.add(p.spec.function)
    last = dict((s.args[1], i) for i, p in enumerate(plans) for s in p.steps if s.fn is _unpin_map)
    for i, p in enumerate(plans):
        p.steps = [s for s in p.steps if s.fn is not _unpin_map or last[s.args[1]] == i]
    return plans


def _as_item(label, step):
    """Carry out step; its own refusal names its item."""
    try:
        return step()
    except StageSlotError as e:
        raise StageSlotError("%s: %s" % (label, e))


def _flatten(plans):
    return [Step(s.text, _as_item, p.spec.label, s) for p in plans for s in p.steps]


def plan(spec, state):
    """The steps of every slot, in order (slot_plans()). Every slot is
    planned before any step is taken, so a refusal (StageSlotError) leaves
    every slot as it was."""
    return _flatten(slot_plans(spec, state))


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
    for k in sorted(config or {}):
        value = config[k]
        if isinstance(value, list) and all(isinstance(r, dict) for r in value):  # rules, limits
            lines.append("  %s:" % k + ("" if value else " []"))
            for r in value:
                lines.append("    - " + ", ".join("%s: %s" % (n, r[n]) for n in sorted(r)))
        else:
            lines.append("  %s: %s" % (k, value))
    return lines


def _report(p, check_mode, written):
    """(result, before lines, after lines) of one slot's plan. written: the
    functions whose rules this run writes (or would)."""
    spec, st, steps = p.spec, p.st, p.steps
    result = {"stage": spec.stage, "slot": abi.STAGES[spec.stage], "program": None, "prog_id": None, "tag": None,
              "config_changed": False, "config": None,
              "removed_maps": sorted(s.args[1] for s in steps if s.fn is _unpin_map)}
    if not st["datapath"]:
        text = "%s: no datapath at %s" % (spec.stage, spec.pin_dir)
        return result, [text], [text]
    cur = st["slot"]
    if spec.state == "absent":
        return result, [_describe(spec.stage, cur)] + ["map %s" % m for m in result["removed_maps"]], [
            _describe(spec.stage, None)]
    same = stages.same_program(cur, st["want"])
    if same:
        prog_id, tag = cur["prog_id"], cur["tag"]
    elif check_mode:
        prog_id, tag = None, st["want"]["tag"]
    else:
        prog_id, tag = p.installed["prog_id"], p.installed["tag"]
    result.update(program=spec.program, prog_id=prog_id, tag=tag)
    before, after = [_describe(spec.stage, cur)], [_describe(spec.stage, cur if same else st["want"])]
    c = spec.configurator
    if c is not None:
        have = None if st["config_missing"] else c.decode(st["config_raw"], spec.vpc_of)
        now = c.decode(wanted_config(spec), spec.vpc_of) if spec.function in written else have
        result.update(config_changed=p.writes(), config=now)
        before += _config_lines(have)
        after += _config_lines(now)
    return result, before, after


def _warnings(spec):
    return ["%s: config was given without function, so it was not applied: only shipped functions with a "
            "configurator (function: acl, ratelimit) have their maps filled by this module" % item.label
            for item in spec.items if item.state == "present" and item.config and not item.function]


def _block(lines):
    return lines[0] + "\n" + "".join("  %s\n" % line for line in lines[1:])


def ensure(spec, check_mode=False):
    """Bring the slots to spec. Returns {changed, actions, diff: {before,
    after}, warnings} and, in the single form, the slot's stage, slot,
    program, prog_id, tag, config_changed, config and removed_maps; in the
    list form, stages ({stage: those fields and the slot's name, state,
    changed and actions}, for every item and every slot exclusive emptied)
    and cleared (the slots exclusive emptied). With no datapath loaded,
    absent has nothing to do."""
    try:
        state = read(spec)
    except (libbpf.BpfError, stages.StageError, OSError) as e:
        raise StageSlotError("%s: reading the slot%s: %s" % (spec.label, "" if spec.single else "s", e))
    plans = slot_plans(spec, state)
    try:
        actions = carry_out(_flatten(plans), spec.label, check_mode=check_mode, error=StageSlotError)
    finally:
        for p in plans:
            p.load.close()
    written = set(p.spec.function for p in plans if p.writes())
    reports = [_report(p, check_mode, written) for p in plans]
    changed = any(p.steps for p in plans)
    if spec.single:
        result, before, after = reports[0]
        return dict(result, changed=changed, actions=actions, warnings=_warnings(spec),
                    diff={"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"})
    out = {"changed": changed, "actions": actions, "warnings": _warnings(spec),
           "stages": dict((p.spec.stage, dict(r, name=p.spec.name, state=p.spec.state, changed=bool(p.steps),
                                              actions=[s.text for s in p.steps])) for p, (r, dummy, dummy) in
                          zip(plans, reports)),
           "cleared": [p.spec.stage for p in plans if p.cleared]}
    if not state["datapath"]:
        text = "no datapath at %s\n" % spec.pin_dir
        return dict(out, diff={"before": text, "after": text})
    planned = dict((p.spec.stage, (before, after)) for p, (dummy, before, after) in zip(plans, reports))
    diff = {"before": "", "after": ""}
    for stage in SLOT_ORDER:
        unchanged = [_describe(stage, state["slots"][stage]["slot"])]
        before, after = planned.get(stage, (unchanged, unchanged))
        diff["before"] += _block(before)
        diff["after"] += _block(after)
    return dict(out, diff=diff)
