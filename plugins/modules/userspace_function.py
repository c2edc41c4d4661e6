#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: userspace_function
short_description: Keep a host's user-space network functions running in their endpoints' namespaces
version_added: 0.2.0
description:
  - Runs each function of O(functions), a program this collection ships (C(flowlog)), inside the network
    namespace of its C(bypass_decap) endpoint, where it gets the whole tunnel frames. These are the
    functions of kind C(userspace) in C(mizar_functions); the host's rendering (filter
    C(mizar.transit.render)) lists them under C(userspace.functions).
  - Writes the program and one config file per function into O(dir). The program enters the endpoint's
    namespace itself, as C(nsenter --net) would.
  - With O(supervisor=systemd), a unit template C(mizar-<program>@.service) in O(systemd_dir)
    (C(Restart=on-failure)), and its instance per function, enabled and started. With
    O(supervisor=process), for hosts whose PID 1 is not systemd (the namespace lab), the module starts
    the program detached, in a session of its own, and keeps its process id in O(dir); a later run
    starts it again if it has ended.
  - A function is restarted when its program or config changes, or when it runs in a namespace that is no
    longer its endpoint's (the endpoint was made again). A function that is running as it should is left
    alone, so a second run changes nothing.
  - A function is up when the program says so (its sockets open); one that ends as it starts fails the task
    with what it wrote on stderr.
  - With O(exclusive=true), the functions found in O(dir) that O(functions) leaves out are stopped and their
    configs removed, and so are programs and unit templates no function needs. With O(state=absent), the
    listed functions are (with O(exclusive), all of them). Their logs stay.
author:
  - Mizar Transit Developers (@mizar-transit)
options:
  functions:
    description:
      - The functions, as the rendering's C(userspace.functions) has them.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The function's name (C(mizar_functions[].name)); names its files and unit instance.
        type: str
        required: true
      program:
        description: The shipped program (C(flowlog)).
        type: str
        required: true
      netns:
        description: The endpoint's network namespace.
        type: str
        required: true
      iface:
        description: The host's end of the endpoint's veth, through which the function delivers the inner frames.
        type: str
        required: true
      endpoint:
        description: The endpoint's qualified name (C(vpc/network/endpoint)), for the config and messages.
        type: str
      vni:
        description: The VNI of the endpoint's VPC; the function drops tunnel frames of any other.
        type: int
        required: true
      ip:
        description: The endpoint's address.
        type: str
        required: true
      mac:
        description: The endpoint's MAC address.
        type: str
        required: true
      config:
        description:
          - The function's settings, checked against its schema by the inventory validator. For
            C(flowlog), C(log) (an absolute path; default C(/var/log/mizar/<name>.jsonl)) and C(flush)
            (a duration such as C(1s)).
        type: dict
        default: {}
  supervisor:
    description:
      - What keeps the functions running. V(systemd) on hosts with systemd; V(process) where PID 1 is not
        systemd (the host's C(mizar_function_supervisor)).
    type: str
    choices: [systemd, process]
    default: systemd
  dir:
    description: Where the programs, configs and process ids live (the host's C(mizar_function_dir)).
    type: path
    default: /var/lib/mizar/functions
  systemd_dir:
    description: Where the unit templates go, with O(supervisor=systemd).
    type: path
    default: /etc/systemd/system
  python:
    description: The Python 3 that runs the programs. Defaults to the one that runs this module.
    type: path
  exclusive:
    description: Also stop and remove the functions in O(dir) that O(functions) does not list.
    type: bool
    default: false
  state:
    description: Whether the listed functions should run, or be stopped and removed.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode.
  - The endpoints must exist (M(mizar.transit.endpoint)); the functions role runs after the tenants role.
seealso:
  - module: mizar.transit.endpoint
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Run this host's user-space functions, and only those
  mizar.transit.userspace_function:
    functions: "{{ mizar_rendered[inventory_hostname].userspace.functions }}"
    supervisor: "{{ mizar_rendered[inventory_hostname].userspace.supervisor }}"
    dir: "{{ mizar_rendered[inventory_hostname].userspace.dir }}"
    exclusive: true

- name: A flow logger on one bypass_decap endpoint, as a supervised process
  mizar.transit.userspace_function:
    functions:
      - name: flows-blue
        program: flowlog
        netns: blue-logger
        iface: mz51c5068446
        vni: 100
        ip: 10.0.1.20
        mac: "02:51:c5:06:84:46"
        config: {log: /var/log/mizar/flows-blue.jsonl, flush: 1s}
    supervisor: process

- name: Stop and remove every user-space function of this host
  mizar.transit.userspace_function:
    exclusive: true
    state: absent
"""

RETURN = r"""
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: always
  type: list
  elements: str
  sample:
    - "install flowlog at /var/lib/mizar/functions/flowlog.py"
    - "write the config of flows-blue (/var/lib/mizar/functions/flows-blue.json)"
    - "start flows-blue: flowlog in namespace blue-logger"
functions:
  description:
    - The functions found in O(dir) after the run (in check mode, before it), with their program, process id
      (null when not running) and whether they run in their endpoint's namespace.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: flows-blue, program: flowlog, pid: 4242, running: true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, userspace_function


def main():
    runner.run(AnsibleModule(**userspace_function.MODULE), userspace_function)


if __name__ == "__main__":
    main()
