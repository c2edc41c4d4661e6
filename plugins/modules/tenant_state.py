#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tenant_state
short_description: Apply a host's tenants (its endpoints and its map entries) in one call
version_added: 0.2.0
description:
  - Brings a transit host to its rendering (the per-host output of the M(mizar.transit.render)
    filter) in one call. It does what M(mizar.transit.endpoint) and M(mizar.transit.map_state) do,
    in the order that keeps every flow working.
  - First the rendering's endpoints are created or adopted, as M(mizar.transit.endpoint) does with
    the rendering's C(local_endpoints). Then the map entries of O(scope) are applied, as
    M(mizar.transit.map_state) does, so the maps point at an endpoint's interface only once it
    exists. With O(scope=all), the endpoints that the datapath serves but the rendering leaves out
    (RV(unlisted)) are then removed, after the maps have forgotten them.
  - Run O(scope=add), then O(scope=update), then O(scope=all), each on every host before the next.
    Then a host is never pointed at another before that one holds what it needs. A host whose
    RV(pending) is false after a step needs no later step. A new host takes its whole tenant set in
    the first call.
  - In check mode nothing is created. The map entries of endpoints still to be made are planned
    against a placeholder interface index, and the diff names them by their interface, so the
    prediction lists what the run will write.
  - With C(--diff), the endpoints' properties and the maps' entries that change, under the headings
    C(endpoints), C(maps) and C(unlisted endpoints).
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
      - Where the datapath is pinned. Defaults to the rendering's C(interface.pin_dir).
    type: path
  scope:
    description:
      - How much of the map difference to apply, as in M(mizar.transit.map_state). V(add) adds only
        entries whose key is new. V(update) also changes entries whose value differs. V(all) also
        removes what the rendering no longer has, and then the unlisted endpoints.
      - The endpoints of the rendering are created or adopted in every scope.
    type: str
    choices: [add, update, all]
    default: all
notes:
  - Supports check mode and diff mode.
  - The transit program must be loaded (M(mizar.transit.transit)), so that the maps and the agent
    and pass programs exist.
seealso:
  - module: mizar.transit.endpoint
  - module: mizar.transit.map_state
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.host
"""

EXAMPLES = r"""
- name: Make this host's endpoints and apply all of its map entries
  mizar.transit.tenant_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"

# Make before break across hosts: each task runs on every host before the next.
- name: Make the endpoints and add the new entries
  mizar.transit.tenant_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
    scope: add
  register: made

- name: Change the entries that differ
  mizar.transit.tenant_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
    scope: update
  register: updated
  when: made.pending

- name: Remove what the rendering no longer has, entries then endpoints
  mizar.transit.tenant_state:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
    scope: all
  when: updated.pending | default(false)
"""

RETURN = r"""
actions:
  description:
    - What was done (in check mode, what would be done), in order. The endpoints' steps (each starting
      with its endpoint's name), then the batches of map slot writes, then the removal of the unlisted
      endpoints.
  returned: always
  type: list
  elements: str
  sample:
    - "blue/web/web1: create network namespace blue-web1"
    - "stage: write 1 slot of mzr_endpoints"
    - "publish: write 1 slot of mzr_endpoints"
endpoints:
  description:
    - One item per endpoint of the rendering, as M(mizar.transit.endpoint) returns them (C(name), C(state),
      C(changed), C(actions), C(iface), C(mtu), C(ifindex), C(netns), C(mac)).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: blue/web/web1, state: present, changed: false, actions: [], iface: mze76b32797f, mtu: 1450,
       ifindex: 57, netns: blue-web1, mac: "02:e7:6b:32:79:7f"}
unlisted:
  description:
    - The endpoints the datapath served, before this run, that the rendering leaves out (C(name), C(iface),
      C(netns)). O(scope=all) removes them.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: mz0123456789, iface: mz0123456789, netns: blue-old1}
changes:
  description: The map entries added, changed or removed, as M(mizar.transit.map_state) returns them.
  returned: always
  type: list
  elements: dict
  sample:
    - map: endpoints
      op: add
      entry: "blue/web/web2: vni 100 10.1.1.11 simple on node2 (192.168.50.12) mac 02:1b:..."
counts:
  description: How many entries of each map the host holds after the run (or would, in check mode), as M(mizar.transit.map_state) returns them.
  returned: always
  type: dict
  sample: {endpoints: 5, networks: 0, vpcs: 1, agents: 2, substrate: 3, peers: 0}
pending:
  description:
    - Whether a later O(scope) still has work after this one. Map entries to change or remove, or unlisted
      endpoints to remove. Always false with O(scope=all).
  returned: always
  type: bool
  sample: false
writes:
  description: The number of map slots written, as M(mizar.transit.map_state) counts them.
  returned: always
  type: int
  sample: 12
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, tenant_state


def main():
    runner.run(AnsibleModule(**tenant_state.MODULE), tenant_state)


if __name__ == "__main__":
    main()
