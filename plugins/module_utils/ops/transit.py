# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transit program on a host's substrate NIC, and the datapath behind it.

    res = ensure(TransitSpec(interface="eth0", mode="native", pin_dir=...,
                             obj_dir=...), check_mode=False)

present, in order:

1. /sys/fs/bpf must be a bpffs (mounted when it is not and pin_dir lies
   below it; any other pin_dir must already be on one);
2. Loader.load(): maps created, or reused with every entry; an upgraded
   object's programs replace the old ones through every link, atomically,
   the NIC is never left without a program; a map layout change migrates
   the entries (stage programs need their objects then: `stages`);
3. Loader.attach('transit', interface, mode): attached when nothing is,
   unchanged when it already runs. Another mode than the attached one is
   refused unless switch_mode (a detach and an attach);
4. transit attachments of this datapath on another interface (the NIC was
   renamed in the inventory) are detached.

absent: Loader.teardown(): every link of the pin directory detached
(transit, agents, pass programs of endpoints), every pin removed, the
directory too.

Check mode predicts every step without a side effect: program tags come
from dryload (the objects loaded against the pinned maps, nothing pinned).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import loader, dryload, kernel, libbpf, stages, tables

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.bpf import xdp
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import BPF_FS_MAGIC, fs_type
from ansible_collections.mizar.transit.plugins.module_utils.host.fsmagic import libc as _libc
from ansible_collections.mizar.transit.plugins.module_utils.ops.stage import StageSlotError, resolve_program

BPFFS = "/sys/fs/bpf"


class TransitError(Exception):
    """The transit program cannot be brought to the wanted state; says why.
    details: more for the task's result (the verifier's whole log)."""

    def __init__(self, msg, details=None):
        super(TransitError, self).__init__(msg)
        self.details = details or {}


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
    """What the transit side of a host should be. Checked on construction."""

    def __init__(self, interface, pin_dir, obj_dir=None, mode="native", switch_mode=False, state="present",
                 stage_sources=None):
        if mode not in xdp.MODES:
            raise TransitError("mode: %r is not an XDP mode; one of %s" % (mode, ", ".join(sorted(xdp.MODES))))
        self.interface = interface
        self.pin_dir = os.path.normpath(pin_dir)
        self.obj_dir = obj_dir
        self.mode = mode
        self.switch_mode = switch_mode
        self.state = state
        self.stage_sources = {}
        if state == "present":
            if not obj_dir:
                raise TransitError("obj_dir is required with state=present: the directory with transit.bpf.o, "
                                   "agent.bpf.o and pass.bpf.o (mizar.transit.bpf_build)")
            missing = [f for f, _p in loader.ROLES.values() if not os.path.isfile(os.path.join(obj_dir, f))]
            if missing:
                raise TransitError("obj_dir: %s lacks %s (build the objects with mizar.transit.bpf_build and copy "
                                   "them there)" % (obj_dir, ", ".join(sorted(missing))))
        for i, s in enumerate(stage_sources or ()):
            try:
                prog = resolve_program(s["object"], s["stage"], s.get("program"))
            except StageSlotError as e:
                raise TransitError("stages[%d].%s" % (i, e))
            if s["stage"] in self.stage_sources:
                raise TransitError("stages[%d].stage: %s is named twice" % (i, s["stage"]))
            self.stage_sources[s["stage"]] = (s["object"], prog)


_pinned_program = libbpf.pinned_prog


def read(spec, dp):
    """The current state: {bpffs, loaded, maps, programs: {role: summary},
    nic: xdp.query() of the interface or None when it does not exist,
    ours: the program on the NIC is this datapath's, attachments}."""
    lay = dp.layout
    st = {"bpffs": bpffs_to_mount(spec.pin_dir) is None, "loaded": False, "maps": 0, "programs": {},
          "nic": None, "ours": False, "attachments": [], "pin_dir": os.path.isdir(spec.pin_dir)}
    if st["bpffs"]:
        st["loaded"] = os.path.isdir(lay.maps)
        st["maps"] = len(os.listdir(lay.maps)) if st["loaded"] else 0
        st["programs"] = dict((role, _pinned_program(lay.prog(role))) for role in loader.ROLES)
        st["attachments"] = dp.attachments() if os.path.isdir(lay.links) else []
    if netlink.link(spec.interface) is not None:
        q = xdp.query(spec.interface, link_pin=lay.link(loader.link_name(spec.interface)))
        st["nic"] = q
        ours = set(p["prog_id"] for p in st["programs"].values() if p)
        st["ours"] = q["attached"] and (q["prog_id"] in ours or q["via"] == "link" and bool(q["link_id"]) and any(
            a["link_id"] == q["link_id"] for a in st["attachments"]))
    return st


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


