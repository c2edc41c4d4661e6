# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host settings every layer agrees on, defined once: where a datapath
is pinned by default, where the bpffs is mounted, and the XDP modes.

The inventory model validates hosts' settings against these, the modules'
shared argument spec (ops/args.py) takes its defaults and choices from
here, and the BPF side maps the modes to the kernel's flags (bpf/xdp.py).
The stage names live beside the map capacities (capacity.STAGES).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

BPFFS_ROOT = "/sys/fs/bpf"
DEFAULT_PIN_DIR = BPFFS_ROOT + "/mizar"

XDP_MODES = ("native", "generic")  # in the driver; in the kernel's generic (skb) path, any NIC
DEFAULT_XDP_MODE = "native"
