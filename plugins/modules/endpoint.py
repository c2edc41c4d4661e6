#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: endpoint
short_description: Create, adopt or remove the endpoints of a transit host
version_added: 0.1.0
description:
  - Manages endpoints of the host it runs on, as the C(local_endpoints) of the host's rendering
    (M(mizar.transit.render) filter) describe them. One endpoint (O(name), O(iface) and its other
    options), or a host's whole list in one call (O(endpoints), the rendering's C(local_endpoints)
    as they are).
  - "With O(endpoints), every endpoint is read and planned before anything is done: an endpoint
    that cannot be brought to its state fails the task, naming it and the field, and no endpoint is
    changed. Then the steps are carried out in the list's order. RV(actions) names each step's
    endpoint, RV(endpoints) reports each one, and the diff covers them all."
  - With O(exclusive=true), the endpoints the datapath serves (an agent program of O(pin_dir) runs
    on their host-side interface) that O(endpoints) leaves out are removed too, as O(state=absent)
    removes one, after the listed ones. Without it they are only reported (RV(unlisted)).
  - "With O(netns), the endpoint is made: the network namespace O(netns) (created when missing)
    holds the inner end of a veth, C(eth0), with O(ip)/O(prefixlen), O(mac), O(mtu), transmit
    checksum offload off, IPv6 off, up, a default route via O(gateway), and the datapath's pass
    program attached; C(lo) is up. The host end O(iface) is up with the same MTU."
  - "The MTU follows the substrate NIC O(substrate_interface): its MTU less the 50 bytes of Geneve
    encapsulation (outer IPv4 20, UDP 8, Geneve 8, inner Ethernet 14), so 1450 on a 1500-byte NIC,
    8950 on 9000; for a O(bypass_decap) endpoint, which receives whole tunnel frames, the NIC's MTU.
    A change of the NIC's MTU shows up as a change on the next run."
  - Without O(netns), the existing interface O(iface) is adopted as it is.
  - In both cases the datapath's agent program is attached to O(iface). Both programs are the
    ones M(mizar.transit.transit) pinned under O(pin_dir), attached through links pinned there.
  - Drift is corrected. A wrong address, MAC, MTU or route, a missing program, an unpaired veth
    end are each fixed, and the run reports changed.
  - With O(state=absent), the agent is detached. For a O(netns) endpoint, the pass program is
    detached and the veth and the namespace O(netns) are deleted; a namespace that holds other
    interfaces than C(lo) and C(eth0) is left alone and the module fails. An adopted interface stays,
    only its agent is detached.
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mizar.transit.common.host
  - mizar.transit.common
  - mizar.transit.common.mode
