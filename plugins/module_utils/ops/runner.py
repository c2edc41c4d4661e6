# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one main() of every module: a module is its documentation and

    def main():
        runner.run(AnsibleModule(**backend.MODULE), backend)

Every backend (ops/<module>.py) has the same parts:

    NEEDS           the libraries it needs on the host: "pyroute2", "libbpf"
    MODULE          its AnsibleModule arguments (args.module_args())
    Spec            the module's arguments, validated, as an object:
                    Spec.from_params(params); spec.headers is the pair of
                    diff headers (before, after), or None
    ERRORS          its error classes: a refusal that names the item and
                    field at fault, before anything is changed; those of
                    ops/ subclass errors.BackendError, whose details go
                    into the failed result
    context(params) the item, for the message of a failure nobody foresaw
    read(spec)      the current state, as plain data
    plan(spec, state)
                    the steps (steps.Step) from that state to spec's
    ensure(spec, check_mode)
                    read, plan, carry out (nothing in check mode); the
                    result: changed (the plan was not empty), actions (the
                    steps' texts, in order), diff ({before, after}), and the
                    module's own return values; warnings, if any

run() does the rest for all of them: the missing-library checks, then
ops/outcome.py (shared with the bpf_build action, which runs its backend in
the controller's process): a failed result with the backend's message for
its own errors (and their details), a message naming the item and a
traceback for any other, the warnings, and the diff with its headers when
--diff asked for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf
from ansible_collections.mizar.transit.plugins.module_utils.ops import outcome

PYROUTE2 = "pyroute2"
LIBBPF = "libbpf"
LIBBPF_REQUIREMENT = "libbpf 1.0 or newer (libbpf.so.1: the libbpf1 package on Debian and Ubuntu)"


def missing_library(needs):
    """(message, cause) for the first library of needs this host lacks, or
    None when it has them all. host/netlink (and with it pyroute2, a
    quarter of a second) is imported only for a backend that needs it."""
    if PYROUTE2 in needs:
        from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
        if not netlink.HAS_PYROUTE2:
            return missing_required_lib(netlink.PYROUTE2_REQUIREMENT), str(netlink.PYROUTE2_IMPORT_ERROR)
    if LIBBPF in needs:
        try:
            libbpf.lib()
        except libbpf.BpfError as e:
            return missing_required_lib(LIBBPF_REQUIREMENT), str(e)
    return None


def run(module, backend):
    """Run backend for module (an AnsibleModule built from backend.MODULE)
    and end the module with its result: exit_json, or fail_json."""
    missing = missing_library(backend.NEEDS)
    if missing:
        module.fail_json(msg=missing[0], exception=missing[1])
    result = outcome.ensure(backend, module.params, check_mode=module.check_mode, diff=module._diff)
    for warning in result.pop("warnings", ()):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
