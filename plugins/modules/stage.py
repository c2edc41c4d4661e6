#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: stage
short_description: Install a network function program in a stage slot of the datapath, and configure it
version_added: 0.1.0
description:
  - The transit program calls the program of a stage slot (a tail call) before each verdict. This
    module puts a function's program there, with one atomic update of the stage table, and pins it
    under O(pin_dir)C(/progs/stage_<stage>).
  - The object is loaded against the datapath's pinned maps. The maps private to the function (its
    rules, its statistics) are created and pinned beside them on the first load and reused after.
  - With O(function), the function's configuration O(config) is written to its maps through the
    collection's configurator for that function (C(acl) has one), double-buffered, before the program
    enters the slot. The program never runs without its rules. The configuration is changed only
    when the rules differ.
  - The same program (same instructions and maps, by tag) already in the slot is left in place, so a
    second run changes nothing. A different program replaces it atomically. Maps private to the
    replaced program that no slot uses any more are unpinned.
  - With O(state=absent), the slot is emptied (the transit program then applies its own verdict)
    and the program's pin removed. Maps private to the removed program (with O(function), that
    function's maps) that no other slot uses are unpinned too; the function's configuration is
    gone with them. Without a datapath at O(pin_dir) there is nothing to remove, which is not an
    error.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common
  - mizar.transit.common.stage
options:
  object:
    description:
      - The function's BPF object (C(.bpf.o), built by M(mizar.transit.bpf_build)). Required with
        O(state=present).
    type: path
  program:
    description:
      - The program of O(object) to install.
      - Defaults to C(<stem>_<stage>) when the object has it (C(acl_on_xdp_redirect) in C(acl.bpf.o)),
        else to the object's only program.
    type: str
  function:
    description:
      - The shipped function the object is (for example C(acl)), to write O(config) into its maps.
      - Leave it out for your own functions, whose maps this module does not know how to fill.
    type: str
  config:
    description:
      - The function's configuration, as in C(mizar_functions) (already checked against the
        function's schema by the inventory validator). Only used with O(function).
    type: dict
    default: {}
  vpcs:
    description:
      - VPC names to VNIs, for configurations that name VPCs (the rules of C(acl)).
    type: dict
    default: {}
  state:
    description:
      - Whether the slot should hold the program, or be empty.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode (the object is loaded against the pinned maps to learn its program's tag,
    then dropped; nothing is pinned or written) and diff mode (the slot's program and the
    function's rules, before and after).
  - Run after M(mizar.transit.transit), which loads the datapath and its stage table.
  - A map layout change of the datapath (an upgrade) reloads installed stage programs, so
    M(mizar.transit.transit) then needs their objects in its O(mizar.transit.transit#module:stages) option.
requirements:
  - libbpf (libbpf.so.1)
  - root
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: An ACL where packets are delivered to local endpoints
  mizar.transit.stage:
    stage: on_xdp_redirect
    object: /var/lib/mizar/bpf/functions/acl.bpf.o
    function: acl
    config:
      rules:
        - vpc: blue
          src: 0.0.0.0/0
          dst: 10.1.2.0/24
          protocol: tcp
          port: 22
          action: drop
    vpcs:
      blue: 100

- name: A function of your own
  mizar.transit.stage:
    stage: on_xdp_tx
    object: /var/lib/mizar/bpf/functions/ratelimit.bpf.o

- name: Empty a slot
  mizar.transit.stage:
    stage: on_xdp_tx
    state: absent
"""

RETURN = r"""
stage:
  description: The stage.
  returned: always
  type: str
  sample: on_xdp_redirect
slot:
  description: The stage's slot in the stage table.
  returned: always
  type: int
  sample: 2
program:
  description: The program installed (null with O(state=absent)).
  returned: always
  type: str
  sample: acl_on_xdp_redirect
prog_id:
  description: Kernel id of the program in the slot (null when empty, and in check mode when it would change).
  returned: always
  type: int
  sample: 931
tag:
  description: Tag (hash of the instructions) of the program in the slot.
  returned: always
  type: str
  sample: 8c3f0d2a61b7e94f
config_changed:
  description: The function's configuration was written (or would be, in check mode).
  returned: always
  type: bool
  sample: true
config:
  description: The configuration the function's maps hold after the run, read back from them (null without O(function)).
  returned: always
  type: dict
  sample: {rules: [{vpc: blue, src: 0.0.0.0/0, dst: 10.1.2.0/24, protocol: tcp, port: 22, action: drop}]}
removed_maps:
  description: Maps private to a removed or replaced program that were unpinned because no slot uses them.
  returned: always
  type: list
  elements: str
  sample: [mzr_acl_active, mzr_acl_sets, mzr_acl_stats]
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: always
  type: list
  elements: str
  sample:
    - write the acl rules of on_xdp_redirect (first configuration)
    - install acl_on_xdp_redirect from /var/lib/mizar/bpf/functions/acl.bpf.o in stage on_xdp_redirect (slot 2)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, stage


def main():
    runner.run(AnsibleModule(**stage.MODULE), stage)


if __name__ == "__main__":
    main()
