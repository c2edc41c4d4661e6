// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * acl: a network ACL stage function. Drops the inner IPv4 packets that
 * match a rule (VNI, source and destination prefixes, protocol, destination
 * port); lets everything else go with the stage's default verdict.
 *
 *   acl_on_xdp_redirect ... at ON_XDP_REDIRECT, before delivery to a local
 *                           endpoint (inner frame, or tunnel packet for a
 *                           bypass endpoint); the VNI comes from mzr_stage_ctx
 *   acl_on_xdp_tx ......... at ON_XDP_TX, before a packet leaves for
 *                           another host (tunnel packet)
 *
 * A packet that passes goes on along the stage's chain (mzr_stage_next):
 * to the next function, or, after the last, with the verdict in
 * mzr_stage_ctx.
 *
 * The rule set is double-buffered: the control plane fills the inactive set
 * of mzr_acl_sets, then flips mzr_acl_active, so a packet sees one whole
 * rule set, old or new. Config: bpf/functions/acl.yml.
 */
#include <linux/bpf.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_function.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_stages.h"

#define ACL_MAX_RULES 64
#define ACL_DROP 1

struct mzr_acl_rule {
	__u32 vni;
	__be32 src;
	__be32 src_mask;
	__be32 dst;
	__be32 dst_mask;
	__u8 proto; /* IPPROTO_*, 0: any */
	__u8 action;
	__be16 port; /* destination port, 0: any */
};

struct mzr_acl_set {
	__u32 nrules;
	struct mzr_acl_rule rule[ACL_MAX_RULES];
};

enum mzr_acl_stat {
	ACL_SEEN = 0,
	ACL_DROPPED = 1,
	ACL_STAT_MAX = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct mzr_acl_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_acl_sets SEC(".maps");

MZR_FN_ACTIVE_MAP(mzr_acl_active);

/* the counters acl.yml declares */
MZR_FN_COUNTERS_MAP(mzr_acl_stats, ACL_STAT_MAX);

/* 1 when the inner frame at the cursor matches a drop rule of vni. */
static __always_inline int acl_match(struct mzr_cursor *c, __u32 vni)
{
	struct ethhdr *eth = mzr_parse_eth(c);
	struct mzr_acl_set *set;
	struct iphdr *ip;
	__u32 zero = 0, *active;
	__be16 port = 0;
	int i;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0; /* ARP and the like are not the ACL's business */
	ip = mzr_parse_ipv4(c);
	if (!ip)
		return 0;
	/* Ports sit alike in TCP and UDP, after the IPv4 options if any. A
	 * later fragment has none: a port rule matches its first fragment. */
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) && ip->ihl >= 5 &&
	    !(ip->frag_off & bpf_htons(MZR_IP_OFFSET))) {
		struct udphdr *l4 = (void *)ip + mzr_clamp((__u32)ip->ihl << 2, 60);

		if (!mzr_no_room(l4, c->end))
			port = l4->dest;
	}
	active = bpf_map_lookup_elem(&mzr_acl_active, &zero);
	if (!active)
		return 0;
	set = bpf_map_lookup_elem(&mzr_acl_sets, active);
	if (!set)
		return 0;
	for (i = 0; i < ACL_MAX_RULES; i++) {
		struct mzr_acl_rule *r;

		if (i >= set->nrules)
			break;
		r = &set->rule[i];
		if (r->vni != vni || (ip->saddr & r->src_mask) != r->src ||
		    (ip->daddr & r->dst_mask) != r->dst)
			continue;
		if (r->proto && r->proto != ip->protocol)
			continue;
		if (r->port && r->port != port)
			continue;
		return r->action == ACL_DROP;
	}
	return 0;
}

SEC("xdp")
int acl_on_xdp_redirect(struct xdp_md *ctx)
{
	struct mzr_cursor c = mzr_fn_cursor(ctx);
	struct mzr_stage_ctx *sc = mzr_fn_stage_ctx();
	__u32 vni;

	if (!sc)
		return XDP_ABORTED;
	vni = sc->vni;
	if (sc->flags & MZR_SC_F_TUNNEL && mzr_fn_skip_tunnel(&c) != vni)
		return mzr_stage_next(ctx);
	mzr_fn_count(&mzr_acl_stats, ACL_SEEN);
	if (acl_match(&c, vni)) {
		mzr_fn_count(&mzr_acl_stats, ACL_DROPPED);
		return XDP_DROP;
	}
	return mzr_stage_next(ctx); /* the pipeline has already set the target */
}

SEC("xdp")
int acl_on_xdp_tx(struct xdp_md *ctx)
{
	struct mzr_cursor c = mzr_fn_cursor(ctx);
	struct mzr_stage_ctx *sc = mzr_fn_stage_ctx();
	__u32 vni = mzr_fn_skip_tunnel(&c);

	if (!sc)
		return XDP_ABORTED;
	if (!vni)
		return mzr_stage_next(ctx);
	mzr_fn_count(&mzr_acl_stats, ACL_SEEN);
	if (acl_match(&c, vni)) {
		mzr_fn_count(&mzr_acl_stats, ACL_DROPPED);
		return XDP_DROP;
	}
	return mzr_stage_next(ctx); /* XDP_TX on the transit program, XDP_REDIRECT on the agent */
}

char _license[] SEC("license") = "GPL";
