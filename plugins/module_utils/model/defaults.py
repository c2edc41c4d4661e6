# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The defaults of a transit host's settings, in one place.

The inventory model fills them in where the inventory leaves a setting
out, and the rendering carries the result to the roles, so no role or
playbook repeats them. docs/inventory.md lists them with their variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# mizar_xdp_mode
XDP_MODES = ("native", "generic")
DEFAULT_XDP_MODE = "native"

# mizar_bpf_pin_dir: where the datapath pins its maps, programs and links
BPFFS_ROOT = "/sys/fs/bpf"
DEFAULT_PIN_DIR = BPFFS_ROOT + "/mizar"

# mizar_bpf_dir: where a host keeps the BPF objects
DEFAULT_BPF_DIR = "/var/lib/mizar/bpf"

# mizar_xdp_switch_mode: whether the transit program may be detached to change its XDP mode
DEFAULT_SWITCH_MODE = False

# mizar_function_supervisor: what keeps a host's user-space functions running
# (docs/inventory.md, "User-space functions"): systemd units, or processes
# the module starts and restarts itself (hosts without systemd: the lab)
SUPERVISORS = ("systemd", "process")
DEFAULT_SUPERVISOR = "systemd"

# mizar_function_dir: where a host keeps its user-space functions' programs,
# configs and process ids
DEFAULT_FUNCTION_DIR = "/var/lib/mizar/functions"
