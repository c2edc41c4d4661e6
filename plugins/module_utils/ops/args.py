# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of the options many modules share, defined once.

Their defaults and choices come from the model (defaults.py: the pin
directory, the XDP modes; capacity.STAGES: the stage names), so a module
never spells them itself. Their documentation is the doc fragment
mizar.transit.common (plugins/doc_fragments/common.py), and
tests/unit/test_module_docs.py holds the two together.

Each backend builds its module's AnsibleModule arguments with module_args().
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.module_utils.model.capacity import STAGES
from ansible_collections.mizar.transit.plugins.module_utils.model.defaults import (DEFAULT_PIN_DIR, DEFAULT_XDP_MODE,
                                                                                   XDP_MODES)

STATES = ("present", "absent")


def pin_dir():
    """pin_dir: the datapath's pin directory (fragment mizar.transit.common)."""
    return dict(type="path", default=DEFAULT_PIN_DIR)


def xdp_mode():
    """An XDP mode (fragment mizar.transit.common.mode)."""
    return dict(type="str", choices=list(XDP_MODES), default=DEFAULT_XDP_MODE)


def stage(required=True):
    """A stage slot by name (fragment mizar.transit.common.stage)."""
    return dict(type="str", required=required, choices=list(STAGES))


def state():
    """present or absent."""
    return dict(type="str", choices=list(STATES), default="present")


def module_args(argument_spec, **kwargs):
    """The keyword arguments of AnsibleModule for a module of this
    collection: every one supports check mode."""
    return dict(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
