#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: stage
short_description: Install chains of network function programs in the stages of the datapath, and configure them
version_added: 0.1.0
description:
  - The transit program and the agent call the chain of a stage (tail calls) before each verdict;
    its first function gets the packet, and each one that lets it go passes it to the next. This
    module puts a chain there, swapped whole (the stage table keeps two banks per stage; the new
    chain fills the idle one, which then becomes live, and the old one is emptied once no packet
    runs it), and pins each function under O(pin_dir)C(/progs/stage_<stage>) (the first) and
    C(stage_<stage>_<position>) (the others). A packet runs the old chain or the new one, whole.
  - One stage with one function (O(stage) and its other options), or a host's functions in one call
    (O(functions)). The single form makes its function the stage's whole chain, replacing every
    function the stage ran before; give O(functions) to keep several. The items of O(functions) that
    name one stage with state C(present) make its chain, in their order (at most 8, each program
    once). A program that never lets a packet go on (it does not call C(mzr_stage_next()), so it
    does not use the stage table C(mzr_stages)) may only be the last of its chain; before another
    function it is refused, naming both. With O(functions), every stage is read and every item
    planned before anything is done; an item that cannot be brought to its state fails the task,
    naming it and the field, and no stage is changed. Then the steps are carried out in the order
    the items name the stages.
  - With O(exclusive=true), every stage that O(functions) does not claim is emptied as O(state=absent)
    empties one, after the listed ones (RV(cleared)).
  - The object is loaded against the datapath's pinned maps. The maps private to the function (its
    rules, its statistics) are created and pinned beside them on the first load and reused after.
  - With O(function), the function's configuration O(config) is written to its maps through the
    collection's configurator for that function (C(acl) and C(ratelimit) have one), double-buffered, before the program
    enters the stage. The program never runs without its rules. The configuration is changed only
    when the rules differ. A function at several stages keeps one set of rules in maps they share, so
    its items must give the same O(functions[].config); the rules are written once.
  - The same chain (the same programs, by tag and maps, in the same order) already in the stage is
    left in place, so a second run changes nothing. A different chain replaces it as a whole. Maps
    private to the replaced programs that no stage uses any more are unpinned.
  - With O(state=absent), the stage is emptied (the pipeline then applies its own verdict) and the
    programs' pins removed. Maps private to the removed programs (with O(function), that
    function's maps) that no other stage uses once the run is done are unpinned too; the function's
    configuration is gone with them. Without a datapath at O(pin_dir) there is nothing to remove,
    which is not an error.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.host
  - mizar.transit.common
  - mizar.transit.common.stage
