# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the backends' own errors.

Every backend in ops/ refuses or fails with its own subclass of
BackendError (its ERRORS): the message names the item and the field at
fault, and details, a dict, holds more for the task's result (say, a
verifier's whole log). runner.run() turns one into a failed result: the
message as msg, each key of details as a field beside it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class BackendError(Exception):
    """A module's refusal or failure, said for people (the message), with
    details: {field: value} added to the failed task's result."""

    def __init__(self, msg, details=None):
        super(BackendError, self).__init__(msg)
        self.details = details or {}


def require_rendering(rendered, fields, error):
    """Raise error (a BackendError class) unless rendered, a host's
    rendering (mizar.transit.render), has every one of fields; the message
    names the host and the fields it lacks."""
    missing = [k for k in fields if k not in (rendered or {})]
    if missing:
        raise error("rendered: %s is not a host's rendering (mizar.transit.render): it lacks %s" % (
            (rendered or {}).get("host") or "the value", ", ".join(missing)))
