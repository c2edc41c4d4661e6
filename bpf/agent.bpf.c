// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The agent program, attached to the host-side end of an endpoint's veth: it
 * sees every frame the endpoint sends.
 *
 *   not unicast IPv4 or valid ARP from the endpoint ... dropped (a backend of
 *                                        a scaled endpoint may send from its VIP)
 *   destination hosted on this host .... straight to its interface (ON_XDP_REDIRECT)
 *   anything else ...................... Geneve (the VPC's VNI) to one of the
 *                                        network's bouncers, out of the NIC
 *   any drop ........................... XDP_DROP (ON_XDP_DROP)
 *
 * When the chosen bouncer is this very host, the agent does the bouncer's
 * work itself (ARP answers, next hop), since the packet would otherwise
 * have to leave and re-enter the same NIC; and it runs the stages the
 * bouncer's transit program would have run (ON_XDP_TX, ON_XDP_SCALED_EP).
 * A plain encapsulation to a remote bouncer runs no stage: that bouncer
 * runs ON_XDP_TX, the destination's host ON_XDP_REDIRECT.
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
#include "mzr_icmp.h"
#include "mzr_stages.h"

#define MZR_NO_STAGE MZR_STAGE_MAX /* an encapsulation no stage sees */

/* What the outer header takes from the inner packet. */
struct mzr_agent_flow {
	__u16 sport; /* outer UDP source port, from the inner 5-tuple */
	__u8 tos;    /* DSCP and ECN, copied */
};

static __always_inline int mzr_agent_drop(struct xdp_md *ctx, __u32 reason, __u32 vni)
{
	mzr_count(reason);
	return mzr_stage(ctx, XDP_DROP, MZR_STAGE_ON_XDP_DROP, vni, 0, 0);
}

/* Equal MACs; p may sit anywhere in the packet, so no wide loads. */
static __always_inline int mzr_mac_eq(const __u8 *p, const __u8 *mac)
{
	return p[0] == mac[0] && p[1] == mac[1] && p[2] == mac[2] && p[3] == mac[3] &&
	       p[4] == mac[4] && p[5] == mac[5];
}

/*
 * The inner 5-tuple's hash gives the outer source port: distinct flows
 * between the same two endpoints spread over substrate RSS queues and ECMP
 * paths. Fragments and protocols without ports hash addresses and protocol
 * only, so every fragment of a datagram takes the same path; ARP hashes its
 * sender and target addresses. Computed only when encapsulating.
 */
static __always_inline void mzr_agent_flow_of(const struct iphdr *ip, const struct mzr_arp *arp,
					      void *end, struct mzr_agent_flow *fl)
{
	__u8 proto;
	__u32 ports = 0;

	if (!ip) {
		fl->sport = arp ? mzr_sport(mzr_tuple_hash(arp->spa, arp->tpa, 0, 0)) : 0;
		fl->tos = 0;
		return;
	}
	proto = ip->protocol;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) &&
	    !(ip->frag_off & bpf_htons(MZR_IP_FRAG_MASK)) && ip->ihl >= 5) {
		__be16 *l4 = (void *)ip + ((__u32)ip->ihl << 2);

		if ((void *)(l4 + 2) <= end) /* source and destination port */
			ports = l4[0] | ((__u32)l4[1] << 16);
	}
	fl->sport = mzr_sport(mzr_tuple_hash(ip->saddr, ip->daddr, proto, ports));
	fl->tos = ip->tos;
}

/*
 * ARP from the endpoint: Ethernet/IPv4 only, about the endpoint itself
 * (its MAC and address, or 0.0.0.0 in an RFC 5227 probe), and not about
 * its own address (a gratuitous ARP, or a probe of it: nobody else owns
 * it, so nobody answers). Returns 0 or a drop reason.
 */
