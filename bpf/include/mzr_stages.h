/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tail-call stages, shared by the transit program and the agent: a
 * function installed in a stage sees every packet the pipeline decides at
 * that stage, on whichever program decided it (docs/architecture.md,
 * "Stages").
 *
 * Before each tail call the pipeline fills the per-CPU mzr_stage_ctx with
 * what it knows of the packet: the VNI (0 when not yet known), the
 * interface it redirects to (0 unless redirecting), flags, and its own
 * verdict. A function returns that verdict to let the packet go: the same
 * stage may end in XDP_TX on the transit program and in XDP_REDIRECT (out
 * of the substrate NIC) on the agent.
 */
#ifndef MZR_STAGES_H
#define MZR_STAGES_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MZR_STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_stages SEC(".maps");

/* Tell the stage what the pipeline knows, then offer it the packet. */
static __always_inline void mzr_stage_enter(struct xdp_md *ctx, __u32 stage, int verdict, __u32 vni,
					    __u32 ifindex, __u32 flags)
{
	__u32 zero = 0;
	struct mzr_stage_ctx *sc = bpf_map_lookup_elem(&mzr_stage_ctx, &zero);

	if (sc) {
		sc->vni = vni;
		sc->ifindex = ifindex;
		sc->flags = flags;
		sc->verdict = verdict;
	}
	bpf_tail_call(ctx, &mzr_stages, stage);
}

/*
 * Count the pipeline's verdict, offer the packet to the stage, and return
 * the verdict when the stage is empty.
 */
static __always_inline int mzr_stage(struct xdp_md *ctx, int verdict, __u32 stage, __u32 vni,
				     __u32 ifindex, __u32 flags)
{
	mzr_count(verdict);
	mzr_stage_enter(ctx, stage, verdict, vni, ifindex, flags);
	return verdict;
}

#endif /* MZR_STAGES_H */
