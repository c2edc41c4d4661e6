# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transit program on a host's substrate NIC, and the datapath behind it.

    res = ensure(TransitSpec(interface="eth0", mode="native", pin_dir=...,
                             obj_dir=...), check_mode=False)

The backend contract of ops/runner.py. read() sees the objects (the
archive's, against the files of obj_dir), the kernel, the bpffs, the pinned
datapath and the NIC, and what the objects' programs would be (loaded
against the pinned maps and dropped: dryload); plan() makes the steps from
that alone, in order:

1. obj_dir made to hold exactly the archive's objects (with `archive`);
2. /sys/fs/bpf must be a bpffs (mounted when it is not and pin_dir lies
   below it; any other pin_dir must already be on one);
3. Loader.load(): maps created, or reused with every entry; an upgraded
   object's programs replace the old ones through every link, atomically,
   the NIC is never left without a program; a map layout change migrates
   the entries (stage programs need their objects then: `stages`). The
   steps of one load (a program each) share one Loader.load();
4. Loader.attach('transit', interface, mode): attached when nothing is,
   unchanged when it already runs. Another mode than the attached one is
   refused unless switch_mode (a detach and an attach);
5. transit attachments of this datapath on another interface (the NIC was
   renamed in the inventory) are detached.

absent: every link of the pin directory detached (transit, agents, pass
programs of endpoints), every pin removed, the directory too; with obj_dir,
the objects; and the verifier's answers kept for the boot (bpf/dryload.py).