static __always_inline __u32 mzr_agent_arp_check(const struct mzr_arp *arp, const struct mzr_agent *a)
{
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4)
		return MZR_D_AGENT_ARP_BAD;
	if (mzr_mac_bad_sender(arp->sha) || mzr_ipv4_group(arp->spa))
		return MZR_D_ARP_SENDER;
	if (!mzr_mac_eq(arp->sha, a->mac))
		return MZR_D_AGENT_SPOOF;
	if (arp->spa != a->ip && (arp->spa || arp->op != bpf_htons(MZR_ARP_REQUEST)))
		return MZR_D_AGENT_SPOOF;
	if (arp->tpa == a->ip || arp->tpa == arp->spa)
		return MZR_D_ARP_GRATUITOUS;
	return 0;
}

/*
 * Direct server return: a backend of a scaled endpoint replies from the
 * scaled endpoint's address, its VIP (on the backend's lo). A source other
 * than the endpoint's own is allowed only when mzr_members holds (VPC, that
 * address, this endpoint): it is the VIP of a scaled endpoint of the VPC
 * and this endpoint one of its backends. One lookup, whatever the number of
 * backends; anything else stays a spoof. Only packets the agent would
 * otherwise drop pay for it.
 */
static __always_inline int mzr_agent_dsr(const struct mzr_agent *a, __be32 src)
{
	return mzr_member_find(a->vni, src, a->ip) != NULL;
}

/* Answer an ARP request (or probe) as the owner of its target would. */
static __always_inline int mzr_agent_arp_answer(struct xdp_md *ctx, struct ethhdr *eth,
						struct mzr_arp *arp, const __u8 *mac, __u32 vni)
{
	mzr_arp_answer(eth, arp, mac);
	mzr_count(MZR_C_ARP_REPLY);
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, vni, 0, 0);
}

/*
 * The frame does not fit the tunnel with reserve bytes of options: answer
 * ICMP "fragmentation needed" (bpf/include/mzr_icmp.h), or drop it.
 */
static __always_inline int mzr_agent_too_big(struct xdp_md *ctx, const struct mzr_if_cfg *cfg,
					     const struct mzr_agent *a, __u32 reserve)
{
	__u32 why = mzr_icmp_frag_needed(ctx, cfg, reserve);

	if (why)
		return mzr_agent_drop(ctx, why, a->vni);
	mzr_count(MZR_C_AGENT_PMTU); /* an answer to the endpoint, as an ARP reply is */
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, a->vni, 0, 0);
}

/* The bytes of options a frame to ep may get on its way: a scaled
 * endpoint's balancer may add its backend option. */
static __always_inline __u32 mzr_agent_reserve(const struct mzr_endpoint *ep)
{
	return ep && ep->type == MZR_EP_SCALED ? MZR_OPT_LB_BACKEND_LEN : 0;
}

/*
 * Encapsulate with vni (the endpoint's VPC's, or a peer VPC's when this host
 * divides and the packet crosses a peering) towards the substrate host
 * (hop_ip, hop_mac) and redirect to out_ifindex: the NIC, or a local bypass
 * endpoint. stage is the stage that sees the tunnel packet, or MZR_NO_STAGE.
 * reserve: bytes of options the packet may get further on (path MTU).
 */
