# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans as lists of steps: what a module will do, said for people, and the
call that does it.

Modules read the current state, plan the steps that bring it to the wanted
state, and carry them out unless in check mode. A run changes something
exactly when its plan is not empty, and the step texts are what it reports
(`actions`), in check mode too. The one exception is a step that finds its
work done by another host meanwhile (DONE_ELSEWHERE): it drops out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.ops.errors import BackendError


class StepError(BackendError):
    """A step failed; says which one and what was done before it (the
    error of carry_out() for a caller that names no class of its own)."""


# What a step's call returns when it found its work already done by someone
# else since the state was read (hosts sharing a file system remove one
# directory at once): the step did nothing, and is not reported as done.
DONE_ELSEWHERE = object()


class Step:
    """One step: text for people, fn(*args, **kwargs) to do it."""

    __slots__ = ("text", "fn", "args", "kwargs")

    def __init__(self, text, fn, *args, **kwargs):
        self.text = text
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self):
        return "Step(%r)" % self.text


def carry_out(steps, what=None, check_mode=False, error=StepError):
    """Run the steps in order (none in check mode). Returns their texts.
    The first failure raises error (a backend's error class) naming `what`
    (when given), the step and the steps already done; the original
    exception is its __cause__. A step's own refusal, an error already,
    stands as it is."""
    done = []
    if check_mode:
        return [s.text for s in steps]
    for s in steps:
        try:
            outcome = s()
        except error:
            raise
        except Exception as e:
            raise error("%s%s failed: %s (done before: %s)" % (
                "%s: " % what if what else "", s.text, e, "; ".join(done) or "nothing")) from e
        if outcome is not DONE_ELSEWHERE:
            done.append(s.text)
    return done
