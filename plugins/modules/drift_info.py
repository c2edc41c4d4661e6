#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: drift_info
short_description: Report whether a transit host already holds its rendering
version_added: 0.1.0
description:
  - Compares a host with its rendering (the filter C(mizar.transit.render)) and the build's objects, by
    asking every module the roles call, with the arguments the roles give it, what it would do in check
    mode. RV(in_sync) is true exactly when none of the roles' tasks would change anything on the host.
  - The parts are compared in the roles' order, and the first one that differs ends the comparison.
    C(transit) is the BPF objects, the pinned datapath and the program on the substrate NIC. C(endpoints)
    is the host's endpoints, and the endpoints its datapath serves that the rendering leaves out. C(maps)
    is every map entry. C(stages) is every function in its stage, and no program in a stage that no
    function claims.
  - C(mizar.transit.site) calls it once per host after rendering and building, and ends the play for the
    hosts in sync, so that a run that changes nothing costs one module call per host.
  - A part that cannot be compared (a library missing, no datapath loaded yet, an endpoint's interface
    not created yet) counts as drift, with the reason; the module only fails on a rendering it cannot read.
  - Changes nothing.
notes:
  - The transit role's package task (C(transit_manage_packages)) is not compared; a host where the
    comparison can run has the libraries the modules need, and one that lacks them counts as drift.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.reader
options:
  rendered:
    description:
      - This host's rendering, an item of the filter C(mizar.transit.render)'s result
        (C(mizar_rendered[inventory_hostname]) in C(mizar.transit.site)).
    type: dict
    required: true
  manifest:
    description:
      - The objects the host should hold, each name under the objects directory with its SHA-256, as
        C(mizar.transit.bpf_build) returns it. Without it the host's objects are not compared.
    type: dict
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
seealso:
  - module: mizar.transit.transit
  - module: mizar.transit.endpoint
  - module: mizar.transit.map_state
  - module: mizar.transit.stage
"""

EXAMPLES = r"""
- name: Compare the host with its rendering
  mizar.transit.drift_info:
    rendered: "{{ mizar_rendered[inventory_hostname] }}"
    manifest: "{{ mizar_build.manifest }}"
  register: mizar_drift

- name: Leave the hosts that have nothing to change
  ansible.builtin.meta: end_host
  when: mizar_drift.in_sync
"""

RETURN = r"""
in_sync:
  description: Whether the host holds its rendering, so that no task of the roles would change it.
  returned: always
  type: bool
  sample: false
drift:
  description:
    - By part (C(transit), C(endpoints), C(maps), C(stages), or C(host) for a library missing), what its
      module would do, as that module's C(actions) would say it; empty when the host is in sync. Only the
      first part that differs is listed.
  returned: always
  type: dict
  sample: {maps: ["add 1 entry to mzr_endpoints", "update 2 entries of mzr_networks"]}
checked:
  description: The parts compared, in order; the comparison ends at the first that differs.
  returned: always
  type: list
  elements: str
  sample: [transit, endpoints, maps]
objects_differ:
  description:
    - Whether the host's objects directory does not hold exactly the build's objects (O(manifest)), so that
      M(mizar.transit.transit) will carry the archive there; the site playbook then has it carried without
      asking the host first (its C(transfer=always)).
  returned: always
  type: bool
  sample: true
actions:
  description: What was done; always empty, the module only reads.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import drift_info, runner


def main():
    runner.run(AnsibleModule(**drift_info.MODULE), drift_info)


if __name__ == "__main__":
    main()
