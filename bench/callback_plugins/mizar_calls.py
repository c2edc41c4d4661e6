# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for bench/control.py: what each host ran in a playbook, and how long.

Enabled with ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=mizar_calls; writes JSON to $MIZAR_CALLS_OUT:

    {"tasks": [{"host", "task", "action", "status", "seconds", "remote", "calls"}, ...]}

and, for mizar.transit.drift_info (site.yml's gate), "result": its in_sync,
drift and checked.

`remote` is true when the task ran a module on the host itself: not an
action that stays on the controller (set_fact, include_role, fail, ...),
not delegated to localhost, and not skipped. `calls` is how many times the
module ran (a loop runs it once per item).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: mizar_calls
type: aggregate
short_description: Record the tasks each host ran, for bench/control.py
description:
  - Writes every task result (host, task, action, status, seconds, whether a module ran on the host) as JSON
    to the file named by the environment variable E(MIZAR_CALLS_OUT).
requirements:
  - enable in configuration
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

# Actions that never run a module on the target host.
CONTROLLER_ONLY = frozenset(
    "ansible.builtin." + a for a in (
        "set_fact", "include_role", "import_role", "include_tasks", "import_tasks", "fail", "assert",
        "debug", "meta", "validate_argument_spec", "include_vars", "add_host", "group_by", "pause",
        "set_stats", "end_play"))
SHORT = frozenset(a.rsplit(".", 1)[1] for a in CONTROLLER_ONLY)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mizar_calls"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._started = {}
        self._tasks = []

    def _start(self, task, host=None):
        self._started[(task._uuid, host)] = time.monotonic()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_runner_on_start(self, host, task):
        self._start(task, host.get_name())

    def _record(self, result, status):
        task, host = result._task, result._host.get_name()
        t0 = self._started.get((task._uuid, host)) or self._started.get((task._uuid, None)) or time.monotonic()
        action = task.action if "." in task.action else "ansible.builtin." + task.action
        delegated = (task.delegate_to or "") in ("localhost", "127.0.0.1")
        remote = (status in ("ok", "changed", "failed") and action not in CONTROLLER_ONLY and
                  task.action not in SHORT and not delegated)
        items = result._result.get("results")
        calls = 0
        if remote:  # a loop runs the module once per item that was not skipped
            calls = sum(1 for r in items if not r.get("skipped")) if isinstance(items, list) else 1
        record = {"host": host, "task": task.get_name(), "action": action, "status": status,
                  "seconds": round(time.monotonic() - t0, 3), "remote": remote, "calls": calls}
        if action == "mizar.transit.drift_info":  # what the gate found
            record["result"] = dict((k, result._result.get(k)) for k in ("in_sync", "drift", "checked"))
        self._tasks.append(record)

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        out = os.environ.get("MIZAR_CALLS_OUT")
        if out:
            with open(out, "w") as f:
                json.dump({"tasks": self._tasks}, f, indent=1)