static __always_inline int mzr_agent_encap(struct xdp_md *ctx, const struct mzr_if_cfg *cfg,
					   const struct mzr_agent *a, const struct iphdr *ip,
					   const struct mzr_arp *arp, __be32 hop_ip, const __u8 *hop_mac,
					   __u32 out_ifindex, __u32 stage, __u32 vni, __u32 reserve, __u64 inner_dst)
{
	struct mzr_agent_flow fl;
	__u32 inner_len;
	struct ethhdr *eth;

	mzr_agent_flow_of(ip, arp, (void *)(long)ctx->data_end, &fl);
	inner_len = ctx->data_end - ctx->data;

	/* Compute it here, as a scalar: left for later, the compiler would
	 * spill the packet pointer in 32 bits, which the verifier refuses. */
	asm volatile("" : "+r"(inner_len));
	if (mzr_too_big(cfg, inner_len, reserve)) /* path MTU: bpf/include/mzr_icmp.h */
		return mzr_agent_too_big(ctx, cfg, a, reserve);

	/* A bypass endpoint on this host gets the frame addressed to it, as
	 * decapsulation would have: a routed one carries its gateway's MAC.
	 * inner_dst: its MAC as a scalar (0: leave the frame as it is), which
	 * the compiler cannot turn into a pointer the verifier refuses. */
	if (inner_dst) {
		eth = (void *)(long)ctx->data;
		if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
			return mzr_agent_drop(ctx, MZR_D_ADJUST, a->vni);
		__builtin_memcpy(eth->h_dest, &inner_dst, 6);
	}
	if (bpf_xdp_adjust_head(ctx, -(int)MZR_OUTER_LEN))
		return mzr_agent_drop(ctx, MZR_D_ADJUST, a->vni);
	eth = (void *)(long)ctx->data;
	if ((void *)eth + MZR_OUTER_LEN > (void *)(long)ctx->data_end)
		return mzr_agent_drop(ctx, MZR_D_ADJUST, a->vni);
	mzr_outer_write(eth, cfg->mac, hop_mac, cfg->ip, hop_ip, vni, fl.sport, fl.tos, inner_len);
	mzr_count(MZR_C_AGENT_ENCAP);
	if (stage == MZR_NO_STAGE) {
		mzr_count(XDP_REDIRECT);
		return bpf_redirect(out_ifindex, 0);
	}
	return mzr_stage(ctx, bpf_redirect(out_ifindex, 0), stage, vni, out_ifindex, MZR_SC_F_TUNNEL);
}

