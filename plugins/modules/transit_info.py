#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: transit_info
short_description: Report what a host's XDP datapath runs, holds and counted
version_added: 0.1.0
description:
  - Reads the datapath pinned under O(pin_dir) and reports its programs, every XDP attachment
    (the transit program, the agents of the endpoints and the pass programs of their namespaces,
    with interfaces and modes), the entry count of every map, the packet counters per verdict, per
    path and per drop reason (summed over CPUs), the counters of every installed function that
    declares some, and the stage slots.
  - docs/monitoring.md says what each counter means and which to alert on; the transit role's
    C(metrics) tasks (playbooks C(site) and C(metrics)) export them for Prometheus.
  - RV(endpoints) lists the interfaces the agent program serves, with the namespace of a made
    endpoint. Playbooks use it to find endpoints that have left the inventory.
  - Changes nothing.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.reader
  - mizar.transit.common
options:
  function_counters:
    description:
      - The counters maps of functions, by function name, each with C(map) (the name the function pins a per-CPU
        array of 64-bit counters under) and C(counters) (the names of its slots, in order).
      - The module's action fills in the shipped functions' own, from the C(counters) of their schemas
        (C(bpf/functions/*.yml)); give this only for functions of your own. A function given here replaces the
        shipped one of the same name.
    type: dict
    default: {}
notes:
  - A pin directory with no datapath gives RV(loaded=false) and empty lists; that is not an error.
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
"""

EXAMPLES = r"""
- name: Read the datapath
  mizar.transit.transit_info:
  register: dp

- name: Show the drops
  ansible.builtin.debug:
    var: dp.drops

- name: Read the datapath, with the counters of a function of one's own (program fn/shaper.c)
  mizar.transit.transit_info:
    function_counters:
      shaper: {map: shaper_stats, counters: [seen, delayed, dropped]}
  register: dp

- name: Show what the ACL dropped
  ansible.builtin.debug:
    msg: "{{ dp.functions.acl.counters.dropped | default(0) }}"

- name: The agents' interfaces
  ansible.builtin.debug:
    msg: "{{ dp.endpoints | map(attribute='iface') | list }}"
"""

RETURN = r"""
pin_dir:
  description: The pin directory read.
  returned: always
  type: str
  sample: /sys/fs/bpf/mizar
loaded:
  description: Whether a datapath is loaded there (its maps are pinned).
  returned: always
  type: bool
  sample: true
programs:
  description:
    - The pinned programs by role (transit, agent, pass), each with prog_id, tag and name; null for a role with none.
  returned: always
  type: dict
  sample: {transit: {prog_id: 812, tag: 3b185187f1855c4c, name: mzr_transit}}
transit:
  description:
    - The transit program's attachment (iface, ifindex, prog_id, tag, mode, link_id), null when it is not attached.
  returned: always
  type: dict
  sample: {iface: eth0, ifindex: 2, prog_id: 812, tag: 3b185187f1855c4c, mode: native, link_id: 40}
attachments:
  description:
    - Every XDP link of the datapath. C(role) is transit, agent or pass; C(netns) is null for the host's
      own namespace; C(ifindex) 0 means the interface is gone (a defunct link).
  returned: always
  type: list
  elements: dict
  sample:
    - {link: ":eth0", netns: null, iface: eth0, link_id: 40, ifindex: 2, prog_id: 812, role: transit,
       tag: 3b185187f1855c4c, mode: native}
endpoints:
  description:
    - One item per interface the agent program runs on, with C(iface), C(ifindex), C(netns) (the
      namespace of an endpoint this collection made, null for an adopted interface), C(mode),
      C(prog_id), and C(vni), C(ip), C(mac) from the agents map (null when it has no entry).
  returned: always
  type: list
  elements: dict
  sample:
    - {iface: mze76b32797f, ifindex: 57, netns: blue-web1, mode: native, prog_id: 813, vni: 100,
       ip: 10.1.1.10, mac: "02:e7:6b:32:79:7f"}
maps:
  description: Every pinned map, with its id, entries in use and max_entries.
  returned: always
  type: dict
  sample: {mzr_endpoints: {id: 101, entries: 12, max_entries: 524288}}
counters:
  description: Packets per verdict and per path (the names of C(abi.COUNTERS)), summed over CPUs.
  returned: always
  type: dict
  sample: {pass: 10, tx: 42, redirect: 40, drop: 2, aborted: 0, bounce: 21, decap: 40}
drops:
  description: Packets dropped per reason, only reasons with drops.
  returned: always
  type: dict
  sample: {agent_spoof: 2}
verdicts:
  description: Packets per XDP verdict the pipeline decided (before any stage function ran), summed over CPUs.
  returned: always
  type: dict
  sample: {aborted: 0, drop: 2, pass: 10, tx: 42, redirect: 40}
paths:
  description:
    - Packets per path, summed over CPUs, by program; C(transit) for the transit program on the substrate
      NIC, C(agent) for the agent program on the endpoints' interfaces.
  returned: always
  type: dict
  sample: {transit: {bounce: 21, divide: 0, to_divider: 0, arp_reply: 3, decap: 40, bypass: 0, scaled: 0, to_peer: 0},
           agent: {agent_encap: 42, agent_local: 4, agent_pmtu: 0}}
drop_reasons:
  description: Packets dropped per reason, summed over CPUs, every reason (0 included).
  returned: always
  type: dict
  sample: {geneve_trunc: 1, ttl: 0, untrusted_src: 3, no_network: 0}
functions:
  description:
    - The installed functions that declare counters (O(function_counters)), each with C(counters) (by name,
      summed over CPUs) and C(stages) (the stages whose chain runs it). A function whose counters map is not
      pinned on the host is not installed there and is left out.
  returned: always
  type: dict
  sample: {acl: {counters: {seen: 120, dropped: 4}, stages: [on_xdp_redirect, on_xdp_tx]},
           ratelimit: {counters: {passed: 900, dropped: 37}, stages: [on_xdp_redirect]}}
actions:
  description: What was done; always empty, the module only reads.
  returned: always
  type: list
  elements: str
  sample: []
stages:
  description:
    - Every stage, null when empty, else its chain's first function (the stage's number as slot, prog_id, name,
      tag and whether its pin matches), its live bank, and chain, every function of the chain in order (pos,
      slot, prog_id, name, tag, pinned).
  returned: always
  type: dict
  sample: {on_xdp_redirect: {slot: 2, prog_id: 931, name: acl_on_xdp_redi, tag: 8c3f0d2a61b7e94f, pinned: true, bank: 1,
                             chain: [{pos: 0, slot: 42, prog_id: 931, name: acl_on_xdp_redi, tag: 8c3f0d2a61b7e94f,
                                      pinned: true}]},
           on_xdp_tx: null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import runner, transit_info


def main():
    runner.run(AnsibleModule(**transit_info.MODULE), transit_info)


if __name__ == "__main__":
    main()
