# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for mizar.transit.bpf_build: the build runs here, in the
controller's own process, with the module's backend (ops/bpf_build.py).

A build happens on the controller whatever host the task names, so there
is nothing to gain from sending a module anywhere, and a re-run that has
nothing to build is mostly the cost of starting one: a new Python, its
imports, the module's payload. The task's arguments are checked against the
module's own argument spec (bpf_build.MODULE), as the module checks them,
then the backend is run as a module's main() runs it (ops/outcome.py): the same result, the same messages
for the same mistakes, check mode and --diff honoured. The task's host, its
connection and delegate_to play no part, and the connection is never opened;
become does not apply: the build runs as the user running ansible-playbook.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.mizar.transit.plugins.module_utils.ops import bpf_build, outcome

# The keywords of AnsibleModule that ArgumentSpecValidator takes too.
VALIDATION = ("argument_spec", "mutually_exclusive", "required_together", "required_one_of", "required_if",
              "required_by")


class ActionModule(ActionBase):
    """Runs BACKEND (an ops/ backend of a module that works on the
    controller) in this process; the diagram action is this one with its
    own backend."""

    _requires_connection = False
    BACKEND = bpf_build

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        result.update(outcome.ensure(self.BACKEND, self._params(), check_mode=self._task.check_mode,
                                     diff=self._task.diff))
        return result

    def _params(self):
        """The task's arguments checked, converted and completed with their
        defaults as AnsibleModule(**BACKEND.MODULE) does it, refused (in
        check mode too) with its words, naming the module as the task does.
        ActionBase.validate_argument_spec would name this file instead."""
        validator = ArgumentSpecValidator(**dict((k, v) for k, v in self.BACKEND.MODULE.items() if k in VALIDATION))
        validation = validator.validate(self._task.args)
        if validation.error_messages:
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                msg = "Unsupported parameters for (%s) module: %s" % (self._task.resolved_action or self._task.action,
                                                                      msg)
            raise AnsibleActionFail(msg, obj=self._task.args)
        return validation.validated_parameters
