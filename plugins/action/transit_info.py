# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for mizar.transit.transit_info: gives the module the counters maps
that the shipped functions declare in their schemas (bpf/functions/*.yml,
`counters`), which only the controller holds, so that the module reports
every installed function's counters by name. Declarations the task gives
in function_counters (a function of the user's own) are added to them, and
win for the same function. Then the module runs on the host as usual."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mizar.transit.plugins.module_utils.model import functions

MODULE = "mizar.transit.transit_info"


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        try:
            declared = functions.default_registry().counter_maps()
        except functions.SchemaError as e:
            raise AnsibleActionFail("the shipped functions' schemas: %s" % e)
        given = args.get("function_counters")
        if given is not None and not isinstance(given, dict):
            raise AnsibleActionFail("function_counters: a mapping of function name to {map, counters}, not %r"
                                    % (given,))
        declared.update(given or {})
        args["function_counters"] = declared
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result
