# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a host already holds its rendering: the one call after which
site.yml leaves a host that has nothing to change.

    res = ensure(Spec(rendered, manifest={"transit.bpf.o": "<sha256>", ...}))
    res["in_sync"], res["drift"]

It asks the backend of every module the roles call, with the arguments the
roles give it, what it would do in check mode. The answer is therefore the
roles' own: a host is in sync exactly when none of their tasks would report
a change. The parts, in the order the roles take them:

    transit     ops/transit: the objects against the build's manifest, the
                datapath pinned, the program on the NIC
    endpoints   ops/endpoint, as ops/tenant_state makes them: the host's
                endpoints, and the ones its datapath serves that the
                rendering leaves out (exclusive)
    maps        ops/map_state, scope all (tenant_state's last step): every
                entry the host needs, and none more
    stages      ops/stage, the rendering's functions with exclusive: every
                function in its stage, and no program in a stage that no
                function claims
    userspace   ops/userspace_function, the rendering's user-space functions
                with exclusive: each running in its endpoint's namespace
                with its program and config, and no other

The first part that would change something ends the reading: what follows
depends on it (no maps to compare before the datapath is loaded), and one
change is reason enough to run the roles. A part that cannot be read (a
library missing, no datapath yet, an endpoint's interface not made yet)
counts as drift, with its reason: the roles then do the work, or fail with
their module's own error. The gate itself never fails a run because of what
it finds on the host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.ops import args, map_state, runner, stage, transit
from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint, tenant_state, userspace_function
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError, require_rendering

# Checked by ensure(), where a missing library is drift, not a failure.
NEEDS = ()
MODULE = args.module_args(dict(
    rendered=dict(type="dict", required=True),
    manifest=dict(type="dict"),
))


class DriftError(BackendError):
    """The rendering given is not one (a field the roles need is missing)."""


ERRORS = (DriftError,)


def context(params):
    return "%s: comparing the host with its rendering" % ((params.get("rendered") or {}).get("host") or "this host")


class Spec:
    """A host's rendering (mizar.transit.render) and the manifest of the
    build's objects ({name: sha256}, bpf_build's manifest); without a
    manifest the objects on the host are not compared."""

    headers = None

    def __init__(self, rendered, manifest=None):
        require_rendering(rendered, ("interface", "transit", "local_endpoints", "maps", "functions", "vnis"), DriftError)
        self.rendered = rendered
        self.manifest = manifest
        self.host = rendered.get("host") or "this host"
        iface = rendered["interface"]
        self.interface = iface["name"]
        self.pin_dir = iface["pin_dir"]
        self.mode = iface["xdp_mode"]

    @classmethod
    def from_params(cls, params):
        return cls(params["rendered"], params["manifest"])


# ---------------------------------------------------------------- the roles' calls

def _transit(spec, facts):
    t = spec.rendered["transit"]
    res = transit.ensure(transit.TransitSpec(
        spec.interface, spec.pin_dir, obj_dir=t["obj_dir"], mode=spec.mode, switch_mode=t["switch_mode"],
        stage_sources=t["stages"], manifest=spec.manifest), check_mode=True)
    if res.get("archive_needed"):
        facts["objects_differ"] = True
        return ["carry the build's objects to %s: the host's differ from them" % t["obj_dir"]]
    return res["actions"]


def _endpoints(spec, facts):
    res = endpoint.ensure(tenant_state.endpoints_spec(spec.rendered, spec.pin_dir, exclusive=True), check_mode=True)
    return res["actions"]


def _maps(spec, facts):
    return map_state.ensure(map_state.Spec(spec.rendered, spec.pin_dir, "all"), check_mode=True)["actions"]


def _stages(spec, facts):
    return stage.ensure(stage.Spec.from_params(dict(
        rendered=spec.rendered, pin_dir=spec.pin_dir, exclusive=True, state="present")), check_mode=True)["actions"]


def _userspace(spec, facts):
    if "userspace" not in spec.rendered:  # a rendering from before user-space functions
        return []
    return userspace_function.ensure(userspace_function.spec_of(spec.rendered), check_mode=True)["actions"]


READERS = (("transit", _transit), ("endpoints", _endpoints), ("maps", _maps), ("stages", _stages),
           ("userspace", _userspace))
PARTS = tuple(part for part, dummy in READERS)


# ---------------------------------------------------------------- the contract

def read(spec):
    """{checked: [the parts compared, in order], drift: {part: [what its
    module would do]}, objects_differ: the host's objects are not the
    build's}, ending at the first part with drift."""
    st = {"checked": [], "drift": {}, "objects_differ": False}
    missing = runner.missing_library((runner.PYROUTE2, runner.LIBBPF))
    if missing:
        st["drift"]["host"] = ["cannot be compared: %s" % missing[0]]
        return st
    for part, reader in READERS:
        st["checked"].append(part)
        try:
            found = reader(spec, st)
        except Exception as e:  # the roles' modules say it properly; here it only means "run them"
            found = ["cannot be compared: %s" % e]
        if found:
            st["drift"][part] = list(found)
            break
    return st


def plan(spec, st):
    """Nothing: the module only reads."""
    return []


def ensure(spec, check_mode=False):
    """{changed: false, in_sync, drift, checked, objects_differ, actions: [],
    diff}."""
    st = read(spec)
    return {"changed": False, "actions": [], "in_sync": not st["drift"], "drift": st["drift"],
            "checked": st["checked"], "objects_differ": st["objects_differ"], "diff": {"before": "", "after": ""}}
