/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What stage functions (bpf/functions/) share: the stage context the
 * pipeline filled, and the walk past the outer headers of a whole tunnel
 * packet (a bypass_decap endpoint's delivery, a forwarded packet).
 */
#ifndef MZR_FUNCTION_H
#define MZR_FUNCTION_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"
#include "mzr_parse.h"

/*
 * The index of the set in use of a double-buffered configuration (a 2-entry
 * array of whole sets): the control plane fills the other set, then flips
 * this one aligned word, so a packet sees one whole set.
 */
#define MZR_FN_ACTIVE_MAP(name)                           \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_ARRAY);        \
		__uint(max_entries, 1);                  \
		__type(key, __u32);                      \
		__type(value, __u32);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);     \
	} name SEC(".maps")

/*
 * A function's own counters: a per-CPU array of __u64, slot i counting what
 * the `counters` of its schema (bpf/functions/<name>.yml) name in place i.
 * transit_info reports them by those names, summed over the CPUs.
 */
#define MZR_FN_COUNTERS_MAP(name, slots)                  \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, slots);              \
		__type(key, __u32);                      \
		__type(value, __u64);                    \
		__uint(pinning, LIBBPF_PIN_BY_NAME);     \
	} name SEC(".maps")

/* One more packet in slot idx of a counters map (MZR_FN_COUNTERS_MAP). */
static __always_inline void mzr_fn_count(void *counters, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(counters, &idx);

	if (c)
		*c += 1;
}

/* A cursor at the start of the packet. */
static __always_inline struct mzr_cursor mzr_fn_cursor(struct xdp_md *ctx)
{
	struct mzr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};

	return c;
}

/* The stage context the pipeline filled; NULL only if the map is missing. */
static __always_inline struct mzr_stage_ctx *mzr_fn_stage_ctx(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mzr_stage_ctx, &zero);
}

/* Walk past outer Ethernet/IPv4/UDP/Geneve; returns the VNI or 0. */
static __always_inline __u32 mzr_fn_skip_tunnel(struct mzr_cursor *c)
{
	struct ethhdr *eth = mzr_parse_eth(c);
	struct iphdr *ip;
	struct udphdr *udp;
	struct mzr_geneve *g;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = mzr_parse_ipv4(c);
	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	udp = mzr_parse_udp(c);
	if (!udp || udp->dest != bpf_htons(MZR_GENEVE_PORT))
		return 0;
	g = mzr_take(c, sizeof(*g));
	if (!g)
		return 0;
	if (mzr_skip_geneve_opts(c, (__u32)(g->ver_optlen & 0x3f) << 2))
		return 0;
	return mzr_geneve_vni(g);
}

#endif /* MZR_FUNCTION_H */
