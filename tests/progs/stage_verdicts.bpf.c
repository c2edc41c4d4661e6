// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tiny stage programs for the kernel tests: each returns one verdict, so a
 * test can tell which program a tail call reached. stage_count also bumps
 * a counter slot the datapath never uses, proving a stage program loaded
 * from its own object shares the pinned maps with the transit program, and
 * a map of its own (mzt_stage_hits), as a network function keeps its state.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"

#define STAGE_TEST_COUNTER 95 /* unused by the datapath (see enum mzr_counter) */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzt_stage_hits SEC(".maps");

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

SEC("xdp")
int stage_aborted(struct xdp_md *ctx)
{
	return XDP_ABORTED;
}

SEC("xdp")
int stage_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int stage_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *hits = bpf_map_lookup_elem(&mzt_stage_hits, &zero);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	mzr_count(STAGE_TEST_COUNTER);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
