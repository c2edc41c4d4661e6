# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backend's run on validated arguments, turned into a task's result: the
one glue between a backend (the contract in ops/runner.py) and whatever runs
it, shared by runner.run() (a module's main(), on the host) and the
bpf_build action (in the controller's own process).

It imports nothing of host/ or bpf/, so the controller pays for neither
pyroute2 nor libbpf to run a backend that needs neither.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback


def ensure(backend, params, check_mode=False, diff=False):
    """Build backend's Spec from params and ensure it; returns the task's
    result. A failure: {failed: True, msg} with, for the backend's own errors
    (backend.ERRORS), their details, and for any other, the item named
    (backend.context) in msg and the traceback in exception. Otherwise the
    backend's result, its warnings (a list of texts) included when there are
    any, and its diff, with the spec's headers, only when diff is asked for."""
    try:
        spec = backend.Spec.from_params(params)
        result = backend.ensure(spec, check_mode=check_mode)
    except backend.ERRORS as e:
        return dict(getattr(e, "details", None) or {}, failed=True, msg=str(e))
    except Exception as e:  # a failure no plan foresaw: say where, keep the traceback
        return {"failed": True, "msg": "%s: %s" % (backend.context(params), e), "exception": traceback.format_exc()}
    warnings = list(result.pop("warnings", None) or ())
    if warnings:
        result["warnings"] = warnings
    changes = result.pop("diff")
    if diff:
        if spec.headers:
            changes = dict(changes, before_header=spec.headers[0], after_header=spec.headers[1])
        result["diff"] = changes
    return result


def unchanged(state, text):
    """The result of a backend that only reads: its state, nothing changed,
    no actions, and a diff whose two sides are the same text."""
    return dict(state, changed=False, actions=[], diff={"before": text, "after": text})
