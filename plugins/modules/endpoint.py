#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: endpoint
short_description: Create, adopt or remove one endpoint of a transit host
version_added: 0.1.0
description:
  - Manages one endpoint of the host it runs on, as the C(local_endpoints) of the host's rendering
    (M(mizar.transit.render) filter) describe them.
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
  - mizar.transit.common
  - mizar.transit.common.mode
options:
  name:
    description:
      - The endpoint's name, for messages (the rendering's C(vpc/network/endpoint)).
    type: str
    required: true
  iface:
    description:
      - The host-side interface. For a O(netns) endpoint, the host end of the veth this module makes
        (the rendering's derived C(mz...) name); otherwise the existing interface to adopt.
    type: str
    required: true
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
  state:
    description:
      - Whether the endpoint should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode (the namespace, C(eth0)'s settings, the route and the XDP programs,
    before and after).
  - Run after M(mizar.transit.transit), and before M(mizar.transit.map_state), whose entries
    refer to O(iface) by its ifindex. A veth made again gets a new ifindex, so run map_state after
    every endpoint change.
  - To remove an endpoint, run M(mizar.transit.map_state) without it first, then this module with
    O(state=absent).
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: This host's endpoints, as rendered
  mizar.transit.endpoint:
    name: "{{ item.name }}"
    ip: "{{ item.ip }}"
    prefixlen: "{{ item.prefixlen }}"
    mac: "{{ item.mac }}"
    gateway: "{{ item.gateway }}"
    netns: "{{ item.netns | default(omit, true) }}"
    iface: "{{ item.iface }}"
    mtu: "{{ item.mtu | default(omit, true) }}"
    bypass_decap: "{{ item.bypass_decap }}"
    substrate_interface: "{{ mizar_rendered[inventory_hostname].interface.name }}"
  loop: "{{ mizar_rendered[inventory_hostname].local_endpoints }}"

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
  description: What was done (in check mode, what would be done), in order.
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
  returned: always
  type: int
  sample: 1450
iface:
  description: The host-side interface.
  returned: always
  type: str
  sample: mze76b32797f
ifindex:
  description:
    - ifindex of O(iface) after the run (what the datapath's entries are keyed by); null when it does not exist.
  returned: always
  type: int
  sample: 57
netns:
  description: The endpoint's namespace, null for an adopted interface or when it does not exist.
  returned: always
  type: str
  sample: blue-web1
mac:
  description: MAC of C(eth0) (of O(iface) for an adopted interface); null when absent.
  returned: always
  type: str
  sample: "02:e7:6b:32:79:7f"
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mizar.transit.plugins.module_utils.host import netlink
from ansible_collections.mizar.transit.plugins.module_utils.ops import args
from ansible_collections.mizar.transit.plugins.module_utils.ops.endpoint import EndpointError, EndpointSpec, ensure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            iface=dict(type="str", required=True),
            netns=dict(type="str"),
            ip=dict(type="str"),
            prefixlen=dict(type="int"),
            mac=dict(type="str"),
            gateway=dict(type="str"),
            mtu=dict(type="int"),
            substrate_interface=dict(type="str"),
            bypass_decap=dict(type="bool", default=False),
            mode=args.xdp_mode(),
            pin_dir=args.pin_dir(),
            state=args.state(),
        ),
        supports_check_mode=True,
    )
    if not netlink.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib(netlink.PYROUTE2_REQUIREMENT), exception=str(netlink.PYROUTE2_IMPORT_ERROR))
    p = module.params
    try:
        spec = EndpointSpec(p["name"], p["iface"], p["pin_dir"], state=p["state"], netns=p["netns"], ip=p["ip"],
                            prefixlen=p["prefixlen"], mac=p["mac"], gateway=p["gateway"], mtu=p["mtu"], mode=p["mode"],
                            substrate_interface=p["substrate_interface"], bypass_decap=p["bypass_decap"])
        result = ensure(spec, check_mode=module.check_mode)
    except EndpointError as e:
        module.fail_json(msg=str(e))
    except Exception as e:  # a failure the plan did not foresee: say where, keep the traceback
        module.fail_json(msg="endpoint %s (%s): %s" % (p["name"], p["iface"], e), exception=traceback.format_exc())
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = dict(diff, before_header="endpoint %s (before)" % p["name"],
                              after_header="endpoint %s (after)" % p["name"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
