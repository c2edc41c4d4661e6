# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's tenants from its rendering, in one call: its endpoints and its
map entries, in the order that keeps every flow working.

    make    the rendering's endpoints (ops/endpoint, list form), then the
            map entries of the scope (ops/map_state): the maps point at an
            endpoint's interface only once it exists
    break   with scope all, after the maps forgot them, the endpoints the
            datapath serves that the rendering leaves out (unlisted)

scope is map_state's: add, then update, then all, each on every host before
the next, keeps make before break across hosts; a host whose `pending` is
false after a step needs no later one. A new host's whole tenant set is
one call (scope add; nothing pending). scope all on its own is the whole
convergence of one host.

In check mode the endpoints are not made, so the maps are planned with a
placeholder interface index for each interface the endpoint step would
create (PLANNED_IFINDEX onwards), named in the diff by its interface: the
prediction is the run's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint, map_state
from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError, require_rendering
from ansible_collections.mizar.transit.plugins.module_utils.ops.runner import LIBBPF, PYROUTE2

NEEDS = (PYROUTE2, LIBBPF)
# map_state's arguments: a rendering, where it is pinned, the scope.
MODULE = map_state.MODULE
# Where the placeholder indexes of check mode start: above any index a
# kernel hands out in practice, and never written (check mode writes nothing).
PLANNED_IFINDEX = 0x7fff0000


class TenantStateError(BackendError):
    """The rendering given is not one: names the host and the field."""


ERRORS = (TenantStateError, endpoint.EndpointError, map_state.MapStateError)


def context(params):
    return "%s: its endpoints and map entries" % ((params.get("rendered") or {}).get("host") or "this host")


def endpoints_spec(rendered, pin_dir, exclusive=False):
    """The ops/endpoint spec of a host's endpoints as its rendering has
    them (local_endpoints), with the rendering's substrate NIC and XDP mode;
    exclusive: the endpoints the datapath serves beyond them go too."""
    iface = rendered["interface"]
    return endpoint.Spec.from_params(dict(
        endpoints=rendered["local_endpoints"], substrate_interface=iface["name"], pin_dir=pin_dir,
        mode=iface["xdp_mode"], state="present", exclusive=exclusive))


class Spec:
    """A host's rendering, where its datapath is pinned (pin_dir, else the
    rendering's) and the scope of this step."""

    def __init__(self, rendered, pin_dir=None, scope="all"):
        require_rendering(rendered, ("interface", "local_endpoints", "maps"), TenantStateError)
        self.maps = map_state.Spec(rendered, pin_dir, scope)
        self.host = self.maps.host
        self.pin_dir = self.maps.pin_dir
        self.scope = scope
        self.endpoints = endpoints_spec(rendered, self.pin_dir)
        self.headers = ("%s tenants (before)" % self.host, "%s tenants (after)" % self.host)

    @classmethod
    def from_params(cls, params):
        return cls(params["rendered"], params["pin_dir"], params["scope"])

    def unlisted(self, found):
        """The ops/endpoint spec that removes the unlisted endpoints found."""
        return endpoint.Spec.from_params(dict(
            endpoints=found, substrate_interface=None, pin_dir=self.pin_dir, mode=self.endpoints.mode,
            state="absent", exclusive=False))


def read(spec):
    """The endpoints' states and the maps' (what the two backends read)."""
    return {"endpoints": endpoint.read(spec.endpoints), "maps": map_state.read(spec.maps)}


def plan(spec, st):
    """The endpoints' steps, then the maps' (planned against the interfaces
    the endpoints' steps make); the unlisted endpoints' removal is planned
    by ensure() once the maps no longer point at them."""
    steps = endpoint.plan(spec.endpoints, st["endpoints"])
    return steps + map_state.plan(spec.maps, map_state.with_planned(st["maps"], planned_links(spec)))


def planned_links(spec):
    """{interface: placeholder index} of the rendering's endpoints, for the
    interfaces the host lacks yet (map_state.with_planned)."""
    return dict((ep.iface, PLANNED_IFINDEX + i) for i, ep in enumerate(spec.endpoints.endpoints))


def _section(title, text):
    return "%s:\n%s" % (title, endpoint.indent(text)) if text else ""


def ensure(spec, check_mode=False):
    """Make the endpoints, bring the maps to the scope, and with scope all
    remove the unlisted endpoints. Returns {changed, actions, endpoints,
    unlisted, changes, counts, writes, pending, diff}: endpoints and
    unlisted (those found before the run) as the endpoint module's list
    form returns them, the rest as map_state's; pending is also true while
    unlisted endpoints wait for scope all."""
    eps = endpoint.ensure(spec.endpoints, check_mode=check_mode)
    maps = map_state.ensure(spec.maps, check_mode=check_mode,
                            planned=planned_links(spec) if check_mode else None)
    gone = {"changed": False, "actions": [], "diff": {"before": "", "after": ""}}
    if spec.scope == "all" and eps["unlisted"]:
        gone = endpoint.ensure(spec.unlisted(eps["unlisted"]), check_mode=check_mode)
    parts = (("endpoints", eps), ("maps", maps), ("unlisted endpoints", gone))
    return {"changed": eps["changed"] or maps["changed"] or gone["changed"],
            "actions": eps["actions"] + maps["actions"] + gone["actions"],
            "endpoints": eps["endpoints"], "unlisted": eps["unlisted"],
            "changes": maps["changes"], "counts": maps["counts"], "writes": maps["writes"],
            "pending": maps["pending"] or (spec.scope != "all" and bool(eps["unlisted"])),
            "diff": dict((side, "".join(_section(title, res["diff"][side]) for title, res in parts))
                         for side in ("before", "after"))}
