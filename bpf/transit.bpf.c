// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The transit program, attached to a host's substrate NIC.
 *
 *   not Geneve to this host ............ XDP_PASS     (ON_XDP_PASS)
 *   ARP request for a known remote ep .. answer it    (ON_XDP_TX)
 *   endpoint hosted here ............... decap or bypass, XDP_REDIRECT (ON_XDP_REDIRECT)
 *   scaled endpoint .................... tail call   (ON_XDP_SCALED_EP), else drop
 *   endpoint known, remote (Bouncer) ... XDP_TX to its host  (ON_XDP_TX)
 *   network known (Divider) ............ XDP_TX to one of its bouncers
 *   otherwise .......................... XDP_TX to one of the VPC's dividers
 *   any drop ........................... XDP_DROP     (ON_XDP_DROP)
 *
 * A stage function receives the packet exactly as the pipeline prepared it
 * (rewritten, decapsulated, redirect target set) and returns the final
 * verdict: the default one to let it go, or another one.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_encap.h"
#include "mzr_tables.h"
#include "mzr_route.h"
#include "mzr_stages.h"

static __always_inline int mzr_drop(struct xdp_md *ctx, __u32 reason, __u32 vni)
{
	mzr_count(reason);
	return mzr_stage(ctx, XDP_DROP, MZR_STAGE_ON_XDP_DROP, vni, 0, 0);
}

static __always_inline int mzr_pass(struct xdp_md *ctx)
{
	return mzr_stage(ctx, XDP_PASS, MZR_STAGE_ON_XDP_PASS, 0, 0, 0);
}

struct mzr_outer {
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
};

/* Send the (still encapsulated) packet on to another substrate host. */
static __always_inline int mzr_forward(struct xdp_md *ctx, struct mzr_outer *o,
				       const struct mzr_if_cfg *cfg, const struct mzr_hop *hop, __u32 vni)
{
	__u8 ttl = o->ip->ttl;

	if (hop->host->ip == cfg->ip)
		return mzr_drop(ctx, MZR_D_LOOP, vni);
	mzr_outer_retarget(o->eth, o->ip, o->udp, cfg->mac, hop->host->mac, cfg->ip, hop->host->ip,
			   ttl - 1);
	mzr_count(hop->path);
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, vni, 0, 0);
}

/* Answer an inner ARP request on behalf of a remote endpoint or a gateway. */
static __always_inline int mzr_arp_reply(struct xdp_md *ctx, struct mzr_outer *o,
					 struct ethhdr *ieth, struct mzr_arp *arp,
					 const struct mzr_if_cfg *cfg, const __u8 *mac, __u32 vni)
{
	mzr_arp_answer(ieth, arp, mac);
	mzr_outer_retarget(o->eth, o->ip, o->udp, cfg->mac, o->eth->h_source, cfg->ip,
			   o->ip->saddr, 64);
	mzr_count(MZR_C_ARP_REPLY);
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, vni, 0, 0);
}

/* Hand the packet to an endpoint hosted on this host. */
static __always_inline int mzr_deliver(struct xdp_md *ctx, const struct mzr_endpoint *ep,
				       __u32 vni, __u32 outer_len)
{
	if (ep->flags & MZR_EP_F_BYPASS_DECAP) {
		mzr_count(MZR_C_BYPASS);
	} else {
		struct ethhdr *eth;
		void *end;

		if (bpf_xdp_adjust_head(ctx, (int)outer_len))
			return mzr_drop(ctx, MZR_D_ADJUST, vni);
		eth = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (mzr_no_room(eth, end))
			return mzr_drop(ctx, MZR_D_ADJUST, vni);
		mzr_mac_copy(eth->h_dest, ep->mac);
		mzr_count(MZR_C_DECAP);
	}
	return mzr_stage(ctx, bpf_redirect(ep->ifindex, 0), MZR_STAGE_ON_XDP_REDIRECT, vni, ep->ifindex,
			 ep->flags & MZR_EP_F_BYPASS_DECAP ? MZR_SC_F_TUNNEL : 0);
}

