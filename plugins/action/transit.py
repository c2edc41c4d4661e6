# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for mizar.transit.transit: carries the controller's archive of BPF
objects (the module's archive option) to the host in the same task, and only
when the host needs it.

The module is first asked with the archive's manifest (each object's
SHA-256, bpf/objects.py). A host whose object directory holds exactly those
objects (the files are hashed, not a stamp trusted) goes on with the task at
once, and the archive never leaves the controller. Otherwise the module
answers archive_needed, changing nothing; the archive is then transferred,
once for every object, and the module asked again with it. The result says
which happened (archive_transferred). With transfer: always (a host known to
lack the objects) the archive is carried at once, without the first call."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.mizar.transit.plugins.module_utils.bpf import objects

MODULE = "mizar.transit.transit"


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        archive = args.pop("archive", None)
        ask_first = args.pop("transfer", "needed") != "always"
        try:
            if not archive or args.get("state", "present") == "absent":
                result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
                return result
            if not os.path.isfile(archive):
                raise AnsibleActionFail("archive %s does not exist on the controller (run mizar.transit.bpf_build)"
                                        % archive)
            try:
                args["manifest"] = objects.manifest(archive)
            except objects.ObjectsError as e:
                raise AnsibleActionFail("archive %s: %s" % (archive, e))
            res = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars) if ask_first else {}
            transferred = bool(res.pop("archive_needed", False)) or not ask_first
            if transferred:
                if self._connection._shell.tmpdir is None:
                    self._make_tmp_path()
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir, objects.ARCHIVE)
                self._transfer_file(archive, remote)
                self._fixup_perms2((self._connection._shell.tmpdir, remote))
                res = self._execute_module(module_name=MODULE, module_args=dict(args, archive=remote),
                                           task_vars=task_vars)
                res.pop("archive_needed", None)
            res["archive_transferred"] = transferred
            result.update(res)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
