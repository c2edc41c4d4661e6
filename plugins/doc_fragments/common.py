# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the options many mizar.transit modules share; their
argument spec is plugins/module_utils/ops/args.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # mizar.transit.common: the datapath's pin directory
    DOCUMENTATION = r"""
options:
  pin_dir:
    description:
      - The datapath's pin directory, on a bpffs (the host's C(mizar_bpf_pin_dir)), where
        M(mizar.transit.transit) loads the datapath.
    type: path
    default: /sys/fs/bpf/mizar
"""

    # mizar.transit.common.mode: the XDP mode of the programs a module attaches
    MODE = r"""
options:
  mode:
    description:
      - XDP mode of the programs the module attaches (the host's C(mizar_xdp_mode)). V(native) runs
        in the NIC's driver; V(generic) works with any NIC, slower.
    type: str
    choices: [native, generic]
    default: native
"""

    # mizar.transit.common.controller: a module whose action plugin does its work
    # on the controller, in the ansible-playbook process (bpf_build, diagram)
    CONTROLLER = r"""
attributes:
  action:
    support: full
    details: The action plugin does the module's work in the controller's own process.
  async:
    support: none
  become:
    support: none
    details: The work is done as the user running C(ansible-playbook); C(become) is not applied.
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  connection:
    support: none
    details: The task's connection is never opened; its host may be any host of the play.
  delegation:
    support: N/A
    details: The work always happens on the controller; C(delegate_to) changes nothing and is not needed.
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

    # mizar.transit.common.host: a module that changes the host it runs on
    # (transit, endpoint, map_state, tenant_state, stage)
    HOST = r"""
attributes:
  check_mode:
    support: full
    details: Reads the host and reports what it would change (RV(actions), the diff), changing nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

    # mizar.transit.common.reader: a module that only reads the host (transit_info, drift_info)
    READER = r"""
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs in check mode as it does otherwise.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # mizar.transit.common.stage: a stage slot of the datapath
    STAGE = r"""
options:
  stage:
    description:
      - The stage slot (see the stages in C(docs/architecture.md)).
      - Required, unless the module is given a list of slots instead (O(mizar.transit.stage#module:functions)).
    type: str
    choices: [on_xdp_tx, on_xdp_pass, on_xdp_redirect, on_xdp_drop, on_xdp_scaled_ep]
"""
