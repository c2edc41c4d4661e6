# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for mizar.transit.diagram: the topology is laid out and written
here, in the controller's own process, with the module's backend
(ops/diagram.py), run as the bpf_build action runs its own: the task's
arguments checked against the module's argument spec, the same result and
messages as the module's main(), check mode and --diff honoured, the task's
connection never opened.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mizar.transit.plugins.action.bpf_build import ActionModule as BackendAction
from ansible_collections.mizar.transit.plugins.module_utils.ops import diagram


class ActionModule(BackendAction):

    BACKEND = diagram
