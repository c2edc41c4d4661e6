/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tail-call stages, shared by the transit program, the agent and the
 * stage functions: the functions installed in a stage see every packet the
 * pipeline decides at that stage, on whichever program decided it
 * (docs/architecture.md, "Stages").
 *
 * Before entering a stage the pipeline fills the per-CPU mzr_stage_ctx with
 * what it knows of the packet: the VNI (0 when not yet known), the
 * interface it redirects to (0 unless redirecting), flags, and its own
 * verdict. The same stage may end in XDP_TX on the transit program and in
 * XDP_REDIRECT (out of the substrate NIC) on the agent.
 *
 * A stage holds a chain of functions, in order (mzr_abi.h, MZR_CHAIN_MAX).
 * The pipeline reads the stage's live bank once, on entry, and keeps in
 * mzr_stage_ctx where the chain goes on, so a packet runs one whole chain,
 * the one live when it entered, even while the control plane swaps it
 * (it fills the other bank, flips mzr_stage_bank, waits for the packets in
 * flight, then empties the old bank). A function lets a packet go with
 * mzr_stage_next(): the next function gets it, and after the last the
 * verdict in mzr_stage_ctx is returned. A function may change that verdict
 * first, for the ones after it; a function that returns a verdict itself
 * (XDP_DROP) ends the chain.
 */
#ifndef MZR_STAGES_H
#define MZR_STAGES_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MZR_STAGE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_stages SEC(".maps");

/* Per stage, its live bank of mzr_stages: 0 or 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_stage_bank SEC(".maps");

/* Tell the stage what the pipeline knows, then offer it the packet. */
static __always_inline void mzr_stage_enter(struct xdp_md *ctx, __u32 stage, int verdict, __u32 vni,
					    __u32 ifindex, __u32 flags)
{
	__u32 zero = 0, first = stage, end = MZR_STAGE_BANK_SLOTS;
	struct mzr_stage_ctx *sc = bpf_map_lookup_elem(&mzr_stage_ctx, &zero);
	__u32 *bank = bpf_map_lookup_elem(&mzr_stage_bank, &stage);

	if (bank && *bank) {
		first += MZR_STAGE_BANK_SLOTS;
		end += MZR_STAGE_BANK_SLOTS;
	}
	if (sc) {
		sc->vni = vni;
		sc->ifindex = ifindex;
		sc->flags = flags;
		sc->verdict = verdict;
		sc->next = first + MZR_STAGE_MAX;
		sc->end = end;
	}
	bpf_tail_call(ctx, &mzr_stages, first);
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

/*
 * For a function: let the packet go on. The chain's next function gets it;
 * after the last one (an empty slot ends the chain), the verdict in
 * mzr_stage_ctx is the packet's.
 */
static __always_inline int mzr_stage_next(struct xdp_md *ctx)
{
	__u32 zero = 0, slot;
	struct mzr_stage_ctx *sc = bpf_map_lookup_elem(&mzr_stage_ctx, &zero);

	if (!sc)
		return XDP_ABORTED;
	slot = sc->next;
	if (slot < sc->end) {
		sc->next = slot + MZR_STAGE_MAX;
		bpf_tail_call(ctx, &mzr_stages, slot);
	}
	return sc->verdict;
}

#endif /* MZR_STAGES_H */