With `manifest` and no `archive` (the task's action asks first), a host
whose obj_dir holds other objects than the manifest's answers
{archive_needed: true} and does nothing else; the action then carries the
archive over and asks again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import (abi, dryload, kernel, libbpf, loader,
                                                                        objects, pinned, stages, xdp)
from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import BPF_FS_MAGIC, fs_type
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import libc as _libc
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import BPFFS_ROOT, XDP_MODES
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2
from ansible_collections.mizar.transit.plugins.module_utils.ops.stage import StageSlotError, resolve_program
from ansible_collections.mizar.transit.plugins.module_utils.ops.steps import DONE_ELSEWHERE, Step, carry_out

BPFFS = BPFFS_ROOT

NEEDS = (PYROUTE2, LIBBPF)
MODULE = args.module_args(
    dict(
        interface=dict(type="str", required=True),
        mode=args.xdp_mode(),
        switch_mode=dict(type="bool", default=False),
        pin_dir=args.pin_dir(),
        obj_dir=dict(type="path"),
        archive=dict(type="path"),
        manifest=dict(type="dict"),
        transfer=dict(type="str", choices=["needed", "always"], default="needed"),
        stages=dict(type="list", elements="dict", default=[], options=dict(
            stage=args.stage(),
            object=dict(type="path", required=True),
            program=dict(type="str"),
        )),
        state=args.state(),
    ),
    required_if=[("state", "present", ("obj_dir",))],
)


class TransitError(BackendError):
    """The transit program cannot be brought to the wanted state; says why.
    details: more for the task's result (the verifier's whole log)."""


ERRORS = (TransitError,)


def context(params):
    return "transit on %s (pin_dir %s)" % (params["interface"], params["pin_dir"])


def _load_error(what, e):
    """A TransitError for a failed load; a verifier rejection keeps its
    one-line reason in the message and its whole log in the details."""
    if isinstance(e, libbpf.VerifierRejection):
        return TransitError("%s: %s" % (what, e), {"verifier_log": e.log.splitlines()})
    return TransitError("%s: %s" % (what, e))


def _existing_ancestor(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def bpffs_to_mount(pin_dir):
    """None when pin_dir is (or will be made) on a bpffs; BPFFS when
    /sys/fs/bpf must be mounted first. Raises TransitError for a pin_dir
    outside /sys/fs/bpf that is not on a bpffs."""
    if fs_type(_existing_ancestor(pin_dir)) == BPF_FS_MAGIC:
        return None
    norm = os.path.normpath(os.path.abspath(pin_dir))
    if norm == BPFFS or norm.startswith(BPFFS + "/"):
        if os.path.isdir(BPFFS) and fs_type(BPFFS) != BPF_FS_MAGIC:
            return BPFFS
    raise TransitError("pin_dir: %s is not on a bpffs; mount one there first (mount -t bpf bpf <dir>)" % pin_dir)


def mount_bpffs(path=BPFFS):
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.mount(b"bpf", path.encode(), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        raise OSError(err, "mounting a bpffs on %s: %s" % (path, os.strerror(err)))


class TransitSpec:
    """What the transit side of a host should be. Checked on construction;
    the objects themselves are checked by read() (they may come with the
    archive)."""

    def __init__(self, interface, pin_dir, obj_dir=None, mode="native", switch_mode=False, state="present",
                 stage_sources=None, archive=None, manifest=None):
        if mode not in XDP_MODES:
            raise TransitError("mode: %r is not an XDP mode; one of %s" % (mode, ", ".join(XDP_MODES)))
        self.interface = interface
        self.headers = ("%s (before)" % interface, "%s (after)" % interface)
        self.pin_dir = os.path.normpath(pin_dir)
        self.obj_dir = obj_dir
        self.mode = mode
        self.switch_mode = switch_mode
        self.state = state
        self.archive = archive if state == "present" else None
        self.manifest = manifest if state == "present" else None
        if state == "present" and not obj_dir:
            raise TransitError("obj_dir is required with state=present: the directory with transit.bpf.o, "
                               "agent.bpf.o and pass.bpf.o (mizar.transit.bpf_build)")
        self.stages = list(stage_sources or ())
        length = {}
        for i, s in enumerate(self.stages):
            length[s["stage"]] = length.get(s["stage"], 0) + 1
            if length[s["stage"]] > abi.CHAIN_MAX:
                raise TransitError("stages[%d].stage: %s would run more than %d functions; a stage's chain holds "
                                   "%d at most" % (i, s["stage"], abi.CHAIN_MAX, abi.CHAIN_MAX))

    def stage_sources(self, load_dir):
        """{stage: [(object, program), ...]} of the stage objects, each
        stage's chain in the order of stages, each program found in its
        object (resolve_program); an object under obj_dir is looked for in
        load_dir, where the archive's objects are before they are
        installed."""
        out = {}
        for i, s in enumerate(self.stages):
            path = s["object"]
            rel = os.path.relpath(path, self.obj_dir)
            seen = path if load_dir == self.obj_dir or rel.startswith("..") else os.path.join(load_dir, rel)
            try:
                out.setdefault(s["stage"], []).append((path, resolve_program(seen, s["stage"], s.get("program"))))
            except StageSlotError as e:
                raise TransitError("stages[%d].%s" % (i, e))
        return out

    @classmethod
    def from_params(cls, params):
        return cls(params["interface"], params["pin_dir"], obj_dir=params["obj_dir"], mode=params["mode"],
                   switch_mode=params["switch_mode"], state=params["state"], stage_sources=params["stages"],
                   archive=params["archive"], manifest=params["manifest"])


Spec = TransitSpec


# ---------------------------------------------------------------- reading


def _read_objects(spec, st):
    """The archive's objects against obj_dir's files. Sets st's objects
    ({want, have: {path: sha256}, data: {path: bytes} or None}), and
    archive_needed when a manifest differs from obj_dir and no archive
    came; returns the directory to load from (a staged copy of the
    archive's objects while obj_dir does not hold them yet)."""
    have = objects.digests(spec.obj_dir)
    if spec.archive:
        try:
            data = objects.read_archive(spec.archive)
        except objects.ObjectsError as e:
            raise TransitError("the objects archive for %s: %s" % (spec.obj_dir, e))
        want = objects.digests_of(data)
    elif spec.manifest is not None:
        data, want = None, dict(spec.manifest)
    else:
        return spec.obj_dir
    st["objects"] = {"want": want, "have": have, "data": data}
    if want == have:
        return spec.obj_dir
    if data is None:
        st["archive_needed"] = True
        return None
    st["staging"] = objects.staged(data)
    return st["staging"]


def _read_datapath(spec, dp):
    """{bpffs, loaded, maps, programs: {role: summary}, nic: xdp.query()
    of the interface or None when it does not exist, ours: the program on
    the NIC is this datapath's, attachments, pin_dir: it exists}."""
    lay = dp.layout
    st = {"bpffs": bpffs_to_mount(spec.pin_dir) is None, "loaded": False, "maps": 0, "programs": {},
          "nic": None, "ours": False, "attachments": [], "pin_dir": os.path.isdir(spec.pin_dir)}
    if st["bpffs"]:
        st["loaded"] = os.path.isdir(lay.maps)
        st["maps"] = len(os.listdir(lay.maps)) if st["loaded"] else 0
        st["programs"] = pinned.programs(lay)
        st["attachments"] = dp.attachments() if os.path.isdir(lay.links) else []
    if netlink.link(spec.interface) is not None:
        q = xdp.query(spec.interface, link_pin=lay.link(loader.link_name(spec.interface)))
        st["nic"] = q
        ours = set(p["prog_id"] for p in st["programs"].values() if p)
        st["ours"] = q["attached"] and (q["prog_id"] in ours or q["via"] == "link" and bool(q["link_id"]) and any(
            a["link_id"] == q["link_id"] for a in st["attachments"]))
    return st


def _dry(spec, load_dir, role, maps_dir):
    obj, prog = loader.ROLES[role]
    path = os.path.join(load_dir, obj)
    try:
        return dryload.program_summary(path, prog, maps_dir)
    except libbpf.BpfError as e:
        raise _load_error("obj_dir: loading %s from %s" % (prog, path), e)


def read(spec):
    """The current state, as plain data. present: objects (with archive or
    manifest), staging (a directory to remove afterwards, or None), the
    datapath (_read_datapath()), mount (what to mount first, or None),
    layout_diff ({map: [changes]}), stages_installed, new_maps (declared by
    the objects, not pinned yet), leftovers (of an interrupted migration),
    dry ({role: the program a load would make}) and nic_prog (the NIC's
    program's summary); or archive_needed. absent: the datapath and
    obj_dir (it exists)."""
    st = {"objects": None, "staging": None, "archive_needed": False}
    if spec.state == "absent":
        st.update(_read_datapath(spec, loader.Loader(spec.pin_dir, None)))
        st["obj_dir"] = bool(spec.obj_dir) and objects.remove(spec.obj_dir, check_mode=True)
        st["dryload_cache"] = objects.remove(dryload.CACHE_DIR, check_mode=True)
        return st
    load_dir = _read_objects(spec, st)
    if st["archive_needed"]:
        return st
    try:
        missing = [f for f, _p in loader.ROLES.values() if not os.path.isfile(os.path.join(load_dir, f))]
        if missing:
            raise TransitError("obj_dir: %s lacks %s (build the objects with mizar.transit.bpf_build and copy "
                               "them there)" % (spec.obj_dir, ", ".join(sorted(missing))))
        try:
            kernel.require_supported()
        except kernel.KernelError as e:
            raise TransitError(str(e))
        st["stage_sources"] = spec.stage_sources(load_dir)
        st["mount"] = bpffs_to_mount(spec.pin_dir)
        dp = loader.Loader(spec.pin_dir, load_dir)
        st.update(_read_datapath(spec, dp))
        lay = dp.layout
        st["leftovers"] = [d for d in (lay.maps_new, lay.maps_old) if os.path.isdir(d)]
        st["layout_diff"], st["stages_installed"], st["new_maps"] = {}, [], []
        if st["loaded"]:
            st["layout_diff"] = dp.layout_diff(unpinned=st["new_maps"])
            if os.path.exists(lay.map(abi.STAGES_MAP)):
                st["stages_installed"] = sorted(s for s, v in stages.Stages(spec.pin_dir).list().items() if v)
        reuse = lay.maps if st["loaded"] and not st["layout_diff"] else None
        st["dry"] = dict((role, _dry(spec, load_dir, role, reuse)) for role in sorted(loader.ROLES))
        nic = st["nic"]
        st["nic_prog"] = stages._prog_summary(nic["prog_id"]) if nic and nic["attached"] else None
    except Exception:
        if st["staging"]:
            objects.discard(st["staging"])
        raise
    return st


# ---------------------------------------------------------------- planning


class _Load:
    """The one Loader.load() that the load steps of a plan share: the first
    of them to run does it. stage_sources: read()'s, for a migration."""

    def __init__(self, spec, stage_sources):
        self.spec = spec
        self.stage_sources = stage_sources
        self.result = None

    def __call__(self):
        if self.result is None:
            dp = loader.Loader(self.spec.pin_dir, self.spec.obj_dir)
            try:
                self.result = dp.load(stage_sources=self.stage_sources)
            except (loader.LoaderError, libbpf.BpfError, stages.StageError, OSError) as e:
                raise _load_error("loading the datapath from %s into %s" % (self.spec.obj_dir, self.spec.pin_dir), e)
        return self.result


def _check_nic(spec, st):
    """Refusals that hold in check mode too: a missing NIC, someone else's
    program on it, a mode change without switch_mode. Returns "switch" when
    the mode is to be switched."""
    nic = st["nic"]
    if nic is None:
        raise TransitError("interface: %s does not exist on this host" % spec.interface)
    if not nic["attached"]:
        return None
    if not st["ours"]:
        raise TransitError("interface: %s runs XDP program %s (id %d, %s) that is not this datapath's; "
                           "remove it first, the transit program never replaces a foreign one" % (
                               spec.interface, nic["prog_name"], nic["prog_id"], nic["via"]))
    if nic["mode"] != spec.mode:
        if not spec.switch_mode:
            raise TransitError(
                "mode: %s runs the transit program in %s mode, %s was asked; switching needs a detach and an "
                "attach, so the NIC would run no XDP program for a moment: set switch_mode: true to do it" % (
                    spec.interface, nic["mode"], spec.mode))
        return "switch"
    return None


def _plan_objects(spec, st):
    found = st["objects"]
    if found is None or found["data"] is None:
        return []
    d = objects.difference(found["want"], found["have"])
    steps = []
    write = d["added"] + d["updated"]
    if write:
        steps.append(Step("write the objects %s to %s" % (", ".join(write), spec.obj_dir), objects.write,
                          spec.obj_dir, dict((n, found["data"][n]) for n in write)))
    if d["removed"]:
        text = "remove the objects %s from %s (not in the archive)" % (", ".join(d["removed"]), spec.obj_dir)
        steps.append(Step(text, objects.delete, spec.obj_dir, d["removed"]))
    return steps


def loaded_programs(spec, st):
    """({role: the program pinned after the load}, migrated, upgraded)."""
    migrated = bool(st["layout_diff"])
    programs = dict((role, old if not migrated and stages.same_program(old, st["dry"][role]) else st["dry"][role])
                    for role, old in ((r, st["programs"].get(r)) for r in sorted(loader.ROLES)))
    old = st["programs"].get("transit")
    return programs, migrated, bool(old) and not stages.same_program(old, programs["transit"])


def _plan_load(spec, st, load):
    """The steps of the one Loader.load(), each named for what it does."""
    lay = stages.Layout(spec.pin_dir)
    roles = sorted(loader.ROLES)
    if not st["loaded"]:
        return [Step("create the datapath maps under %s and load the programs %s" % (lay.maps, ", ".join(roles)),
                     load)]
    steps = []
    if st["leftovers"]:
        steps.append(Step("remove %s, left by an interrupted layout migration" % ", ".join(st["leftovers"]), load))
    diff = st["layout_diff"]
    if diff:
        missing = sorted(set(st["stages_installed"]) - set(st["stage_sources"]))
        if missing:
            raise TransitError("the map layout changed (%s) while stages %s are installed: give their objects in "
                               "stages so that they can be reloaded against the new maps" % (
                                   ", ".join(sorted(diff)), ", ".join(missing)))
        return steps + [Step("migrate the maps to the new layout (%s), copying every entry, and switch every link "
                             "to the new programs" % "; ".join("%s: %s" % (m, ", ".join(c))
                                                               for m, c in sorted(diff.items())), load)]
    for role in roles:
        old, new = st["programs"].get(role), st["dry"][role]
        if stages.same_program(old, new):
            continue
        if old is None:
            steps.append(Step("load the %s program" % role, load))
            continue
        n = len([a for a in st["attachments"] if a["prog_id"] == old["prog_id"] and a["ifindex"]])
        steps.append(Step("replace the %s program (tag %s -> %s)%s" % (
            role, old["tag"], new["tag"], " in %d link%s, atomically" % (n, "" if n == 1 else "s") if n else ""),
            load))
    if st["new_maps"]:
        steps.append(Step("create the new maps %s" % ", ".join(st["new_maps"]), load))
    return steps


def _attach(spec):
    dp = loader.Loader(spec.pin_dir, spec.obj_dir)
    try:
        return dp.attach("transit", spec.interface, spec.mode, switch_mode=spec.switch_mode)["changed"]
    except (loader.LoaderError, libbpf.BpfError, xdp.XdpError, netlink.NetlinkError) as e:
        raise TransitError("attaching the transit program to %s: %s" % (spec.interface, e))


def _plan_attach(spec, st, switch, transit):
    """The attach step, if the NIC will not run transit (the program pinned
    after the load) in spec's mode without one."""
    nic = st["nic"]
    if not nic["attached"]:
        return [Step("attach the transit program to %s (%s mode)" % (spec.interface, spec.mode), _attach, spec)]
    if switch:
        return [Step("switch %s from %s to %s mode: detach, then attach (no XDP program in between)" % (
            spec.interface, nic["mode"], spec.mode), _attach, spec)]
    old = st["programs"].get("transit")
    relinked = bool(old) and nic["prog_id"] == old["prog_id"] and nic["via"] == "link" and any(
        a["link_id"] == nic["link_id"] for a in st["attachments"])  # the load switches that link
    if relinked or stages.same_program(st["nic_prog"], transit):
        return []
    return [Step("replace the program on %s with the transit program" % spec.interface, _attach, spec)]


def _stale_transit(spec, attachments):
    return [a for a in attachments if a["role"] == "transit" and a["ifindex"] and
            (a["iface"] != spec.interface or a["netns"] is not None)]


def _detach(spec, a):
    return loader.Loader(spec.pin_dir, None).detach(a["iface"], netns=a["netns"])["changed"]


def _teardown(spec):
    return loader.Loader(spec.pin_dir, None).teardown()["changed"]


def _remove_objects(obj_dir):
    return True if objects.remove(obj_dir) else DONE_ELSEWHERE


def plan(spec, st, load=None):
    """The steps from state st to spec; load (a _Load) is what the load
    steps share when they are carried out. Raises TransitError when the
    host cannot be brought to spec."""
    if spec.state == "absent":
        steps = []
        if st["pin_dir"]:
            lay = stages.Layout(spec.pin_dir)
            steps += [Step("detach the %s program from %s%s" % (a["role"] or "unknown", a["iface"],
                                                                " in netns %s" % a["netns"] if a["netns"] else ""),
                           xdp.link_detach_pinned, lay.link(a["link"]))
                      for a in st["attachments"] if a["ifindex"]]
            steps.append(Step("unpin everything under %s and remove it" % spec.pin_dir, _teardown, spec))
        if st["obj_dir"]:
            steps.append(Step("remove the objects in %s" % spec.obj_dir, _remove_objects, spec.obj_dir))
        if st["dryload_cache"]:
            steps.append(Step("remove the verifier's answers kept in %s" % dryload.CACHE_DIR, _remove_objects,
                              dryload.CACHE_DIR))
        return steps
    steps = _plan_objects(spec, st)
    switch = _check_nic(spec, st)
    if st["mount"]:
        steps.append(Step("mount a bpffs on %s" % st["mount"], mount_bpffs, st["mount"]))
    steps += _plan_load(spec, st, load or _Load(spec, st["stage_sources"]))
    steps += _plan_attach(spec, st, switch, loaded_programs(spec, st)[0]["transit"])
    steps += [Step("detach the transit program from %s (the transit interface is %s now)" % (
        a["iface"], spec.interface), _detach, spec, a) for a in _stale_transit(spec, st["attachments"])]
    return steps


# ---------------------------------------------------------------- reporting


def describe(spec, st, predicted=None):
    """Text of a state for --diff: the NIC's program, its mode, the pins.
    predicted overrides fields of the state (check mode's after)."""
    p = dict(predicted or {})
    nic = st["nic"]
    if "nic" in p:
        nic = p["nic"]
    lines = []
    if nic is None:
        lines.append("%s: no such interface" % spec.interface)
    elif not nic["attached"]:
        lines.append("%s: no XDP program" % spec.interface)
    else:
        lines.append("%s: %s tag %s, %s mode, attached via %s" % (
            spec.interface, nic["prog_name"], nic["tag"], nic["mode"], nic["via"]))
    programs = p.get("programs", st["programs"])
    loaded = p.get("loaded", st["loaded"])
    if loaded:
        tags = ["%s tag %s" % (role, programs[role]["tag"] if programs.get(role) else "-")
                for role in sorted(loader.ROLES)]
        lines.append("datapath at %s: %s" % (spec.pin_dir, ", ".join(tags)))
    else:
        lines.append("datapath at %s: not loaded" % spec.pin_dir)
    atts = p.get("attachments", st["attachments"])
    for a in atts:
        lines.append("attached: %s on %s%s" % (a["role"], a["iface"],
                                               " in netns %s" % a["netns"] if a["netns"] else ""))
    return "\n".join(lines) + "\n"


def _predict_attachments(spec, st, stale):
    out = [a for a in st["attachments"] if a not in stale and a["ifindex"]]
    if not any(a["role"] == "transit" and a["iface"] == spec.interface for a in out):
        out.append({"role": "transit", "iface": spec.interface, "netns": None})
    return out


def _summaries(programs):
    return dict((r, {"prog_id": p["prog_id"], "tag": p["tag"]} if p else None) for r, p in programs.items())


def ensure(spec, check_mode=False):
    """Bring the host's transit side to spec. Returns the module's result:
    {changed, actions, diff, prog_id, tag, mode, attached_via, upgraded,
    migrated, map_ids, programs, interface, pin_dir}, and objects with an
    archive or a manifest; or, when a manifest differs from obj_dir and no
    archive came, {changed: false, archive_needed: true}."""
    try:
        st = read(spec)
    except (libbpf.BpfError, netlink.NetlinkError, xdp.XdpError, OSError) as e:
        raise TransitError("reading the datapath at %s and %s: %s" % (spec.pin_dir, spec.interface, e))
    if st["archive_needed"]:
        return {"changed": False, "archive_needed": True, "actions": [], "diff": {"before": "", "after": ""}}
    try:
        steps = plan(spec, st)
        actions = carry_out(steps, check_mode=check_mode, error=TransitError)
    finally:
        if st["staging"]:
            objects.discard(st["staging"])
    if spec.state == "absent":
        result = _absent_result(spec, st, steps)
    else:
        result = _present_result(spec, st, steps, check_mode)
    result.update(changed=bool(actions) if not check_mode else bool(steps), actions=actions,
                  interface=spec.interface, pin_dir=spec.pin_dir)
    found = st["objects"]
    if found is not None:
        d = objects.difference(found["want"], found["have"])
        result["objects"] = d
        head = "objects in %s:\n" % spec.obj_dir
        result["diff"] = {"before": head + objects.listing(found["have"]) + result["diff"]["before"],
                          "after": head + objects.listing(found["want"]) + result["diff"]["after"]}
    return result


def _present_result(spec, st, steps, check_mode):
    programs, migrated, upgraded = loaded_programs(spec, st)
    if steps and not check_mode:
        now = _read_datapath(spec, loader.Loader(spec.pin_dir, spec.obj_dir))
        nic, tr = now["nic"], now["programs"]["transit"]
        result = {"prog_id": nic["prog_id"], "tag": nic["tag"], "mode": nic["mode"], "attached_via": nic["via"],
                  "map_ids": tr["map_ids"], "programs": _summaries(now["programs"])}
        after = describe(spec, now)
    elif not steps:
        nic, tr = st["nic"], st["programs"]["transit"]
        result = {"prog_id": nic["prog_id"], "tag": nic["tag"], "mode": nic["mode"], "attached_via": nic["via"],
                  "map_ids": tr["map_ids"], "programs": _summaries(st["programs"])}
        after = describe(spec, st)
    else:
        nic, tr = st["nic"], programs["transit"]
        switch = nic["attached"] and nic["mode"] != spec.mode
        after_nic = dict(nic, attached=True, prog_name=tr["name"], tag=tr["tag"], mode=spec.mode,
                         via=nic["via"] if nic["attached"] and not switch else "link",
                         prog_id=nic["prog_id"] if nic["attached"] and not upgraded and not switch else None)
        stale = _stale_transit(spec, st["attachments"])
        result = {"prog_id": after_nic["prog_id"], "tag": tr["tag"], "mode": spec.mode,
                  "attached_via": after_nic["via"], "programs": _summaries(programs),
                  "map_ids": tr["map_ids"] if st["loaded"] and not migrated else []}
        after = describe(spec, st, {"nic": after_nic, "loaded": True, "programs": programs,
                                    "attachments": _predict_attachments(spec, st, stale)})
    result.update(upgraded=upgraded, migrated=migrated, diff={"before": describe(spec, st), "after": after})
    return result


def _absent_result(spec, st, steps):
    nic = st["nic"]
    after_nic = dict(nic, attached=False) if nic is not None and st["ours"] else nic
    after = describe(spec, st, {"nic": after_nic, "loaded": False, "attachments": []})
    before = describe(spec, st)
    if st["obj_dir"]:
        before += "objects in %s\n" % spec.obj_dir
    return {"upgraded": False, "migrated": False, "prog_id": None, "tag": None, "mode": None, "attached_via": None,
            "map_ids": [], "programs": {}, "diff": {"before": before, "after": after}}
