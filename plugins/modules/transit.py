#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: transit
short_description: Load a host's XDP datapath and attach the transit program to its substrate NIC
version_added: 0.1.0
description:
  - With O(state=present), makes sure C(/sys/fs/bpf) is a bpffs (mounting one when it is not),
    loads the datapath from the objects in O(obj_dir) with its maps pinned under O(pin_dir), and
    attaches the transit program to O(interface) through a pinned bpf_link.
  - Maps already pinned with the same layout are reused with every entry they hold. A program
    whose code changed (an upgraded object) replaces the old one in every link with one atomic
    update each; the NIC and the endpoints' interfaces are never left without a program. A map
    layout change migrates every entry to new maps (RV(migrated)); installed stage programs are
    then reloaded from O(stages).
  - A transit program already attached in another mode than O(mode) is not touched unless
    O(switch_mode=true), because switching needs a detach and an attach. The module says so.
    A program of someone else on O(interface) is never replaced.
  - A transit program that this datapath attached to another interface earlier (the substrate
    NIC changed) is detached.
  - With O(state=absent), detaches everything this pin directory attached (the transit program,
    the agents and the endpoints' pass programs), removes every pin and the pin directory, and
    with O(obj_dir) the object directory too. Changed only when something was there.
  - "Hosts that share a file system (lab hosts) may remove the same O(obj_dir) at once: it is
    first renamed out of the way, so exactly one of them removes it and reports the change, and
    the others find it gone."
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.host
  - mizar.transit.common
  - mizar.transit.common.mode
options:
  interface:
    description:
      - The substrate NIC (the host's C(mizar_interface)).
    type: str
    required: true
  switch_mode:
    description:
      - What to do when the transit program is attached in another mode than O(mode).
      - V(false) fails with an explanation. V(true) detaches it and attaches it in O(mode); the NIC
        runs no XDP program for that moment.
    type: bool
    default: false
  pin_dir:
    description:
      - Directory on a bpffs where the datapath's maps, programs and links are pinned (the host's
        C(mizar_bpf_pin_dir)).
      - When it lies below C(/sys/fs/bpf) and no bpffs is mounted there, one is mounted.
  obj_dir:
    description:
      - Directory holding C(transit.bpf.o), C(agent.bpf.o) and C(pass.bpf.o) as built by
        M(mizar.transit.bpf_build).
      - Required with O(state=present). With O(state=absent), removed if given.
    type: path
  archive:
    description:
      - The archive of the objects on the controller (C(objects.tar), written by
        M(mizar.transit.bpf_build)). The task makes O(obj_dir) hold exactly its objects before loading;
        an object that is already there with the same bytes is not written.
      - The task first sends the archive's manifest (O(manifest)). When the files in O(obj_dir) are
        exactly the archive's objects (their SHA-256, read from the files themselves, not from a
        stamp), the archive stays on the controller. Otherwise it is carried to the host, in one
        transfer however many objects there are (RV(archive_transferred)).
      - In check mode O(obj_dir) is left alone and the plan is made against the archive's objects.
    type: path
  transfer:
    description:
      - When the task's action carries O(archive) to the host. V(needed) asks the host first, with the
        manifest, and carries the archive only when O(obj_dir) does not hold exactly its objects.
        V(always) carries it without asking, which saves that first call when the host is known to
        lack the objects (the site playbook knows it from M(mizar.transit.drift_info)); the objects
        already there with the same bytes are still not written.
      - Used by the action only.
    type: str
    choices: [needed, always]
    default: needed
  manifest:
    description:
      - Set by the task's action from O(archive); leave it out. The archive's objects (paths relative to
        O(obj_dir)) with their SHA-256.
      - Without O(archive), a host whose O(obj_dir) holds other objects answers that it needs the archive,
        and does nothing else.
    type: dict
  stages:
    description:
      - The objects of the stage programs installed in this datapath (see M(mizar.transit.stage)).
      - Items of one stage make its chain, in their order.
      - Needed only when the map layout changes while stages are installed, to reload them against
        the new maps. Without them, such a migration fails before changing anything.
    type: list
    elements: dict
    default: []
    suboptions:
      stage:
        description: The stage.
        type: str
        required: true
        choices: [on_xdp_tx, on_xdp_pass, on_xdp_redirect, on_xdp_drop, on_xdp_scaled_ep]
      object:
        description: The function's C(.bpf.o), built for the new layout.
        type: path
        required: true
      program:
        description: The program in O(stages[].object); defaults as in M(mizar.transit.stage).
        type: str
  state:
    description:
      - V(present) loads and attaches, V(absent) detaches and unpins everything of O(pin_dir).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode (nothing is mounted, loaded, pinned or attached; program tags are
    predicted by loading the objects against the pinned maps and dropping them) and diff mode
    (the program on O(interface), its tag and mode, and the datapath's attachments).
  - Run M(mizar.transit.endpoint) and M(mizar.transit.map_state) after this module; they need the
    pinned programs and maps.
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
"""

EXAMPLES = r"""
- name: Load the datapath and attach the transit program
  mizar.transit.transit:
    interface: eth0
    obj_dir: /var/lib/mizar/bpf

- name: Carry the objects built on the controller to the host, then load and attach
  mizar.transit.transit:
    interface: eth0
    obj_dir: /var/lib/mizar/bpf
    archive: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/mizar.transit/bpf/objects.tar"

- name: Move a NIC without native XDP support to generic mode
  mizar.transit.transit:
    interface: eth1
    mode: generic
    switch_mode: true
    obj_dir: /var/lib/mizar/bpf

- name: An upgrade that changes the map layout while an ACL is installed
  mizar.transit.transit:
    interface: eth0
    obj_dir: /var/lib/mizar/bpf
    stages:
      - stage: on_xdp_redirect
        object: /var/lib/mizar/bpf/functions/acl.bpf.o

- name: Remove the datapath
  mizar.transit.transit:
    interface: eth0
    state: absent

- name: Remove the datapath and its objects
  mizar.transit.transit:
    interface: eth0
    obj_dir: /var/lib/mizar/bpf
    state: absent
"""

RETURN = r"""
objects:
  description: The objects of O(archive) written to O(obj_dir) (C(added), C(updated)) and removed from it.
  returned: with O(archive)
  type: dict
  sample: {added: [], updated: [transit.bpf.o], removed: []}
archive_transferred:
  description:
    - Whether the task carried O(archive) to the host; false when O(obj_dir) held its objects already.
  returned: with O(archive)
  type: bool
  sample: false
prog_id:
  description:
    - Kernel id of the transit program on O(interface).
    - Null with O(state=absent), and in check mode when a new program would be loaded.
  returned: always
  type: int
  sample: 812
tag:
  description: Tag (hash of the instructions) of the transit program on O(interface).
  returned: always
  type: str
  sample: 3b185187f1855c4c
mode:
  description: XDP mode of the transit program on O(interface).
  returned: always
  type: str
  sample: native
attached_via:
  description: How the program is attached, C(link) (a pinned bpf_link) or C(netlink).
  returned: always
  type: str
  sample: link
upgraded:
  description: A new transit program replaced the loaded one, atomically through every link.
  returned: always
  type: bool
  sample: false
migrated:
  description: The map layout changed and every entry was copied to new maps.
  returned: always
  type: bool
  sample: false
map_ids:
  description: Ids of the maps the transit program uses.
  returned: always
  type: list
  elements: int
  sample: [101, 102, 103]
programs:
  description: The pinned programs by role (transit, agent, pass), each with its prog_id and tag.
  returned: always
  type: dict
  sample: {transit: {prog_id: 812, tag: 3b185187f1855c4c}, agent: {prog_id: 813, tag: 9a0c4e2b7d6f1a35},
           pass: {prog_id: 814, tag: 1f2e3d4c5b6a7980}}
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: always
  type: list
  elements: str
  sample:
    - create the datapath maps under /sys/fs/bpf/mizar/maps and load the programs agent, pass, transit
    - attach the transit program to eth0 (native mode)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, transit


def main():
    runner.run(AnsibleModule(**transit.MODULE), transit)


if __name__ == "__main__":
    main()
