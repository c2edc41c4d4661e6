#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: diagram
short_description: Draw the overlay's topology as SVG, and PNG, with Graphviz
version_added: 0.2.0
description:
  - Lays out a topology graph made by the filter P(mizar.transit.diagram#filter) from the inventory
    (transit hosts and their roles, VPCs, networks, endpoints and where they live, tunnel peers,
    scaled endpoints and their backends, functions) with Graphviz's C(dot), and writes it as an SVG
    file, and as a PNG file when O(png) is given.
  - A file is written only when its content differs from what is there, and whole (a temporary file
    renamed over it), so a re-run with an unchanged inventory writes nothing and reports no change.
  - Touches no transit host. The playbook C(mizar.transit.diagram) validates the inventory, then runs
    this module on the controller.
  - "The drawing always happens on the controller, in the C(ansible-playbook) process itself: the
    collection's action plugin runs it there, whatever host the task runs for."
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
  - mizar.transit.common.controller
options:
  graph:
    description:
      - The topology graph, the result of the filter P(mizar.transit.diagram#filter).
    type: dict
    required: true
  svg:
    description:
      - Path of the SVG file to write. Missing directories are created.
    type: path
    required: true
  png:
    description:
      - Path of a PNG file to write as well. No PNG is written when it is not given.
    type: path
notes:
  - Supports check mode (lays the graph out and reports which files would be written, writes none)
    and diff mode (the SVG's text, before and after).
requirements:
  - Graphviz's C(dot) on C(PATH) (the C(graphviz) package of Debian, Ubuntu, Fedora or Homebrew)
  - the Python package C(graphviz) (C(requirements-test.txt) of the collection pins it)
"""

EXAMPLES = r"""
- name: Draw the topology of the inventory
  mizar.transit.diagram:
    graph: "{{ hostvars | mizar.transit.diagram(groups['mizar_hosts']) }}"
    svg: topology.svg
    png: topology.png
"""

RETURN = r"""
svg:
  description: The absolute path of the SVG file.
  returned: success
  type: str
  sample: /home/ops/topology.svg
png:
  description: The absolute path of the PNG file, or null when none was asked for.
  returned: success
  type: str
  sample: /home/ops/topology.png
written:
  description: The files written (in check mode, that would be written), in path order.
  returned: success
  type: list
  elements: str
  sample: [/home/ops/topology.svg]
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: success
  type: list
  elements: str
  sample: ["write /home/ops/topology.svg"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import diagram, runner


def main():
    runner.run(AnsibleModule(**diagram.MODULE), diagram)


if __name__ == "__main__":
    main()
