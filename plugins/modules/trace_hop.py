#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: trace_hop
short_description: Run one frame through a host's live XDP program and say what it did
version_added: 0.1.0
description:
  - Runs O(frame) through the program attached to an interface of the host, with C(BPF_PROG_TEST_RUN), either
    the agent of an endpoint's host-side interface (O(program=agent), O(iface)), or the transit program
    of the substrate NIC (O(program=transit)). The program runs as it is loaded, with its real maps and
    stage table, so the stage functions run too. Nothing is sent on any wire.
  - Returns the verdict, the frame as the program left it, what the pipeline counted (its verdict, the
    path it took and the drop reason, by the names M(mizar.transit.transit_info) uses), the stage it
    entered and what each function of the stage's chain decided, and the interface a redirect goes to.
  - One hop of C(playbooks/trace.yml), which follows a packet from host to host (C(docs/trace.md)).
  - Changes nothing but the counters, and runs the same in check mode.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common
options:
  frame:
    description:
      - The Ethernet frame, as hexadecimal bytes (spaces and colons are ignored), 14 to 9216 bytes.
    type: str
    required: true
  program:
    description:
      - V(agent), the program of an endpoint's host-side interface, which sees what the endpoint sends;
        V(transit), the program of the substrate NIC, which sees what arrives from the substrate.
    type: str
    required: true
    choices: [agent, transit]
  iface:
    description:
      - The interface whose program runs, with the interface as the frame's ingress. Required for
        V(agent) (the endpoint's host-side interface); for V(transit), default the interface the transit
        program is attached to.
    type: str
notes:
  - The run adds to the per-CPU counters exactly what the frame would add on that CPU - one verdict,
    one path or drop reason, and what the stage functions count. A run that finds more than one verdict
    counted (real traffic on the same CPU meanwhile) is repeated, up to five times (RV(runs)).
  - An C(XDP_REDIRECT) under C(BPF_PROG_TEST_RUN) is only a verdict; RV(target) is the interface the
    program redirected to.
  - A host with no datapath at O(pin_dir), or no such program attached, fails the task with that said.
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
attributes:
  check_mode:
    support: full
    details: The module changes no state, so it runs in check mode as it does otherwise.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Run an endpoint's ping through its agent
  mizar.transit.trace_hop:
    program: agent
    iface: mza1614fd936
    frame: "{{ frame_hex }}"
  register: hop

- name: Feed the output to the next host's transit program
  mizar.transit.trace_hop:
    program: transit
    frame: "{{ hop.frame_out }}"
  delegate_to: mzh3
"""

RETURN = r"""
program:
  description: The program run, V(agent) or V(transit).
  returned: success
  type: str
  sample: agent
iface:
  description: The interface whose program ran.
  returned: success
  type: str
  sample: mza1614fd936
ifindex:
  description: Its index.
  returned: success
  type: int
  sample: 12
prog_id:
  description: The id of the program that ran (the one the interface's XDP link runs).
  returned: success
  type: int
  sample: 812
retval:
  description: The program's return value (an XDP action).
  returned: success
  type: int
  sample: 4
verdict:
  description: The verdict by name, V(aborted), V(drop), V(pass), V(tx) or V(redirect).
  returned: success
  type: str
  sample: redirect
frame_out:
  description: The frame as the program left it, hexadecimal.
  returned: success
  type: str
  sample: 02a5ae7eedb402a1614fd9360800450000...
counted:
  description:
    - What the run added to the datapath's counters, by name, only those that grew - the pipeline's
      verdict, its path (C(agent_local), C(agent_encap), C(bounce), C(divide), C(to_divider), C(to_peer),
      C(decap), C(arp_reply), ...) and its drop reason. A stage function's own verdict is RV(verdict).
  returned: success
  type: dict
  sample: {redirect: 1, agent_encap: 1}
drop_reason:
  description: The drop reason the pipeline counted, by name, or null.
  returned: success
  type: str
  sample: agent_spoof
stage:
  description: The stage the pipeline entered last, or null (an agent's plain encapsulation enters none).
  returned: success
  type: str
  sample: on_xdp_redirect
functions:
  description:
    - The stage's chain, in order, each with C(pos), C(program), C(prog_id) and C(decision) - V(passed) (it
      let the packet go on), V(returned drop) (or another verdict, which ended the chain), V(not run).
  returned: success
  type: list
  elements: dict
  sample: [{pos: 0, program: acl_on_xdp_redi, prog_id: 931, decision: returned drop}]
target:
  description: For a redirect, the interface it goes to (C(ifindex), C(iface)); null otherwise.
  returned: success
  type: dict
  sample: {ifindex: 14, iface: mza5ae7eedb4}
headers_in:
  description: The headers of O(frame), decoded (outer Ethernet, IPv4 or ARP, ICMP, TCP or UDP, Geneve, inner frame).
  returned: success
  type: dict
  sample: {eth: {src: "02:a1:61:4f:d9:36", dst: "02:7f:c5:88:05:a1", type: "0x0800"}}
headers_out:
  description: The headers of RV(frame_out), decoded the same way.
  returned: success
  type: dict
  sample: {ip: {src: 192.168.77.1, dst: 192.168.77.3, proto: udp, ttl: 64}, geneve: {vni: 100}}
leaves:
  description: RV(headers_out) in one line.
  returned: success
  type: str
  sample: "02:00:c0:a8:4d:01 > 02:00:c0:a8:4d:03 192.168.77.1 > 192.168.77.3 udp ttl 64 52873 > 6081 | geneve vni 100 | ..."
cpu:
  description: The CPU the run was pinned to (whose counters it read).
  returned: success
  type: int
  sample: 0
runs:
  description: How many runs it took to see one verdict counted alone (more when real traffic shared the CPU).
  returned: success
  type: int
  sample: 1
actions:
  description: What was done; always empty.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, trace_hop


def main():
    runner.run(AnsibleModule(**trace_hop.MODULE), trace_hop)


if __name__ == "__main__":
    main()