options:
  name:
    description:
      - The endpoint's name, for messages (the rendering's C(vpc/network/endpoint)).
      - Required, with O(iface), unless O(endpoints) is given.
    type: str
  iface:
    description:
      - The host-side interface. For a O(netns) endpoint, the host end of the veth this module makes
        (the rendering's derived C(mz...) name); otherwise the existing interface to adopt.
    type: str
  netns:
    description:
      - The endpoint's network namespace (under C(/run/netns)), made and owned by this module.
      - Leave it out to adopt O(iface).
    type: str
  ip:
    description:
      - The endpoint's IPv4 address. Required for a O(netns) endpoint with O(state=present).
    type: str
  prefixlen:
    description:
      - Prefix length of the endpoint's network. Required for a O(netns) endpoint with O(state=present).
    type: int
  mac:
    description:
      - The endpoint's MAC address, on C(eth0). Required for a O(netns) endpoint with O(state=present).
    type: str
  gateway:
    description:
      - The network's gateway, the default route's next hop. Without it, no default route is set.
    type: str
  mtu:
    description:
      - MTU of both veth ends. Leave it out to derive it from O(substrate_interface) (see above).
      - Given, it must not exceed what the substrate NIC carries (the NIC's MTU less 50, or the NIC's
        MTU for a O(bypass_decap) endpoint); the module fails otherwise.
      - Without O(substrate_interface) and O(mtu), 1450, which fits a 1500-byte substrate.
    type: int
  substrate_interface:
    description:
      - The host's substrate NIC (the inventory's C(mizar_interface)), whose MTU bounds the endpoint's.
        It must exist.
    type: str
  bypass_decap:
    description:
      - The endpoint receives whole tunnel frames (the inventory's C(bypass_decap)), so its interface is
        sized for them.
    type: bool
    default: false
  vips:
    description:
      - Addresses of the scaled endpoints this endpoint is a backend of (the rendering's C(vips)). Each is put
        on C(lo) in O(netns) as a /32, so the endpoint accepts their packets and replies from them (direct
        server return); C(eth0) gets C(arp_ignore) 1 and C(arp_announce) 2, so it never answers ARP for them
        nor sends ARP from them. Addresses on C(lo) other than 127.0.0.0/8 that are not listed are removed.
      - Only for an endpoint with a O(netns).
    type: list
    elements: str
  state:
    description:
      - Whether the endpoint should exist. With O(endpoints), the state of the items that give none.
    type: str
    choices: [present, absent]
    default: present
  endpoints:
    description:
      - A host's endpoints, each as the single form's options describe (O(name), O(iface) required),
        with its own O(endpoints[].state). O(substrate_interface), O(mode) and O(pin_dir) apply to
        all of them.
      - The items of the rendering's C(local_endpoints) can be given as they are.
      - Mutually exclusive with the single form's options.
    type: list
    elements: dict
    suboptions:
      name:
        description: The endpoint's name, for messages.
        type: str
        required: true
      iface:
        description: The host-side interface (see O(iface)).
        type: str
        required: true
      netns:
        description: The endpoint's network namespace; leave it out (or null) to adopt O(endpoints[].iface).
        type: str
      ip:
        description: The endpoint's IPv4 address.
        type: str
      prefixlen:
        description: Prefix length of the endpoint's network.
        type: int
      mac:
        description: The endpoint's MAC address.
        type: str
      gateway:
        description: The network's gateway.
        type: str
      mtu:
        description: MTU of both veth ends (see O(mtu)); null derives it.
        type: int
      bypass_decap:
        description: The endpoint receives whole tunnel frames.
        type: bool
        default: false
      vips:
        description: Addresses of the scaled endpoints it backs, on its C(lo) (see O(vips)).
        type: list
        elements: str
      vni:
        description: The VNI of the endpoint's VPC, as the rendering gives it. Not used here (the datapath's
          entries carry it, see M(mizar.transit.map_state)); accepted so that rendered items pass as they are.
        type: int
      state:
        description: Whether this endpoint should exist; defaults to O(state).
        type: str
        choices: [present, absent]
  exclusive:
    description:
      - With O(endpoints), also remove the endpoints the datapath serves that the list leaves out (see above).
    type: bool
    default: false
notes:
  - Supports check mode and diff mode (the namespace, C(eth0)'s settings, the route and the XDP programs,
    before and after).
  - Run after M(mizar.transit.transit), and before M(mizar.transit.map_state), whose entries
    refer to O(iface) by its ifindex. A veth made again gets a new ifindex, so run map_state after
    every endpoint change.
  - To remove an endpoint, run M(mizar.transit.map_state) without it first, then this module with
    O(state=absent), or with O(endpoints) and O(exclusive=true).
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
"""

EXAMPLES = r"""
- name: This host's endpoints, as rendered, in one call
  mizar.transit.endpoint:
    endpoints: "{{ mizar_rendered[inventory_hostname].local_endpoints }}"
    substrate_interface: "{{ mizar_rendered[inventory_hostname].interface.name }}"
  register: endpoints

- name: After the maps forgot them, remove the endpoints that left the inventory
  mizar.transit.endpoint:
    endpoints: "{{ mizar_rendered[inventory_hostname].local_endpoints }}"
    substrate_interface: "{{ mizar_rendered[inventory_hostname].interface.name }}"
    exclusive: true
  when: endpoints.unlisted | length > 0

- name: One endpoint
  mizar.transit.endpoint:
    name: blue/web/web1
    iface: mze76b32797f
    netns: blue-web1
    ip: 10.1.1.10
    prefixlen: 24
    mac: "02:e7:6b:32:79:7f"
    gateway: 10.1.1.1
    substrate_interface: eth0

- name: Adopt an existing interface as an endpoint
  mizar.transit.endpoint:
    name: blue/db/db1
    iface: ens5

- name: Remove an endpoint and its namespace
  mizar.transit.endpoint:
    name: blue/web/web1
    iface: mze76b32797f
    netns: blue-web1
    state: absent
"""

RETURN = r"""
actions:
  description:
    - What was done (in check mode, what would be done), in order.
    - With O(endpoints), each text starts with its endpoint's name.
  returned: always
  type: list
  elements: str
  sample:
    - create network namespace blue-web1
    - create veth mze76b32797f <-> eth0 in blue-web1
    - add address 10.1.1.10/24 to eth0 in blue-web1
    - attach mzr_pass (native mode) to eth0 in blue-web1
    - attach mzr_agent (native mode) to mze76b32797f
mtu:
  description: The MTU of the endpoint's veth (derived or given); null for an adopted interface or O(state=absent).
  returned: with O(name)
  type: int
  sample: 1450
iface:
  description: The host-side interface.
  returned: with O(name)
  type: str
  sample: mze76b32797f
ifindex:
  description:
    - ifindex of O(iface) after the run (what the datapath's entries are keyed by); null when it does not exist.
  returned: with O(name)
  type: int
  sample: 57
netns:
  description: The endpoint's namespace, null for an adopted interface or when it does not exist.
  returned: with O(name)
  type: str
  sample: blue-web1
mac:
  description: MAC of C(eth0) (of O(iface) for an adopted interface); null when absent.
  returned: with O(name)
  type: str
  sample: "02:e7:6b:32:79:7f"
endpoints:
  description:
    - One item per endpoint, in the list's order, then the unlisted ones O(exclusive) removed, each with
      C(name), C(state), C(changed), its own C(actions), and the single form's C(iface), C(mtu), C(ifindex),
      C(netns) and C(mac).
  returned: with O(endpoints)
  type: list
  elements: dict
  sample:
    - {name: blue/web/web1, state: present, changed: false, actions: [], iface: mze76b32797f, mtu: 1450,
       ifindex: 57, netns: blue-web1, mac: "02:e7:6b:32:79:7f"}
unlisted:
  description:
    - The endpoints the datapath serves that O(endpoints) leaves out (C(name), C(iface), C(netns)), as this run
      found them; O(exclusive=true) removes them.
  returned: with O(endpoints)
  type: list
  elements: dict
  sample:
    - {name: mz0123456789, iface: mz0123456789, netns: blue-old1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import endpoint, runner


def main():
    runner.run(AnsibleModule(**endpoint.MODULE), endpoint)


if __name__ == "__main__":
    main()
