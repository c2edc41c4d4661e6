# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for mizar.transit.transit: carries the controller's archive of BPF
objects (the module's archive option) to the host in the same task, so
that a run pays one transfer for every object instead of a task per file."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        archive = args.get("archive")
        try:
            if archive:
                if not os.path.isfile(archive):
                    raise AnsibleActionFail("archive %s does not exist on the controller (run mizar.transit.bpf_build)"
                                            % archive)
                if self._connection._shell.tmpdir is None:
                    self._make_tmp_path()
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "objects.tar")
                self._transfer_file(archive, remote)
                self._fixup_perms2((self._connection._shell.tmpdir, remote))
                args["archive"] = remote
            result.update(self._execute_module(module_name="mizar.transit.transit", module_args=args,
                                               task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
