// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A stage program for tests: records the stage context the pipeline filled
 * (mzt_stage_seen), and lets the packet go with the pipeline's verdict.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mzr_stage_ctx);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzt_stage_seen SEC(".maps");

SEC("xdp")
int stage_record(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct mzr_stage_ctx *sc = bpf_map_lookup_elem(&mzr_stage_ctx, &zero);

	if (!sc)
		return XDP_ABORTED;
	bpf_map_update_elem(&mzt_stage_seen, &zero, sc, BPF_ANY);
	return sc->verdict;
}

char _license[] SEC("license") = "GPL";