def _plan_load(spec, dp, st):
    """Check mode: the actions Loader.load() would take, and the programs
    it would leave pinned."""
    lay = dp.layout
    roles = sorted(loader.ROLES)
    if not st["loaded"]:
        return ["create the datapath maps under %s and load the programs %s" % (lay.maps, ", ".join(roles))], \
            dict((r, _dry(spec, r, None)) for r in roles), False
    diff = dp.layout_diff()
    if diff:
        installed = [s for s, v in stages.Stages(spec.pin_dir).list().items() if v is not None]
        missing = sorted(set(installed) - set(spec.stage_sources))
        if missing:
            raise TransitError("the map layout changed (%s) while stages %s are installed: give their objects in "
                               "stages so that they can be reloaded against the new maps" % (
                                   ", ".join(sorted(diff)), ", ".join(missing)))
        actions = ["migrate the maps to the new layout (%s), copying every entry, and switch every link to the new "
                   "programs" % "; ".join("%s: %s" % (m, ", ".join(c)) for m, c in sorted(diff.items()))]
        return actions, dict((r, _dry(spec, r, None)) for r in roles), True
    actions, programs = [], {}
    for role in roles:
        old = st["programs"].get(role)
        new = _dry(spec, role, lay.maps)
        if stages.same_program(old, new):
            programs[role] = old
            continue
        programs[role] = new
        if old is None:
            actions.append("load the %s program" % role)
        else:
            n = len([a for a in st["attachments"] if a["prog_id"] == old["prog_id"] and a["ifindex"]])
            actions.append("replace the %s program (tag %s -> %s)%s" % (
                role, old["tag"], new["tag"], " in %d link%s, atomically" % (n, "" if n == 1 else "s") if n else ""))
    return actions, programs, False


def _dry(spec, role, maps_dir):
    obj, prog = loader.ROLES[role]
    try:
        return dryload.program_summary(os.path.join(spec.obj_dir, obj), prog, maps_dir)
    except libbpf.BpfError as e:
        raise _load_error("obj_dir: loading %s from %s" % (prog, os.path.join(spec.obj_dir, obj)), e)


def _check_nic(spec, st):
    """Refusals that hold in check mode too: a missing NIC, someone else's
    program on it, a mode change without switch_mode."""
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


def ensure(spec, check_mode=False):
    """Bring the host's transit side to spec. Returns the module's result."""
    dp = loader.Loader(spec.pin_dir, spec.obj_dir)
    try:
        st = read(spec, dp)
    except (libbpf.BpfError, netlink.NetlinkError, xdp.XdpError, OSError) as e:
        raise TransitError("reading the datapath at %s and %s: %s" % (spec.pin_dir, spec.interface, e))
    if spec.state == "absent":
        return _absent(spec, dp, st, check_mode)
    return _present(spec, dp, st, check_mode)


