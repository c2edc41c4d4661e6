// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Stage functions for the chain tests: each one counts its packets
 * (mzt_chain_hits, by its id), writes its id and the verdict it was handed
 * into mzt_chain_trace, then does its part:
 *
 *   chain_a .. chain_d ... let the packet go on (mzr_stage_next)
 *   chain_tx ............. make the verdict XDP_TX, then let it go on
 *   chain_drop ........... drop it: the chain ends here
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"
#include "mzr_stages.h"

#define TRACE_MAX 8

struct chain_trace {
	__u32 n;
	__u32 id[TRACE_MAX];
	__u32 verdict[TRACE_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chain_trace);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzt_chain_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzt_chain_hits SEC(".maps");

static __always_inline struct mzr_stage_ctx *chain_record(__u32 id)
{
	__u32 zero = 0, n;
	struct mzr_stage_ctx *sc = bpf_map_lookup_elem(&mzr_stage_ctx, &zero);
	struct chain_trace *t = bpf_map_lookup_elem(&mzt_chain_trace, &zero);
	__u64 *hits = bpf_map_lookup_elem(&mzt_chain_hits, &id);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	if (t && sc) {
		n = t->n;
		if (n < TRACE_MAX) {
			t->id[n] = id;
			t->verdict[n] = sc->verdict;
			t->n = n + 1;
		}
	}
	return sc;
}

#define CHAIN_ON(name, id)                         \
	SEC("xdp")                                 \
	int name(struct xdp_md *ctx)               \
	{                                          \
		if (!chain_record(id))             \
			return XDP_ABORTED;        \
		return mzr_stage_next(ctx);        \
	}

CHAIN_ON(chain_a, 1)
CHAIN_ON(chain_b, 2)
CHAIN_ON(chain_c, 3)
CHAIN_ON(chain_d, 4)

SEC("xdp")
int chain_tx(struct xdp_md *ctx)
{
	struct mzr_stage_ctx *sc = chain_record(5);

	if (!sc)
		return XDP_ABORTED;
	sc->verdict = XDP_TX;
	return mzr_stage_next(ctx);
}

SEC("xdp")
int chain_drop(struct xdp_md *ctx)
{
	chain_record(6);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
