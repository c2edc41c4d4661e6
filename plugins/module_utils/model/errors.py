# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory errors: what is wrong, where, and how to fix it.

Every check of the inventory reports into one ErrorList, so an operator sees
all the defects of an inventory at once. An error names the item by its path
in the inventory (``mizar_vpcs[1].networks[0].endpoints[3].ip``, or
``hostvars[h1].mizar_interface`` for a host variable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re


class InventoryError:
    """One defect of the inventory."""

    __slots__ = ("path", "message")

    def __init__(self, path, message):
        self.path = path
        self.message = message

    def as_dict(self):
        return {"path": self.path, "message": self.message}

    def __str__(self):
        return "%s: %s" % (self.path, self.message)

    def __repr__(self):
        return "InventoryError(%r, %r)" % (self.path, self.message)

    def __eq__(self, other):
        return isinstance(other, InventoryError) and (self.path, self.message) == (other.path, other.message)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.path, self.message))


_TOKEN = re.compile(r"(\d+)")


def _natural(path):
    """Sort key that puts endpoints[2] before endpoints[10]."""
    return [int(t) if t.isdigit() else t for t in _TOKEN.split(path)]


class ErrorList(list):
    """The errors of one inventory, in the order of their paths."""

    def add(self, path, message):
        self.append(InventoryError(path, message))

    def sorted(self):
        """A copy in path order (stable: errors of one path keep their order)."""
        return ErrorList(sorted(self, key=lambda e: _natural(e.path)))

    def format(self):
        return format_errors(self)

    def as_dicts(self):
        return [e.as_dict() for e in self]


def format_errors(errors):
    """The errors as text for a person: a count, then one line per error."""
    if not errors:
        return "the inventory is valid"
    lines = ["%d error%s in the mizar inventory (nothing was applied):"
             % (len(errors), "" if len(errors) == 1 else "s")]
    for e in errors:
        lines.append("- %s" % e)
    return "\n".join(lines)


class InvalidInventory(Exception):
    """Raised when an inventory cannot be rendered; carries every error."""

    def __init__(self, errors):
        self.errors = ErrorList(errors)
        super(InvalidInventory, self).__init__(format_errors(self.errors))


def suggest(word, candidates):
    """' (did you mean "x"?)' for a likely typo of one of candidates, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return ' (did you mean "%s"?)' % close[0] if close else ""


def close_match(word, candidates, cutoff=0.8):
    """The candidate word is most likely a typo of, or None."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None