options:
  object:
    description:
      - The function's BPF object (C(.bpf.o), built by M(mizar.transit.bpf_build)). Required with
        O(state=present), unless O(functions) is given.
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
      - Whether the slot should hold the program, or be empty. With O(functions), the state of the
        items that give none.
    type: str
    choices: [present, absent]
    default: present
  functions:
    description:
      - A host's functions, each as the single form's options describe (O(functions[].stage)
        required), with its own O(functions[].state). O(vpcs) and O(pin_dir) apply to all of them.
      - The present items of one stage make its chain, in the list's order. A stage whose items are
        all absent is emptied.
      - The items of the rendering's C(functions) give O(functions[].name), O(functions[].stage),
        O(functions[].object), O(functions[].config), and O(functions[].function) for the shipped
        ones (the rendering's C(program) names the function, not a program of the object).
      - Mutually exclusive with O(stage), O(object), O(program), O(function) and O(config).
    type: list
    elements: dict
    suboptions:
      name:
        description: The function's name, for messages (the inventory's C(mizar_functions[].name)).
        type: str
      stage:
        description: The stage (see O(stage)).
        type: str
        required: true
        choices: [on_xdp_tx, on_xdp_pass, on_xdp_redirect, on_xdp_drop, on_xdp_scaled_ep]
      object:
        description: The function's BPF object (see O(object)). Required with state C(present).
        type: path
      program:
        description: The program of O(functions[].object) to install (see O(program)).
        type: str
      function:
        description: The shipped function the object is, to write O(functions[].config) into its maps
          (see O(function)).
        type: str
      config:
        description: The function's configuration (see O(config)).
        type: dict
        default: {}
      state:
        description: Whether this function should be in the stage's chain; defaults to O(state).
        type: str
        choices: [present, absent]
  rendered:
    description:
      - A host's rendering (an item of the filter C(mizar.transit.render)'s result), whose C(functions)
        become O(functions) and whose C(vnis) become O(vpcs). Each of its functions gives its name,
        stage, object and config, and a shipped one also the function whose rules are written (the
        rendering's C(program) names that function, not a program of the object).
      - Mutually exclusive with O(functions), O(vpcs) and the single form's options.
    type: dict
  exclusive:
    description:
      - With O(functions) or O(rendered), also empty every stage the list does not claim (see above).
    type: bool
    default: false
notes:
  - Supports check mode (the object is loaded against the pinned maps to learn its program's tag,
    then dropped; nothing is pinned or written) and diff mode (the stage's chain in order and the
    functions' rules, before and after; with O(functions), every stage).
  - Run after M(mizar.transit.transit), which loads the datapath and its stage table.
  - A map layout change of the datapath (an upgrade) reloads installed stage programs, so
    M(mizar.transit.transit) then needs their objects in its O(mizar.transit.transit#module:stages) option.
requirements:
  - libbpf (libbpf.so.1)
  - root
"""

EXAMPLES = r"""
- name: This host's functions, as rendered, in one call; the stages they leave out are emptied
  mizar.transit.stage:
    functions:
      - name: acl-blue
        stage: on_xdp_redirect
        object: /var/lib/mizar/bpf/functions/acl.bpf.o
        function: acl
        config:
          rules:
            - {vpc: blue, src: 10.1.1.11/32, dst: 10.1.2.10/32, protocol: icmp, action: drop}
      - name: flowlog
        stage: on_xdp_tx
        object: /var/lib/mizar/bpf/functions/flowlog.bpf.o
    vpcs:
      blue: 100
    exclusive: true

- name: This host's functions as the site playbook rendered them, and no program elsewhere
  mizar.transit.stage:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
    pin_dir: "{{ mizar_rendered[inventory_hostname].interface.pin_dir }}"
    exclusive: true

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

- name: Ingress limits, of an endpoint and of its VPC as a whole
  mizar.transit.stage:
    stage: on_xdp_redirect
    object: /var/lib/mizar/bpf/functions/ratelimit.bpf.o
    function: ratelimit
    config:
      limits:
        - {vpc: blue, ip: 10.1.2.10, pps: 20000, bps: 100000000, burst: 10ms}
        - {vpc: blue, bps: 1000000000, burst: 10ms}
    vpcs:
      blue: 100

- name: A function of your own
  mizar.transit.stage:
    stage: on_xdp_tx
    object: /var/lib/mizar/bpf/functions/flowlog.bpf.o

- name: Two functions in one stage, in this order; a packet the ACL drops never reaches the second
  mizar.transit.stage:
    functions:
      - {name: acl-blue, stage: on_xdp_redirect, object: /var/lib/mizar/bpf/functions/acl.bpf.o, function: acl,
         config: {rules: [{vpc: blue, dst: 10.1.2.0/24, protocol: tcp, port: 22, action: drop}]}}
      - {name: flowlog, stage: on_xdp_redirect, object: /var/lib/mizar/bpf/functions/flowlog.bpf.o}
    vpcs: {blue: 100}

- name: Empty a stage
  mizar.transit.stage:
    stage: on_xdp_tx
    state: absent
"""

RETURN = r"""
stage:
  description: The stage.
  returned: with O(stage)
  type: str
  sample: on_xdp_redirect
slot:
  description: The stage's number (its first slot in the stage table).
  returned: with O(stage)
  type: int
  sample: 2
program:
  description: The program installed, the first of the chain (null with O(state=absent)).
  returned: with O(stage)
  type: str
  sample: acl_on_xdp_redirect
prog_id:
  description: Kernel id of the chain's first program (null when empty, and in check mode when it would change).
  returned: with O(stage)
  type: int
  sample: 931
tag:
  description: Tag (hash of the instructions) of the chain's first program.
  returned: with O(stage)
  type: str
  sample: 8c3f0d2a61b7e94f
config_changed:
  description: The function's configuration was written (or would be, in check mode).
  returned: with O(stage)
  type: bool
  sample: true
config:
  description: The configuration the function's maps hold after the run, read back from them (null without O(function)).
  returned: with O(stage)
  type: dict
  sample: {rules: [{vpc: blue, src: 0.0.0.0/0, dst: 10.1.2.0/24, protocol: tcp, port: 22, action: drop}]}
chain:
  description:
    - The stage's chain after the run, in order, one item per function, each with C(name), C(program), C(prog_id),
      C(tag), C(config_changed) and C(config) as above.
  returned: with O(stage)
  type: list
  elements: dict
  sample: [{name: acl-blue, program: acl_on_xdp_redirect, prog_id: 931, tag: 8c3f0d2a61b7e94f, config_changed: false,
            config: {rules: []}}]
removed_maps:
  description: Maps private to a removed or replaced program that were unpinned because no stage uses them.
  returned: with O(stage)
  type: list
  elements: str
  sample: [mzr_acl_active, mzr_acl_sets, mzr_acl_stats]
stages:
  description:
    - By stage, each stage the items name and each stage O(exclusive) emptied, with the single form's C(stage),
      C(slot), C(program), C(prog_id), C(tag), C(config_changed), C(config), C(chain) and C(removed_maps) (the top
      fields are the chain's first function's), and C(name) (the first item's, null for a stage O(exclusive)
      emptied), C(state), C(changed) and its own C(actions).
    - A map two stages let go is unpinned once, and listed under the last of them.
  returned: with O(functions)
  type: dict
  sample:
    on_xdp_redirect: {name: acl-blue, state: present, changed: false, actions: [], stage: on_xdp_redirect, slot: 2,
                      program: acl_on_xdp_redirect, prog_id: 931, tag: 8c3f0d2a61b7e94f, config_changed: false,
                      config: {rules: []}, chain: [], removed_maps: []}
cleared:
  description: The stages O(exclusive) emptied (in check mode, would empty), in slot order.
  returned: with O(functions)
  type: list
  elements: str
  sample: [on_xdp_tx]
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
