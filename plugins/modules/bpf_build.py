#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bpf_build
short_description: Build the datapath's BPF objects, and users' function sources
version_added: 0.1.0
description:
  - Compiles a C(bpf/) tree like the collection's (the C(*.bpf.c) at its top, C(include/), the
    network functions in C(functions/)) into O(dest), keeping the tree's layout
    (C(transit.bpf.o), C(agent.bpf.o), C(pass.bpf.o), C(functions/acl.bpf.o)).
  - Each extra source in O(sources) (a C(.c) file) becomes C(functions/<stem>.bpf.o), where the
    stem is the file name without C(.bpf.c) or C(.c). It is compiled with the tree's C(include/)
    directory, so it can include C(mzr_maps.h) and share the datapath's maps.
  - The compiler runs as C(bpf/Makefile) does, from O(src), with
    C(-O2 -g -target bpf -mcpu=v3 -Wall -Werror -Iinclude -I/usr/include/<arch>-linux-gnu),
    followed by O(cflags).
  - Nothing is compiled when nothing changed. A stamp file in O(dest) records, per object, a
    digest of every C(.c) and C(.h) file under O(src), the object's own source (and the headers
    beside an extra source), the flags and the output of C(clang --version). Only objects whose
    digest changed, or whose file is missing, are rebuilt, in parallel. They replace the old objects
    only once all of them compiled, so a failed build leaves O(dest) as it was.
  - Objects that an earlier run built and that are no longer wanted (a source removed from
    O(sources) or from the tree) are deleted.
  - All objects are also packed into one archive, C(objects.tar) in O(dest), rewritten only when an
    object changed.
  - "The build always happens on the controller, inside the C(ansible-playbook) process itself: the
    collection's action plugin runs it there, whatever host the task runs for, and sends no module
    to any host. C(delegate_to: localhost) is therefore not needed (it changes nothing), and a run
    that has nothing to build does no more than read its inputs and ask the compiler its version."
  - "Meant to run once per play (C(run_once: true)); the archive then goes to the transit hosts with
    M(mizar.transit.transit) (its O(mizar.transit.transit#module:archive)), which compares the
    hosts' objects with the archive's manifest (RV(manifest))."
author:
  - Mizar Transit Developers (@mizar-transit)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
  - ansible.builtin.action_common_attributes.flow
  - mizar.transit.common.controller
options:
  src:
    description:
      - The C(bpf/) tree to build, with C(include/) and the C(*.bpf.c) sources.
    type: path
    required: true
  dest:
    description:
      - Directory the objects are written to (created when missing).
    type: path
    required: true
  sources:
    description:
      - Extra network function sources (paths of C(.c) files) to build into
        O(dest)/C(functions/<stem>.bpf.o).
      - Two sources with the same stem, or one with the stem of a function of the tree, are an error.
    type: list
    elements: path
    default: []
  cflags:
    description:
      - Extra compiler flags, added after the standard ones (for example C(-DMY_OPTION=1)).
    type: list
    elements: str
    default: []
  clang:
    description:
      - The compiler, a command name looked up in C(PATH) or a path.
    type: str
    default: clang
notes:
  - Supports check mode (reports what would be built, builds nothing) and diff mode (the input
    digest of every object, before and after).
  - O(src), O(dest) and O(sources) are paths on the controller; C(~) is the home of the user running
    C(ansible-playbook), as whom the build runs.
requirements:
  - clang with the BPF target
  - the kernel and libc headers (C(linux-libc-dev), C(libbpf-dev) for C(bpf/bpf_helpers.h))
"""

EXAMPLES = r"""
- name: Build the collection's BPF objects and the inventory's own functions, once, on the controller
  mizar.transit.bpf_build:
    src: "{{ role_path }}/../../bpf"
    dest: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/mizar.transit/bpf"
    sources:
      - "{{ inventory_dir }}/functions/shaper.c"
  run_once: true
  register: mizar_build

- name: A debug build with an extra define
  mizar.transit.bpf_build:
    src: /opt/mizar/bpf
    dest: /tmp/mizar-debug-bpf
    cflags:
      - -DMZR_DEBUG=1
"""

RETURN = r"""
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: always
  type: list
  elements: str
  sample:
    - compile transit.bpf.o, functions/shaper.bpf.o
    - record the inputs of every object in /root/.cache/mizar.transit/bpf/.mizar-build.json
    - pack every object into /root/.cache/mizar.transit/bpf/objects.tar
objects:
  description:
    - Every object of the build (built now or earlier), by name to path. Names are the paths
      relative to O(dest) without C(.bpf.o), for example C(transit) or C(functions/acl).
  returned: always
  type: dict
  sample:
    transit: /root/.cache/mizar.transit/bpf/transit.bpf.o
    agent: /root/.cache/mizar.transit/bpf/agent.bpf.o
    pass: /root/.cache/mizar.transit/bpf/pass.bpf.o
    functions/acl: /root/.cache/mizar.transit/bpf/functions/acl.bpf.o
built:
  description: Names of the objects compiled by this run (in check mode, that would be compiled).
  returned: always
  type: list
  elements: str
  sample: [transit, functions/shaper]
removed:
  description: Names of objects of an earlier build that were deleted because nothing builds them any more.
  returned: always
  type: list
  elements: str
  sample: [functions/oldfn]
archive:
  description:
    - One archive of every object (C(objects.tar) in O(dest)), byte-identical for identical objects,
      for O(mizar.transit.transit#module:archive) to carry to the hosts in one transfer.
  returned: always
  type: str
  sample: /root/.cache/mizar.transit/bpf/objects.tar
manifest:
  description:
    - The objects of the archive as it stands once the build is done, each one's path in the archive
      (relative to O(dest)) with the SHA-256 of its bytes, read from the archive itself; the manifest
      that the transit action compares a host's objects with.
    - In check mode, when the build would compile an object or rewrite the archive, the objects the
      archive would hold do not exist yet, and it is V(null). Otherwise it is the manifest of the
      archive already there, which the build would leave as it is.
  returned: always
  type: dict
  sample:
    transit.bpf.o: 2483bdcc5fd35304338bfb6d6436b84fed5d2313a24bddcf305507e1c48ae897
    agent.bpf.o: acad8b71ee4e32cbac730eec63bc1b93c32230e118b12dc80e5560c69799ab55
    pass.bpf.o: 269a9477e9a6ee0e1f708ef191ea6e913f700e346f0fe822dfe8dd2e7da958ab
    functions/acl.bpf.o: d21e670c4c02166683741cf0e834285070815ee10e44d53f715325db23e5cc8d
stamp:
  description: The stamp file that records the inputs of every object.
  returned: always
  type: str
  sample: /root/.cache/mizar.transit/bpf/.mizar-build.json
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mizar.transit.plugins.module_utils.ops import bpf_build, runner


def main():
    runner.run(AnsibleModule(**bpf_build.MODULE), bpf_build)


if __name__ == "__main__":
    main()
