#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: map_state
short_description: Apply a host's rendered map entries to its datapath maps
version_added: 0.1.0
description:
  - Makes the pinned datapath maps of a transit host hold exactly the entries of its
    rendering (the per-host output of the M(mizar.transit.render) filter) and nothing else.
  - Adds, changes and removes only the difference, in batches, make before break. New and
    changed entries become visible before old ones are removed, so unaffected flows never
    see a gap and a lookup never sees a half-written entry.
  - With C(--diff), lists per map the entries that would be added, changed or removed, by the
    names of their VPCs, networks, endpoints, VPC peerings and hosts.
  - Interfaces named in the rendering (the substrate NIC, endpoints' host-side interfaces)
    must exist. Create endpoints with M(mizar.transit.endpoint) first.
author:
  - Mizar Transit Developers (@mizar-transit)
options:
  rendered:
    description:
      - This host's rendering. This is one value of the dictionary that the
        C(mizar.transit.render) filter returns.
    type: dict
    required: true
  pin_dir:
    description:
      - Where the datapath's maps are pinned. Defaults to the rendering's C(interface.pin_dir).
    type: path
  scope:
    description:
      - How much of the difference to apply, so that a change across many hosts can go step by step.
      - V(add) adds only entries whose key is new. V(update) also changes entries whose value
        differs. V(all) also removes what the rendering no longer has.
      - Run V(add), then V(update), then V(all), each on every host before the next. A host is then
        never pointed at another before that one holds what it needs. A host whose RV(pending) is
        false after a step needs no later step.
    type: str
    choices: [add, update, all]
    default: all
notes:
  - Supports check mode and diff mode.
  - The transit program must be loaded (M(mizar.transit.transit)), so that the maps exist.
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.host
"""

EXAMPLES = r"""
- name: Apply this host's map entries
  mizar.transit.map_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"

- name: Show what an inventory change would do, touching nothing
  mizar.transit.map_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
actions:
  description:
    - The batches of slot writes done (in check mode, to be done), in the order of their phases
      (prepare, stage, publish, retire, restage, republish, clean, free).
  returned: always
  type: list
  elements: str
  sample:
    - "stage: write 1 slot of mzr_endpoints"
    - "publish: write 1 slot of mzr_endpoints"
changes:
  description:
    - The entries added, changed or removed, one item per entry, in readable form. A scaled
      endpoint's backends are entries of map C(members), one per backend.
    - "Items with C(op: repair) (and C(what)) put right what an interrupted run left behind: a stale
      second version of an entry, tombstones left uncleaned, a substrate slot nobody uses."
  returned: always
  type: list
  elements: dict
  sample:
    - map: endpoints
      op: add
      entry: "blue/web/web2: vni 100 10.1.1.11 simple on node2 (192.168.50.12) mac 02:1b:..."
counts:
  description: How many entries of each map the host holds after the run (or would, in check mode).
  returned: always
  type: dict
  sample: {endpoints: 5, networks: 0, vpcs: 1, agents: 2, substrate: 3, peers: 0}
pending:
  description:
    - Whether a later O(scope) still has work after this one (V(update) after V(add), V(all) after
      either). Always false with O(scope=all). A play can skip the later steps on a host where this is false.
  returned: always
  type: bool
  sample: false
writes:
  description: The number of map slots written.
  returned: always
  type: int
  sample: 12
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import map_state, runner


def main():
    runner.run(AnsibleModule(**map_state.MODULE), map_state)


if __name__ == "__main__":
    main()