def _present(spec, dp, st, check_mode):
    actions = []
    try:
        kernel.require_supported()
    except kernel.KernelError as e:
        raise TransitError(str(e))
    switch = _check_nic(spec, st)
    mount = bpffs_to_mount(spec.pin_dir)
    if mount:
        actions.append("mount a bpffs on %s" % mount)
        if not check_mode:
            mount_bpffs(mount)
    nic = st["nic"]
    upgraded = migrated = False
    if check_mode:
        load_actions, programs, migrated = _plan_load(spec, dp, st)
        actions += load_actions
        old_transit = st["programs"].get("transit")
        upgraded = bool(old_transit) and not stages.same_program(old_transit, programs["transit"])
        tr = programs["transit"]
        if not nic["attached"]:
            actions.append("attach the transit program to %s (%s mode)" % (spec.interface, spec.mode))
        elif switch:
            actions.append("switch %s from %s to %s mode: detach, then attach (no XDP program in between)" % (
                spec.interface, nic["mode"], spec.mode))
        after_nic = dict(nic, attached=True, prog_name=tr["name"], tag=tr["tag"], mode=spec.mode,
                         via=nic["via"] if nic["attached"] and not switch else "link",
                         prog_id=nic["prog_id"] if nic["attached"] and not upgraded and not switch else None)
        stale = _stale_transit(spec, st["attachments"])
        actions += ["detach the transit program from %s (the transit interface is %s now)" % (
            a["iface"], spec.interface) for a in stale]
        result = {"prog_id": after_nic["prog_id"], "tag": tr["tag"], "mode": spec.mode,
                  "attached_via": after_nic["via"], "programs": programs,
                  "map_ids": tr["map_ids"] if st["loaded"] and not migrated else []}
        after = describe(spec, st, {"nic": after_nic, "loaded": True, "programs": programs,
                                    "attachments": _predict_attachments(spec, st, stale)})
    else:
        try:
            load = dp.load(stage_sources=spec.stage_sources)
        except (loader.LoaderError, libbpf.BpfError, stages.StageError, OSError) as e:
            raise _load_error("loading the datapath from %s into %s" % (spec.obj_dir, spec.pin_dir), e)
        migrated = load["action"] == "migrated"
        if load["action"] == "created":
            actions.append("create the datapath maps under %s and load the programs %s" % (
                dp.layout.maps, ", ".join(sorted(loader.ROLES))))
        elif migrated:
            changes = "; ".join("%s: %s" % (m, ", ".join(c)) for m, c in sorted(load["layout_changes"].items()))
            copied = ", ".join("%s %d" % (m, n) for m, n in sorted(load["entries"].items()) if n) or "no entries"
            actions.append("migrate the maps to the new layout (%s), copying every entry (%s), and switch every "
                           "link to the new programs" % (changes, copied))
        else:
            for role in sorted(load["programs"]):
                p, old = load["programs"][role], st["programs"].get(role)
                if p["changed"]:
                    actions.append("replace the %s program (tag %s -> %s)" % (role, old["tag"], p["tag"]) if old
                                   else "load the %s program" % role)
            created = sorted(m for m, how in load["maps"].items() if how == "created")
            if created:
                actions.append("create the new maps %s" % ", ".join(created))
        if load["relinked"]:
            actions.append("switched links %s to the new programs, atomically" % ", ".join(load["relinked"]))
        old_transit = st["programs"].get("transit")
        upgraded = bool(old_transit) and load["programs"]["transit"]["changed"]
        try:
            att = dp.attach("transit", spec.interface, spec.mode, switch_mode=spec.switch_mode)
        except (loader.LoaderError, libbpf.BpfError, xdp.XdpError, netlink.NetlinkError) as e:
            raise TransitError("attaching the transit program to %s: %s" % (spec.interface, e))
        if att["action"] == "attached":
            actions.append("attach the transit program to %s (%s mode)" % (spec.interface, spec.mode))
        elif att["action"] == "switched":
            actions.append("switch %s from %s to %s mode: %s" % (spec.interface, nic["mode"], spec.mode, att["note"]))
        elif att["action"] == "replaced":
            actions.append("replace the program on %s with the transit program" % spec.interface)
        for a in _stale_transit(spec, dp.attachments()):
            dp.detach(a["iface"], netns=a["netns"])
            actions.append("detach the transit program from %s (the transit interface is %s now)" % (
                a["iface"], spec.interface))
        now = read(spec, dp)
        after_nic = now["nic"]
        tr = now["programs"]["transit"]
        result = {"prog_id": after_nic["prog_id"], "tag": after_nic["tag"], "mode": after_nic["mode"],
                  "attached_via": after_nic["via"], "map_ids": tr["map_ids"],
                  "programs": now["programs"]}
        after = describe(spec, now)
    result.update(changed=bool(actions), actions=actions, upgraded=upgraded, migrated=migrated,
                  interface=spec.interface, pin_dir=spec.pin_dir,
                  diff={"before": describe(spec, st), "after": after})
    result["programs"] = dict((r, {"prog_id": p["prog_id"], "tag": p["tag"]} if p else None)
                              for r, p in result["programs"].items())
    return result


