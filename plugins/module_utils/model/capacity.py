# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacities of the datapath maps and the stage names, as fixed by
bpf/include/mzr_abi.h.

The inventory validator checks per-host entry counts against these; the
codecs in abi.py size their arrays from them. tests/datapath/test_abi.py
checks they equal the compiled objects' map definitions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MAX_ENDPOINTS = 131072
MAX_NETWORKS = 16384
MAX_VPCS = 8192
MAX_SUBSTRATE = 16383  # substrate hosts one host forwards to
MAX_AGENTS = 8192  # endpoints hosted on one host
MAX_HOPS = 128  # bouncers per network, dividers per VPC
MAX_BACKENDS = 4096  # backends of one scaled endpoint
MAX_MEMBERS = 131072  # backends of all the scaled endpoints one host knows (mzr_members entries)
MAX_SCALED = 4096  # scaled endpoints one host's scaled function serves (LB_MAX_VIPS, bpf/functions/scaled.bpf.c)
MAX_PLENS = 8  # distinct network prefix lengths in one VPC
MAX_SOURCES = 16384  # trusted tunnel sources of one host: transit hosts and tunnel peers' (ip, VNI)
MAX_PEERS = 4096  # peer routes one divider holds: one per peering of each VPC it divides

# Slots of the flat tables (open addressing in ARRAY maps, see mzr_abi.h).
PROBES = 16
EP_SLOTS = 1 << 19
NET_SLOTS = 1 << 16
VPC_SLOTS = 1 << 15
AGENT_SLOTS = 1 << 15
HOST_SLOTS = MAX_SUBSTRATE + 1  # slot 0 unused
SRC_SLOTS = 1 << 16
PEER_SLOTS = 1 << 14
MEMBER_SLOTS = 1 << 19

# map name (as rendered) -> capacity
MAP_CAPACITY = {
    "endpoints": MAX_ENDPOINTS,
    "networks": MAX_NETWORKS,
    "vpcs": MAX_VPCS,
    "substrate": MAX_SUBSTRATE,
    "agents": MAX_AGENTS,
    "sources": MAX_SOURCES,
    "peers": MAX_PEERS,
}

# The stage slots of mzr_stages (enum mzr_stage), in slot order: the one list
# of stage names, from which the codecs (abi.STAGES), the modules' choices
# (ops/args.py) and the inventory's checks take theirs.
STAGES = ("on_xdp_tx", "on_xdp_pass", "on_xdp_redirect", "on_xdp_drop", "on_xdp_scaled_ep")

# Functions one stage runs on one host, in order (MZR_CHAIN_MAX): the chain
# each bank of mzr_stages holds per stage.
CHAIN_MAX = 8
