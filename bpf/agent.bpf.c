// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The agent program, attached to the host-side end of an endpoint's veth: it
 * sees every frame the endpoint sends.
 *
 *   destination hosted on this host ... straight to its interface
 *   anything else ..................... Geneve (the VPC's VNI) to one of the
 *                                       network's bouncers, out of the NIC
 *
 * When the chosen bouncer is this very host, the agent does the bouncer's
 * work itself (ARP answers, next hop), since the packet would otherwise
 * have to leave and re-enter the same NIC.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_encap.h"
#include "mzr_tables.h"
#include "mzr_route.h"
#include "mzr_icmp.h"

static __always_inline int mzr_agent_drop(__u32 reason)
{
	mzr_count(reason);
	mzr_count(MZR_C_DROP);
	return XDP_DROP;
}

/*
 * Encapsulate towards the substrate host (ip, mac) and send: out of the NIC,
 * or to a local bypass endpoint.
 */
static __always_inline int mzr_agent_encap(struct xdp_md *ctx, const struct mzr_if_cfg *cfg,
					   const struct mzr_agent *a, __be32 hop_ip,
					   const __u8 *hop_mac, __u32 hash, __u32 out_ifindex)
{
	__u32 inner_len = ctx->data_end - ctx->data;
	struct ethhdr *eth;

	/* Compute it here, as a scalar: left for later, the compiler would
	 * spill the packet pointer in 32 bits, which the verifier refuses. */
	asm volatile("" : "+r"(inner_len));
	if (mzr_too_big(cfg, inner_len)) /* path MTU: bpf/include/mzr_icmp.h */
		return mzr_icmp_frag_needed(ctx, cfg);

	if (bpf_xdp_adjust_head(ctx, -(int)MZR_OUTER_LEN))
		return mzr_agent_drop(MZR_D_ADJUST);
	eth = (void *)(long)ctx->data;
	if ((void *)eth + MZR_OUTER_LEN > (void *)(long)ctx->data_end)
		return mzr_agent_drop(MZR_D_ADJUST);
	mzr_outer_write(eth, cfg->mac, hop_mac, cfg->ip, hop_ip, a->vni,
			0xc000 | (hash >> 18), inner_len);
	mzr_count(MZR_C_AGENT_ENCAP);
	mzr_count(XDP_REDIRECT);
	return bpf_redirect(out_ifindex, 0);
}

SEC("xdp")
int mzr_agent(struct xdp_md *ctx)
{
	struct mzr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct mzr_agent *a;
	struct mzr_if_cfg *cfg;
	struct mzr_arp *arp = NULL;
	struct mzr_endpoint *ep;
	struct mzr_host *bouncer;
	struct mzr_hop hop;
	struct ethhdr *eth;
	__be32 src, dst;
	__u32 hash, n;
	int err;

	a = mzr_agent_find(ctx->ingress_ifindex);
	cfg = mzr_if_cfg_get();
	if (!a || !cfg || !cfg->ip)
		return mzr_agent_drop(MZR_D_AGENT_NOCFG);

	eth = mzr_parse_eth(&c);
	if (!eth)
		return mzr_agent_drop(MZR_D_AGENT_TRUNC);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = mzr_parse_ipv4(&c);

		if (!ip)
			return mzr_agent_drop(MZR_D_AGENT_TRUNC);
		src = ip->saddr;
		dst = ip->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = mzr_parse_arp(&c);
		if (!arp)
			return mzr_agent_drop(MZR_D_AGENT_TRUNC);
		src = arp->spa;
		dst = arp->tpa;
	} else {
		return mzr_agent_drop(MZR_D_AGENT_PROTO);
	}
	/* An endpoint speaks only for its own address. */
	if (src != a->ip)
		return mzr_agent_drop(MZR_D_AGENT_SPOOF);

	ep = mzr_ep_find(a->vni, dst);
	hash = mzr_flow_hash(src, dst);

	/* Same host: never leaves it. */
	if (ep && ep->ifindex && ep->type == MZR_EP_SIMPLE) {
		if (ep->flags & MZR_EP_F_BYPASS_DECAP)
			return mzr_agent_encap(ctx, cfg, a, cfg->ip, cfg->mac, hash, ep->ifindex);
		if (!arp)
			mzr_mac_copy(eth->h_dest, ep->mac);
		mzr_count(MZR_C_AGENT_LOCAL);
		mzr_count(XDP_REDIRECT);
		return bpf_redirect(ep->ifindex, 0);
	}

	n = a->nbouncers;
	if (n == 0 || n > MZR_MAX_HOPS)
		return mzr_agent_drop(MZR_D_NO_HOPS);
	bouncer = mzr_host_get(mzr_hop_slot(a->bouncer, n, src, dst));
	if (!bouncer)
		return mzr_agent_drop(MZR_D_NO_SUBSTRATE);
	if (bouncer->ip != cfg->ip)
		return mzr_agent_encap(ctx, cfg, a, bouncer->ip, bouncer->mac, hash, cfg->ifindex);

	/* This host is the bouncer. */
	if (ep && arp && arp->op == bpf_htons(MZR_ARP_REQUEST) && arp->spa != arp->tpa) {
		mzr_arp_answer(eth, arp, ep->mac);
		mzr_count(MZR_C_ARP_REPLY);
		mzr_count(XDP_TX);
		return XDP_TX;
	}
	if (ep && ep->type == MZR_EP_GATEWAY)
		return mzr_agent_drop(MZR_D_TO_GATEWAY);
	if (ep && ep->type == MZR_EP_SCALED)
		return mzr_agent_drop(MZR_D_SCALED_NO_FN);
	err = mzr_next_hop(a->vni, src, dst, ep, &hop);
	if (err)
		return mzr_agent_drop(err);
	if (hop.host->ip == cfg->ip)
		return mzr_agent_drop(MZR_D_LOOP);
	if (hop.path == MZR_C_BOUNCE && !arp)  /* to the endpoint, as the transit's bounce does */
		mzr_mac_copy(eth->h_dest, ep->mac);
	mzr_count(hop.path);
	return mzr_agent_encap(ctx, cfg, a, hop.host->ip, hop.host->mac, hash, cfg->ifindex);
}

char _license[] SEC("license") = "GPL";