SEC("xdp")
int mzr_transit(struct xdp_md *ctx)
{
	struct mzr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct mzr_outer o;
	struct mzr_if_cfg *cfg;
	struct mzr_geneve *g;
	struct ethhdr *ieth;
	struct mzr_arp *arp = NULL;
	struct mzr_endpoint *ep;
	struct mzr_hop hop;
	__be32 src, dst;
	__u32 outer_len, vni = 0, tot_len;
	int err;

	/* 1. Anything but Geneve to this host belongs to the host. */
	o.eth = mzr_parse_eth(&c);
	if (!o.eth || o.eth->h_proto != bpf_htons(ETH_P_IP))
		return mzr_pass(ctx);
	o.ip = mzr_parse_ipv4(&c);
	if (!o.ip || o.ip->protocol != IPPROTO_UDP || o.ip->ihl != 5 || o.ip->version != 4 ||
	    (o.ip->frag_off & bpf_htons(MZR_IP_FRAG_MASK)))
		return mzr_pass(ctx);
	o.udp = mzr_parse_udp(&c);
	if (!o.udp || o.udp->dest != bpf_htons(MZR_GENEVE_PORT))
		return mzr_pass(ctx);
	cfg = mzr_if_cfg_get();
	if (!cfg || o.ip->daddr != cfg->ip || cfg->ip == 0)
		return mzr_pass(ctx);

	/* Geneve addressed to us: from here on every packet is ours. */
	g = mzr_take(&c, sizeof(*g));
	if (!g)
		return mzr_drop(ctx, MZR_D_GENEVE_TRUNC, vni);
	vni = mzr_geneve_vni(g);
	if (g->ver_optlen >> 6)
		return mzr_drop(ctx, MZR_D_GENEVE_VERSION, vni);
	if (g->proto != bpf_htons(MZR_GENEVE_PROTO_ETH))
		return mzr_drop(ctx, MZR_D_GENEVE_PROTO, vni);
	if ((g->ver_optlen & 0x3f) && mzr_skip_geneve_opts(&c, (__u32)(g->ver_optlen & 0x3f) << 2))
		return mzr_drop(ctx, MZR_D_GENEVE_OPTLEN, vni);
	outer_len = c.pos - (void *)(long)ctx->data;

	ieth = mzr_parse_eth(&c);
	if (!ieth)
		return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
	if (ieth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iip = mzr_parse_ipv4(&c);

		if (!iip)
			return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
		if (iip->version != 4 || iip->ihl < 5)
			return mzr_drop(ctx, MZR_D_INNER_IP_BAD, vni);
		if (iip->ihl != 5)
			return mzr_drop(ctx, MZR_D_INNER_IP_OPTS, vni);
		if (iip->frag_off & bpf_htons(MZR_IP_FRAG_MASK))
			return mzr_drop(ctx, MZR_D_INNER_FRAG, vni);
		tot_len = mzr_clamp((__u32)bpf_ntohs(iip->tot_len), 0xffff);
		if (tot_len < sizeof(*iip) || (void *)iip + tot_len > c.end)
			return mzr_drop(ctx, MZR_D_INNER_IP_BAD, vni);
		src = iip->saddr;
		dst = iip->daddr;
	} else if (ieth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = mzr_parse_arp(&c);
		if (!arp)
			return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
		    arp->hlen != 6 || arp->plen != 4)
			return mzr_drop(ctx, MZR_D_INNER_ARP_BAD, vni);
		src = arp->spa;
		dst = arp->tpa;
	} else {
		return mzr_drop(ctx, MZR_D_INNER_PROTO, vni);
	}

	ep = mzr_ep_find(vni, dst);
	if (ep) {
		/* 2. ARP for an endpoint or gateway that is not here: answer it. */
		if (arp && arp->op == bpf_htons(MZR_ARP_REQUEST) && !ep->ifindex &&
		    arp->spa != arp->tpa)
			return mzr_arp_reply(ctx, &o, ieth, arp, cfg, ep->mac, vni);
		if (ep->type == MZR_EP_GATEWAY)
			return mzr_drop(ctx, MZR_D_TO_GATEWAY, vni);
		if (ep->type == MZR_EP_SCALED) {
			mzr_count(MZR_C_SCALED);
			mzr_stage_enter(ctx, MZR_STAGE_ON_XDP_SCALED_EP, XDP_DROP, vni, 0, 0);
			return mzr_drop(ctx, MZR_D_SCALED_NO_FN, vni);
		}
		/* 3. Hosted here. */
		if (ep->ifindex)
			return mzr_deliver(ctx, ep, vni, outer_len);
	}
	/* 4. Bouncer, Divider, VPC fallback. The TTL check comes first: it is free. */
	if (o.ip->ttl <= 1)
		return mzr_drop(ctx, MZR_D_TTL, vni);
	err = mzr_next_hop(vni, src, dst, ep, &hop);
	if (err)
		return mzr_drop(ctx, err, vni);
	/* The last overlay hop before the endpoint's host: address the inner
	 * frame to the endpoint, as a router would (a routed frame still
	 * carries its gateway's MAC). A transit host rewrites it again on
	 * delivery; a tunnel peer (a Linux geneve device, a VTEP) needs it. */
	if (hop.path == MZR_C_BOUNCE && !arp)
		mzr_mac_copy(ieth->h_dest, ep->mac);
	return mzr_forward(ctx, &o, cfg, &hop, vni);
}

char _license[] SEC("license") = "GPL";