def _stale_transit(spec, attachments):
    return [a for a in attachments if a["role"] == "transit" and a["ifindex"] and
            (a["iface"] != spec.interface or a["netns"] is not None)]


def _predict_attachments(spec, st, stale):
    out = [a for a in st["attachments"] if a not in stale and a["ifindex"]]
    if not any(a["role"] == "transit" and a["iface"] == spec.interface for a in out):
        out.append({"role": "transit", "iface": spec.interface, "netns": None})
    return out


def _absent(spec, dp, st, check_mode):
    actions = []
    if st["pin_dir"]:
        for a in st["attachments"]:
            if a["ifindex"]:
                actions.append("detach the %s program from %s%s" % (
                    a["role"] or "unknown", a["iface"], " in netns %s" % a["netns"] if a["netns"] else ""))
        actions.append("unpin everything under %s and remove it" % spec.pin_dir)
        if not check_mode:
            try:
                dp.teardown()
            except (loader.LoaderError, libbpf.BpfError, xdp.XdpError, OSError) as e:
                raise TransitError("tearing down the datapath at %s: %s" % (spec.pin_dir, e))
    nic = st["nic"]
    after_nic = nic
    if nic is not None and st["ours"]:
        after_nic = dict(nic, attached=False)
    after = describe(spec, st, {"nic": after_nic, "loaded": False, "attachments": []})
    return {"changed": bool(actions), "actions": actions, "upgraded": False, "migrated": False,
            "prog_id": None, "tag": None, "mode": None, "attached_via": None, "map_ids": [], "programs": {},
            "interface": spec.interface, "pin_dir": spec.pin_dir,
            "diff": {"before": describe(spec, st), "after": after}}


# ---------------------------------------------------------------- facts


def _endpoint_netns(iface_index, host_peer, pass_atts):
    """The namespace whose eth0 is the veth peer of the host interface of
    index iface_index (whose own peer index is host_peer), among the
    namespaces where this datapath attached the pass program."""
    for a in pass_atts:
        try:
            inner = netlink.link(a["iface"], a["netns"])
        except netlink.NetlinkError:
            continue  # namespace gone
        if inner is not None and inner["peer_index"] == iface_index and inner["index"] == host_peer:
            return a["netns"]
    return None


def info(pin_dir):
    """Loader.status() of pin_dir, plus `transit` (the transit program's
    attachment) and `endpoints` (one per agent attachment: iface, ifindex,
    netns of a made endpoint or None for an adopted interface, mode,
    prog_id, and vni, ip, mac from the agents map when it has the entry)."""
    dp = loader.Loader(pin_dir, None)
    st = dp.status()
    if not st.get("loaded"):
        st.update(programs={}, attachments=st.get("attachments") or [], maps={}, counters={}, drops={}, stages={},
                  transit=None, endpoints=[])
        return st
    atts = st["attachments"]
    transit = [a for a in atts if a["role"] == "transit" and a["ifindex"]]
    st["transit"] = dict((k, transit[0][k]) for k in ("iface", "ifindex", "prog_id", "tag", "mode", "link_id")) \
        if transit else None
    try:
        agents = dict((e["ifindex"], e) for e in (tables.read_state(dp.maps_dir).get("agents") or {}).values())
    except Exception:  # an unreadable table must not hide the attachments
        agents = {}
    pass_atts = [a for a in atts if a["role"] == "pass" and a["netns"] is not None and a["ifindex"]]
    endpoints = []
    for a in atts:
        if a["role"] != "agent" or a["netns"] is not None:
            continue
        ep = {"iface": a["iface"], "ifindex": a["ifindex"], "netns": None, "mode": a["mode"],
              "prog_id": a["prog_id"], "vni": None, "ip": None, "mac": None}
        if a["ifindex"]:
            host = netlink.link(a["ifindex"])
            if host is not None and host["kind"] == "veth":
                ep["netns"] = _endpoint_netns(host["index"], host["peer_index"], pass_atts)
            entry = agents.get(a["ifindex"])
            if entry:
                ep.update(vni=entry.get("vni"), ip=entry.get("ip"), mac=entry.get("mac"))
        endpoints.append(ep)
    st["endpoints"] = endpoints
    return st
