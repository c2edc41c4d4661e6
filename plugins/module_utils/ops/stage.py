# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stages of a datapath: which chain of function programs runs in each,
and the functions' configuration.

The module takes one stage (stage, object, ...: the single form) or a host's
whole list of functions (functions: the present items of one stage make its
chain, in their order), and with `exclusive` also empties the stages the
list leaves out:

    res = ensure(Spec.from_params(dict(functions=[dict(stage="on_xdp_redirect",
                 object=".../acl.bpf.o", function="acl", config={...})], vpcs={...},
                 exclusive=True, pin_dir="/sys/fs/bpf/mizar", state="present")), check_mode=False)

The single form is a list of one item. The backend contract of
ops/runner.py: read() reads every stage's chain once (its programs, the
maps private to them, their pins) and, for each item to install, what the
object's program would be (loaded against the pinned maps and dropped:
dryload) and the function's rules in use. plan() makes the steps of every
stage from that alone (plan_chain() is one stage's), so every refusal comes
before anything is done; they are carried out in the order the items name
the stages, the stages exclusive empties last.

present: each function's configuration is written through its
configurator (the object is loaded first when its private maps do not
exist yet: the load creates and pins them), and only then is the chain put
in the stage, swapped whole (bpf/stages.py, set_chain: the other bank of
the stage table is filled, then made live). Packets therefore never meet a
program before its rules, nor half of a chain. The same chain (same
programs on the same maps, in the same order) already in the stage is left
alone, so re-runs are no-ops. A configuration is changed only when the
rules differ.

absent: the stage is emptied (the pipeline falls through to its own
verdict) and its pins removed. The maps private to the programs that were
there (a function's rules and statistics) are unpinned too, unless a
program in another stage still uses them once the plan is carried out.
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
    exclusive: empty the stages the list does not claim. The present items
    of one stage make its chain, in their order (a program once in it, at
    most abi.CHAIN_MAX of them), and a function's rules are one set for
    every stage it runs at: the items must agree on it."""

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
        chains, configured = {}, {}
        for item in self.items:
            if item.state != "present":
                continue
            chain = chains.setdefault(item.stage, [])
            for other in chain:
                if (other.object, other.program) == (item.object, item.program):
                    raise StageSlotError("%s: program: %s from %s is in the chain of stage %s already, as %s; a "
                                         "chain runs a program once" % (item.label, item.program, item.object,
                                                                        item.stage, other.label))
            chain.append(item)
            if len(chain) > abi.CHAIN_MAX:
                raise StageSlotError("%s: stage: %s would run %d functions; a stage's chain holds %d at most" % (
                    item.label, item.stage, len(chain), abi.CHAIN_MAX))
            if item.configurator is None:
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


def read_chains(pin_dir):
    """{stage: [{pos, slot, prog_id, name, tag, pinned, map_ids}, ...]}:
    every stage's chain, in order ([]: empty)."""
    out = {}
    for stage, cur in stages.Stages(pin_dir).list().items():
        out[stage] = [dict(e, map_ids=(stages._prog_summary(e["prog_id"]) or {"map_ids": []})["map_ids"])
                      for e in (cur["chain"] if cur else [])]
    return out


def chain_of(st):
    """The programs a stage's state holds, in order (a state recorded before
    chains has its one program as slot)."""
    if "chain" in st:
        return st["chain"]
    return [st["slot"]] if st.get("slot") else []


def _read_item(spec, st, pinned):
    """What spec needs read, as a dict: for present the object's program as
    a load would make it and the function's rules in use; for absent
    nothing, but the named function's maps (of pinned: {name: id}) join the
    private maps of its stage's state st, even with the stage empty."""
    c = spec.configurator
    if spec.state == "absent":
        if c is not None:
            st["private"].update((m, pinned[m]) for m in c.maps if m in pinned)
        return {}
    try:
        want = dryload.program_summary(spec.object, spec.program, spec.maps_dir)
    except libbpf.BpfError as e:
        raise StageSlotError("object: loading %s from %s: %s" % (spec.program, spec.object, e))
    missing = [m for m in c.maps if not os.path.exists(os.path.join(spec.maps_dir, m))] if c else []
    return {"want": want, "goes_on": goes_on(want, pinned.get(abi.STAGES_MAP)), "config_missing": missing,
            "config_raw": c.current(spec.maps_dir) if c is not None and not missing else None}


def goes_on(summary, stages_map_id):
    """Whether the program of summary (a dryload summary) can let a packet go
    on along its chain: mzr_stage_next() tail-calls through the stage table,
    so a program that calls it uses that map (stages_map_id, the pinned
    mzr_stages) and one that never does, does not. The kernel lists the maps
    a program's instructions use, not the ones its object merely declares
    (every function includes mzr_stages.h), so this holds for any source."""
    return stages_map_id is not None and stages_map_id in summary["map_ids"]


def read(spec):
    """Every stage's state, as plain data: {datapath (its stage table is
    pinned), slots: {stage: the stage's state}, items: [each item's]}. A
    stage's state: datapath, chain (read_chains()), slot (the chain's first
    program, or None), stale (slots of the stage no packet reaches that hold
    a program: what an interrupted swap leaves), private ({name: id}: the
    maps private to the chain's programs), in_use (ids of the maps the other stages' programs use now),
    stage_pin (a program pin of the stage exists). An item's state, for a
    present item: want (the object's program as a load would make it:
    name, tag, map_ids), goes_on (it can hand a packet to the next function
    of its chain: goes_on()), config_missing (the function's maps not pinned
    yet) and config_raw (the bytes of its rules in use, None without); for
    an absent item naming a function, its maps join its stage's private."""
    if not os.path.exists(os.path.join(spec.maps_dir, abi.STAGES_MAP)):
        return {"datapath": False}
    chains = read_chains(spec.pin_dir)
    stale = stages.Stages(spec.pin_dir).stale()
    pinned = _pinned_maps(spec.maps_dir)
    shared = stages.shared_maps(spec.maps_dir)
    layout = stages.Layout(spec.pin_dir)
    out = {}
    for stage, chain in chains.items():
        ids = set(i for p in chain for i in p["map_ids"])
        others = set(i for s, c in chains.items() if s != stage for p in c for i in p["map_ids"])
        out[stage] = {"datapath": True, "chain": chain, "slot": chain[0] if chain else None, "in_use": sorted(others),
                      "stale": stale.get(stage, []),
                      "private": dict((n, i) for n, i in pinned.items() if i in ids and n not in shared),
                      "stage_pin": any(os.path.exists(layout.stage(stage, pos)) for pos in range(abi.CHAIN_MAX))}
    items = []
    for item in spec.items:
        try:
            items.append(_read_item(item, out[item.stage], pinned))
        except StageSlotError as e:
            raise StageSlotError("%s: %s" % (item.label, e))
    return {"datapath": True, "slots": out, "items": items}


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


def _set_chain(pin_dir, stage, loads, result):
    """Swap the stage's chain for the programs of loads (set_chain)."""
    try:
        result.update(stages.Stages(pin_dir).set_chain(stage, [load.program() for load in loads]))
    except stages.StageError as e:
        raise StageSlotError("stage: %s" % e)
    return result["changed"]


def _repin(pin_dir, stage, prog_ids):
    """Pin the chain's programs again where their pins are lost."""
    st = stages.Stages(pin_dir)
    for pos, pid in enumerate(prog_ids):
        if st._pinned_id(stage, pos) != pid:
            fd = libbpf.prog_fd_by_id(pid)
            try:
                stages.pin_replace(fd, st.layout.stage(stage, pos))
            finally:
                os.close(fd)


def _clear_stale(pin_dir, stage):
    try:
        return stages.Stages(pin_dir).clear_stale(stage) > 0
    except stages.StageError as e:
        raise StageSlotError("stage: %s" % e)


def _stale_step(pin_dir, stage, st):
    """The step that empties the slots of stage no packet reaches, if any."""
    n = len(st.get("stale") or ())
    if not n:
        return []
    text = "empty %d unreachable slot%s of stage %s (left by an interrupted swap)" % (n, "" if n == 1 else "s", stage)
    return [Step(text, _clear_stale, pin_dir, stage)]


def _unpin_map(pin_dir, name):
    return libbpf.unpin(stages.Layout(pin_dir).map(name))


def wanted_config(spec):
    """The bytes of spec's rules (None without a configurator)."""
    if spec.configurator is None:
        return None
    try:
        return spec.configurator.encode(spec.config, spec.vpcs)
    except fnconfig.FunctionConfigError as e:
        raise StageSlotError("config: %s" % e)


def _tagged(chain):
    return " -> ".join("%s (tag %s)" % (p["name"], p["tag"]) for p in chain)


def _change_text(stage, cur, present):
    """The text of the step that swaps a stage's chain cur for present."""
    where = "stage %s (slot %d)" % (stage, abi.STAGES[stage])
    if len(cur) <= 1 and len(present) == 1:
        verb = "replace %s with" % _tagged(cur) if cur else "install"
        return "%s %s from %s in %s" % (verb, present[0].program, present[0].object, where)
    new = " -> ".join("%s from %s" % (s.program, s.object) for s in present)
    return "%s the chain %s in %s" % ("replace %s with" % _tagged(cur) if cur else "install", new, where)


def plan_chain(stage, specs, st, item_states, loads=None, installed=None, labelled=False):
    """The steps from one stage's state st to specs (its StageSpecs, in
    order: the present ones make the chain; none present empties it);
    item_states are the specs' own states (read()'s items). st's in_use
    holds the ids of the maps the other stages use once the plan is carried
    out. loads (a _Load per present spec) and installed (a dict that gets
    set_chain's result) are what the steps share when they are carried
    out. Raises StageSlotError naming the field, and with labelled the
    item, when the stage cannot be brought to specs: among others when a
    function that never lets a packet go on (goes_on) is not the chain's
    last, since the functions after it would never run."""
    present = [(s, ist) for s, ist in zip(specs, item_states) if s.state == "present"]

    def refuse(spec, e):
        return StageSlotError("%s: %s" % (spec.label, e)) if labelled else e

    if not st["datapath"]:
        if not present:
            return []  # the teardown removed every stage with the datapath
        raise refuse(present[0][0], StageSlotError(
            "pin_dir: no datapath is loaded at %s (run mizar.transit.transit first)" % present[0][0].pin_dir))
    for (spec, ist), (after, dummy) in zip(present, present[1:]):
        if not ist["goes_on"]:
            raise refuse(spec, StageSlotError(
                "program: %s from %s never lets a packet go on (it does not call mzr_stage_next(): it does not use "
                "the stage table %s), so %s after it in the chain of stage %s would never see a packet; put it last "
                "in its stage" % (spec.program, spec.object, abi.STAGES_MAP, after.label, stage)))
    pin_dir = specs[0].pin_dir
    loads = loads if loads is not None else [_Load(s) for s, dummy in present]
    installed = {} if installed is None else installed
    cur = chain_of(st)
    steps = []
    if not present:
        if cur:
            text = "remove %s from stage %s (slot %d)" % (_tagged(cur), stage, abi.STAGES[stage])
            steps.append(Step(text if len(cur) == 1 else text.replace("remove ", "remove the chain ", 1),
                              _set_chain, pin_dir, stage, [], installed))
        elif st["stage_pin"]:
            steps.append(Step("unpin the stale program pin of stage %s" % stage, _set_chain, pin_dir, stage, [],
                              installed))
        else:
            steps += _stale_step(pin_dir, stage, st)
        return steps + [Step("unpin map %s (no stage uses it any more)" % m, _unpin_map, pin_dir, m)
                        for m in _removable(st, st["in_use"])]
    for (spec, ist), load in zip(present, loads):
        try:
            want = wanted_config(spec)
        except StageSlotError as e:
            raise refuse(spec, e)
        if spec.configurator is not None and (ist["config_missing"] or ist["config_raw"] != want):
            steps.append(Step("write the %s rules of %s (%s)" % (
                spec.function, spec.stage, "first configuration" if ist["config_missing"] else "changed"),
                _write_config, spec, load))
    wants = [ist["want"] for dummy, ist in present]
    if not (len(cur) == len(wants) and all(stages.same_program(a, b) for a, b in zip(cur, wants))):
        steps.append(Step(_change_text(stage, cur, [s for s, dummy in present]), _set_chain, pin_dir, stage, loads,
                          installed))
        if cur:  # maps private to the programs replaced, which nothing uses now
            in_use = set(st["in_use"]) | set(i for w in wants for i in w["map_ids"])
            steps += [Step("unpin map %s of the replaced program (no stage uses it any more)" % m, _unpin_map,
                           pin_dir, m) for m in _removable(st, in_use)]
    else:
        if not all(p["pinned"] for p in cur):
            text = "pin the program%s of stage %s again (%s pin was lost)" % (
                ("", stage, "its") if len(cur) == 1 else ("s", stage, "a"))
            steps.append(Step(text, _repin, pin_dir, stage, [p["prog_id"] for p in cur]))
        steps += _stale_step(pin_dir, stage, st)
    return steps


def plan_slot(spec, st, load=None, installed=None):
    """plan_chain() of a stage that spec alone claims; st holds spec's own
    state (want, config_missing, config_raw) too."""
    return plan_chain(spec.stage, [spec], st, [st], loads=None if load is None else [load], installed=installed)


def _removable(st, in_use):
    return sorted(n for n, i in st["private"].items() if i not in set(in_use))


class SlotPlan:
    """One stage's part of the plan: its StageSpecs (spec: the first), its
    state (in_use as it will be), its items' states, its steps, and what
    they share when carried out."""

    def __init__(self, specs, st, item_states, cleared=False):
        self.specs = specs
        self.spec = specs[0]
        self.stage = self.spec.stage
        self.st = st
        self.item_states = item_states
        self.cleared = cleared
        self.present = [s for s in specs if s.state == "present"]
        self.loads = [_Load(s) for s in self.present]
        self.installed = {}
        self.steps = []

    def writes(self, spec=None):
        return any(s.fn is _write_config and (spec is None or s.args[0] is spec) for s in self.steps)

    def close(self):
        for load in self.loads:
            load.close()


def _item_state(state, i, item):
    """An item's own state: read()'s, or, in a state recorded before chains,
    its stage's."""
    return state["items"][i] if "items" in state else state["slots"][item.stage]


def _groups(spec, state):
    """[(StageSpecs of one stage, its state, their states, cleared)]: the
    stages in the order the items first name them, then (exclusive) the
    stages they leave out that hold a program or its pin."""
    order, by_stage = [], {}
    for i, item in enumerate(spec.items):
        if item.stage not in by_stage:
            order.append(item.stage)
            by_stage[item.stage] = []
        by_stage[item.stage].append((item, _item_state(state, i, item) if state["datapath"] else {}))
    groups = [([it for it, dummy in by_stage[s]], state["slots"][s] if state["datapath"] else state,
               [ist for dummy, ist in by_stage[s]], False) for s in order]
    if spec.exclusive and state["datapath"]:
        for stage in SLOT_ORDER:
            st = state["slots"][stage]
            if stage not in by_stage and (chain_of(st) or st["stage_pin"]):
                groups.append(([_cleared_spec(spec, stage)], st, [{}], True))
    return groups


def _maps_after(state, groups):
    """{stage: ids of the maps its programs use once the plan is carried
    out}."""
    after = dict((stage, set(i for p in chain_of(st) for i in p["map_ids"])) for stage, st in state["slots"].items())
    for specs, dummy, item_states, dummy in groups:
        after[specs[0].stage] = set(i for s, ist in zip(specs, item_states) if s.state == "present"
                                    for i in ist["want"]["map_ids"])
    return after


def slot_plans(spec, state):
    """[SlotPlan] of every stage the plan touches, in order. Each stage is
    planned against the maps the others use after the plan; a function's
    rules are written once, by the first of its items; a map is unpinned
    once, by the last stage that lets it go. Raises StageSlotError naming
    the item."""
    groups = _groups(spec, state)
    after = _maps_after(state, groups) if state["datapath"] else {}
    plans = []
    for specs, st, item_states, cleared in groups:
        stage = specs[0].stage
        if state["datapath"]:
            others = set(i for s, ids in after.items() if s != stage for i in ids)
            st = dict(st, in_use=sorted(others))
        p = SlotPlan(specs, st, item_states, cleared)
        p.steps = plan_chain(stage, specs, st, item_states, p.loads, p.installed, labelled=True)
        plans.append(p)
    written = set()
    for p in plans:
        keep = []
        for s in p.steps:
            if s.fn is _write_config:
                if s.args[0].function in written:
                    continue
                written.add(s.args[0].function)
            keep.append(s)
        p.steps = keep
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


def _step_label(p, step):
    """The label of the item a step is for: a config write's own item, else
    the stage's first."""
    return step.args[0].label if step.fn is _write_config else p.spec.label


def _flatten(plans):
    return [Step(s.text, _as_item, _step_label(p, s), s) for p in plans for s in p.steps]


def plan(spec, state):
    """The steps of every stage, in order (slot_plans()). Every stage is
    planned before any step is taken, so a refusal (StageSlotError) leaves
    every stage as it was."""
    return _flatten(slot_plans(spec, state))


# ---------------------------------------------------------------- reporting


def _describe(stage, chain):
    """One line for a stage: its chain in order; names as the kernel keeps
    them (15 characters)."""
    if not chain:
        return "%s: empty" % stage
    return "%s: %s" % (stage, " -> ".join("%s (tag %s)" % ((p.get("name") or "?")[:15], p.get("tag"))
                                          for p in chain))


def _config_lines(config, title="config"):
    """A function's config, one line per rule or setting."""
    if config is None:
        return ["%s: none yet (the function's maps do not exist)" % title]
    lines = ["%s:" % title]
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
    """(result, before lines, after lines) of one stage's plan. written: the
    functions whose rules this run writes (or would). The result holds its
    first function's fields at the top and every function's in chain."""
    spec, st, steps = p.spec, p.st, p.steps
    result = {"stage": spec.stage, "slot": abi.STAGES[spec.stage], "program": None, "prog_id": None, "tag": None,
              "config_changed": False, "config": None, "chain": [],
              "removed_maps": sorted(s.args[1] for s in steps if s.fn is _unpin_map)}
    if not st["datapath"]:
        text = "%s: no datapath at %s" % (spec.stage, spec.pin_dir)
        return result, [text], [text]
    cur = chain_of(st)
    if not p.present:
        return result, [_describe(spec.stage, cur)] + ["map %s" % m for m in result["removed_maps"]], [
            _describe(spec.stage, [])]
    states = [ist for s, ist in zip(p.specs, p.item_states) if s.state == "present"]
    wants = [ist["want"] for ist in states]
    same = len(cur) == len(wants) and all(stages.same_program(a, b) for a, b in zip(cur, wants))
    before, after = [_describe(spec.stage, cur)], [_describe(spec.stage, cur if same else wants)]
    configured = [s for s in p.present if s.configurator is not None]
    for pos, (item, ist) in enumerate(zip(p.present, states)):
        if same:
            prog_id, tag = cur[pos]["prog_id"], cur[pos]["tag"]
        elif check_mode:
            prog_id, tag = None, ist["want"]["tag"]
        else:
            prog_id, tag = p.installed["chain"][pos]["prog_id"], p.installed["chain"][pos]["tag"]
        entry = {"name": item.name, "program": item.program, "prog_id": prog_id, "tag": tag,
                 "config_changed": False, "config": None}
        c = item.configurator
        if c is not None:
            have = None if ist["config_missing"] else c.decode(ist["config_raw"], item.vpc_of)
            now = c.decode(wanted_config(item), item.vpc_of) if item.function in written else have
            entry.update(config_changed=item.function in written, config=now)
            title = "config" if len(configured) == 1 else "config of %s" % (item.name or item.function)
            before += _config_lines(have, title)
            after += _config_lines(now, title)
        result["chain"].append(entry)
    first = result["chain"][0]
    result.update((k, first[k]) for k in ("program", "prog_id", "tag", "config_changed", "config"))
    result["config_changed"] = any(e["config_changed"] for e in result["chain"])
    return result, before, after


def _warnings(spec):
    return ["%s: config was given without function, so it was not applied: only shipped functions with a "
            "configurator (function: acl, ratelimit) have their maps filled by this module" % item.label
            for item in spec.items if item.state == "present" and item.config and not item.function]


def _block(lines):
    return lines[0] + "\n" + "".join("  %s\n" % line for line in lines[1:])


def ensure(spec, check_mode=False):
    """Bring the stages to spec. Returns {changed, actions, diff: {before,
    after}, warnings} and, in the single form, the stage's stage, slot,
    program, prog_id, tag, config_changed, config, chain and removed_maps;
    in the list form, stages ({stage: those fields and the stage's first
    item's name, state, changed and actions}, for every stage the items
    name and every stage exclusive emptied) and cleared (the stages
    exclusive emptied). With no datapath loaded, absent has nothing to do."""
    try:
        state = read(spec)
    except (libbpf.BpfError, stages.StageError, OSError) as e:
        raise StageSlotError("%s: reading the slot%s: %s" % (spec.label, "" if spec.single else "s", e))
    plans = slot_plans(spec, state)
    try:
        actions = carry_out(_flatten(plans), spec.label, check_mode=check_mode, error=StageSlotError)
    finally:
        for p in plans:
            p.close()
    written = set(s.args[0].function for p in plans for s in p.steps if s.fn is _write_config)
    reports = [_report(p, check_mode, written) for p in plans]
    changed = any(p.steps for p in plans)
    if spec.single:
        result, before, after = reports[0]
        return dict(result, changed=changed, actions=actions, warnings=_warnings(spec),
                    diff={"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"})
    out = {"changed": changed, "actions": actions, "warnings": _warnings(spec),
           "stages": dict((p.stage, dict(r, name=p.spec.name, state="present" if p.present else "absent",
                                         changed=bool(p.steps), actions=[s.text for s in p.steps]))
                          for p, (r, dummy, dummy) in zip(plans, reports)),
           "cleared": [p.stage for p in plans if p.cleared]}
    if not state["datapath"]:
        text = "no datapath at %s\n" % spec.pin_dir
        return dict(out, diff={"before": text, "after": text})
    planned = dict((p.stage, (before, after)) for p, (dummy, before, after) in zip(plans, reports))
    diff = {"before": "", "after": ""}
    for stage in SLOT_ORDER:
        unchanged = [_describe(stage, chain_of(state["slots"][stage]))]
        before, after = planned.get(stage, (unchanged, unchanged))
        diff["before"] += _block(before)
        diff["after"] += _block(after)
    return dict(out, diff=diff)
