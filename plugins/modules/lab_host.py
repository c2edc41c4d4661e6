#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lab_host
short_description: Create or remove one lab host (a network namespace on a bridge)
version_added: 0.1.0
description:
  - Manages one host of the mizar.transit lab on the machine it runs on (the controller, in the
    root network namespace; never inside a lab host). A lab host is a network namespace named
    O(name). Its substrate NIC O(interface) is the inner end of a veth, up, with O(address), and
    its loopback is up. The outer end O(port) is a port of the bridge O(bridge) in the root
    namespace, shared by every lab host, and runs the pass XDP program in native mode. Frames that
    the transit program sends back out of O(interface) with XDP_TX arrive on O(port), and the
    kernel drops them unless O(port) runs an XDP program.
  - IPv6 is off on both ends and on the bridge, so the lab segment carries only what the tests send.
  - With O(state=absent) the veth, the namespace (and every interface left in it) and the bridge,
    once it has no ports left, are deleted. So is the host's bpffs view
    O(bpffs_root)/O(name) made by the P(mizar.transit.netns#connection) connection, when it is
    empty (see O(bpffs_purge)). Endpoint namespaces are not touched; the teardown playbook
    removes those.
  - Idempotent. Supports check mode and diff mode. RV(actions) lists what was (or would be) done.
author:
  - Mizar Transit Developers (@mizar-transit)
requirements:
  - pyroute2
  - libbpf (libbpf.so.1)
  - root
options:
  name:
    description:
      - The lab host, which is also the name of its network namespace (under C(/run/netns)).
    type: str
    required: true
  state:
    description:
      - Whether the lab host should exist.
    type: str
    choices: [present, absent]
    default: present
  interface:
    description:
      - Name of the substrate NIC inside the namespace (the host's C(mizar_interface)).
    type: str
    default: eth0
  address:
    description:
      - IPv4 address and prefix length of O(interface), for example C(192.168.77.1/24)
        (the host's C(mizar_underlay_ip)). Other IPv4 addresses on O(interface) are removed.
      - Required with O(state=present).
    type: str
  mac:
    description:
      - MAC address of O(interface) (the host's C(mizar_underlay_mac)). Left to the kernel when
        omitted.
    type: str
  bridge:
    description:
      - The bridge in the root namespace that connects the lab hosts. Created (and set up) when
        missing; deleted by O(state=absent) when no ports remain.
    type: str
    default: mzlab0
  port:
    description:
      - Name of the outer end of the veth, in the root namespace.
      - Defaults to C(ml-) followed by the first 10 hex digits of the SHA-256 of O(name)
        (13 characters, the same on every run).
    type: str
  xdp_object:
    description:
      - The BPF object with the pass program, C(.build/bpf/pass.bpf.o) of the collection
        (built by C(scripts/bootstrap)).
      - Required with O(state=present).
    type: path
  xdp_program:
    description:
      - The program in O(xdp_object) to attach to O(port).
      - A program of another name already on O(port) is not replaced; the module fails instead.
    type: str
    default: mzr_pass
  xdp_mode:
    description:
      - XDP mode of the program on O(port). Only C(native) makes XDP_TX and XDP_REDIRECT into
        the veth work.
    type: str
    choices: [native, generic]
    default: native
  bpffs_root:
    description:
      - Directory on the machine's bpffs holding the lab hosts' bpffs views (the O(bpffs_root)
        option of the P(mizar.transit.netns#connection) connection).
      - O(state=absent) removes O(bpffs_root)/O(name), and O(bpffs_root) itself once it is empty.
    type: path
    default: /sys/fs/bpf/lab
  bpffs_purge:
    description:
      - With O(state=absent), also remove the pins left in the host's bpffs view. When false
        (the default), a view that still holds pins is left alone, with a warning.
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads the state and reports the changes (RV(actions)) without making them.
    support: full
  diff_mode:
    description: Shows the namespace, bridge, veth ends, addresses and XDP program before and after.
    support: full
  platform:
    description: Linux with network namespaces, veths, bridges and XDP.
    support: full
    platforms: posix
notes:
  - "Run it on the controller, as root: C(hosts: localhost) with C(connection: local)."
  - The mizar.transit.lab playbook runs it for every host of the group C(mizar_hosts).
"""

EXAMPLES = r"""
- name: Lab host mzh1 on the default bridge
  mizar.transit.lab_host:
    name: mzh1
    interface: eth0
    address: 192.168.77.1/24
    xdp_object: /opt/mizar/.build/bpf/pass.bpf.o

- name: Remove it, and the pins its tasks left in its bpffs view
  mizar.transit.lab_host:
    name: mzh1
    state: absent
    bpffs_purge: true
"""

RETURN = r"""
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: always
  type: list
  elements: str
  sample:
    - create network namespace mzh1
    - create bridge mzlab0
changes:
  description: The same as RV(actions) (the name this module used first).
  returned: always
  type: list
  elements: str
  sample:
    - create network namespace mzh1
    - create bridge mzlab0
    - create veth ml-3f0c2d1a9b <-> eth0 in mzh1
    - attach XDP program mzr_pass (native) to ml-3f0c2d1a9b
    - add address 192.168.77.1/24 to eth0 in mzh1
netns:
  description: The host's network namespace, or null when it does not exist (after the run).
  returned: always
  type: str
  sample: mzh1
interface:
  description: The substrate NIC inside the namespace.
  returned: always
  type: str
  sample: eth0
port:
  description: The outer end of the veth, in the root namespace.
  returned: always
  type: str
  sample: ml-3f0c2d1a9b
bridge:
  description: The lab bridge.
  returned: always
  type: str
  sample: mzlab0
address:
  description: The address of O(interface) (null with O(state=absent)).
  returned: always
  type: str
  sample: 192.168.77.1/24
ifindex:
  description: ifindex of O(interface) in the namespace, null when it does not exist.
  returned: always
  type: int
  sample: 2
mac:
  description: MAC address of O(interface), null when it does not exist.
  returned: always
  type: str
  sample: "02:00:c0:a8:4d:01"
port_ifindex:
  description: ifindex of O(port) in the root namespace, null when it does not exist.
  returned: always
  type: int
  sample: 41
xdp:
  description: The XDP program on O(port), null when none.
  returned: always
  type: dict
  contains:
    prog_id:
      description: Kernel id of the program.
      type: int
    prog_name:
      description: Its name.
      type: str
    mode:
      description: native or generic.
      type: str
  sample: {prog_id: 1234, prog_name: mzr_pass, mode: native}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import lab_host, runner


def main():
    runner.run(AnsibleModule(**lab_host.MODULE), lab_host)


if __name__ == "__main__":
    main()