SEC("xdp")
int mzr_agent(struct xdp_md *ctx)
{
	struct mzr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct iphdr *ip = NULL;
	struct mzr_agent *a;
	struct mzr_if_cfg *cfg;
	struct mzr_arp *arp = NULL;
	struct mzr_endpoint *ep;
	struct mzr_host *bouncer;
	struct mzr_hop hop;
	struct ethhdr *eth;
	__be32 src, dst;
	__u32 n, vni;
	int err;

	a = mzr_agent_find(ctx->ingress_ifindex);
	cfg = mzr_if_cfg_get();
	if (!a || !cfg || !cfg->ip)
		return mzr_agent_drop(ctx, MZR_D_AGENT_NOCFG, a ? a->vni : 0);
	vni = a->vni;

	/* 1. The endpoint speaks unicast IPv4, or ARP, for its own address. */
	eth = mzr_parse_eth(&c);
	if (!eth)
		return mzr_agent_drop(ctx, MZR_D_AGENT_TRUNC, vni);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = mzr_parse_ipv4(&c);
		if (!ip)
			return mzr_agent_drop(ctx, MZR_D_AGENT_TRUNC, vni);
		/* A header the transit program would refuse is refused here
		 * too, wherever the bouncer is. */
		if (mzr_ipv4_malformed(ip, c.end))
			return mzr_agent_drop(ctx, MZR_D_INNER_IP_BAD, vni);
		src = ip->saddr;
		dst = ip->daddr;
		/* The overlay carries unicast only: multicast and broadcast,
		 * by IPv4 or by Ethernet destination, would only travel to a
		 * bouncer and a divider to be dropped there. */
		if ((eth->h_dest[0] & 1) || mzr_ipv4_group(dst))
			return mzr_agent_drop(ctx, MZR_D_AGENT_MCAST, vni);
		if (src != a->ip && !mzr_agent_dsr(a, src))
			return mzr_agent_drop(ctx, MZR_D_AGENT_SPOOF, vni);
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = mzr_parse_arp(&c);
		if (!arp)
			return mzr_agent_drop(ctx, MZR_D_AGENT_TRUNC, vni);
		err = mzr_agent_arp_check(arp, a);
		if (err)
			return mzr_agent_drop(ctx, err, vni);
		src = arp->spa; /* 0.0.0.0 in a probe */
		dst = arp->tpa;
	} else {
		return mzr_agent_drop(ctx, MZR_D_AGENT_PROTO, vni);
	}

	ep = mzr_ep_find(vni, dst);

	/* 2. Same host: never leaves it. */
	if (ep && ep->ifindex && ep->type == MZR_EP_SIMPLE) {
		/* A probe's answer is addressed to 0.0.0.0, which the overlay
		 * cannot route back: answer it here, as the owner would. */
		if (arp && !src)
			return mzr_agent_arp_answer(ctx, eth, arp, ep->mac, vni);
		if (ep->flags & MZR_EP_F_BYPASS_DECAP)
			return mzr_agent_encap(ctx, cfg, a, ip, arp, cfg->ip, cfg->mac, ep->ifindex,
					       MZR_STAGE_ON_XDP_REDIRECT, vni, 0, arp ? 0 : mzr_mac_load(ep->mac));
		if (!arp)
			mzr_mac_copy(eth->h_dest, ep->mac);
		mzr_count(MZR_C_AGENT_LOCAL);
		return mzr_stage(ctx, bpf_redirect(ep->ifindex, 0), MZR_STAGE_ON_XDP_REDIRECT, vni,
				 ep->ifindex, 0);
	}

	/* 3. To one of the network's bouncers. */
	n = a->nbouncers;
	if (n == 0 || n > MZR_MAX_HOPS)
		return mzr_agent_drop(ctx, MZR_D_NO_HOPS, vni);
	bouncer = mzr_host_get(mzr_hop_slot(a->bouncer, n, src, dst));
	if (!bouncer)
		return mzr_agent_drop(ctx, MZR_D_NO_SUBSTRATE, vni);
	if (bouncer->ip != cfg->ip)
		return mzr_agent_encap(ctx, cfg, a, ip, arp, bouncer->ip, bouncer->mac, cfg->ifindex,
				       MZR_NO_STAGE, vni, mzr_agent_reserve(ep), 0);

	/* 4. This host is the bouncer: its work, and its stages. */
	if (ep && arp && arp->op == bpf_htons(MZR_ARP_REQUEST))
		return mzr_agent_arp_answer(ctx, eth, arp, ep->mac, vni);
	if (ep && ep->type == MZR_EP_GATEWAY)
		return mzr_agent_drop(ctx, MZR_D_TO_GATEWAY, vni);
	if (ep && ep->type == MZR_EP_SCALED) {
		__u32 len = ctx->data_end - ctx->data;

		/* The function may send it to a backend elsewhere with its
		 * option: the same path MTU as through a remote bouncer. */
		asm volatile("" : "+r"(len)); /* a scalar, as in mzr_agent_encap */
		if (mzr_too_big(cfg, len, MZR_OPT_LB_BACKEND_LEN))
			return mzr_agent_too_big(ctx, cfg, a, MZR_OPT_LB_BACKEND_LEN);
		/* Offered as the transit program offers it, but as the plain
		 * frame (flags 0): nothing has encapsulated it yet. */
		mzr_count(MZR_C_SCALED);
		mzr_stage_enter(ctx, MZR_STAGE_ON_XDP_SCALED_EP, XDP_DROP, vni, 0, 0);
		return mzr_agent_drop(ctx, MZR_D_SCALED_NO_FN, vni);
	}
	err = mzr_next_hop(vni, src, dst, ep, arp != NULL, &hop);
	if (err)
		return mzr_agent_drop(ctx, err, vni);
	if (hop.host->ip == cfg->ip)
		return mzr_agent_drop(ctx, MZR_D_LOOP, vni);
	if (hop.path == MZR_C_BOUNCE && !arp)  /* to the endpoint, as the transit's bounce does */
		mzr_mac_copy(eth->h_dest, ep->mac);
	mzr_count(hop.path);
	return mzr_agent_encap(ctx, cfg, a, ip, arp, hop.host->ip, hop.host->mac, cfg->ifindex,
			       MZR_STAGE_ON_XDP_TX, hop.vni, 0, 0);
}

char _license[] SEC("license") = "GPL";
