// SPDX-License-Identifier: GPL-2.0-or-later
/* Stage programs for the datapath tests. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_maps.h"

#define MZR_TEST_SLOT 63 /* a counter slot the datapath never uses */

SEC("xdp")
int stage_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int stage_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Proves stage programs share the main program's maps: bumps a counter
 * slot in the pinned mzr_counters, then drops. */
SEC("xdp")
int stage_mark(struct xdp_md *ctx)
{
	mzr_count(MZR_TEST_SLOT);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
