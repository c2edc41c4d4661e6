// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The transit program, attached to a host's substrate NIC.
 *
 *   not Geneve to this host ............ XDP_PASS     (ON_XDP_PASS)
 *   Geneve to us, but malformed, from an
 *   untrusted source, from a tunnel peer
 *   for an address not behind it,
 *   control (O bit),
 *   with critical options, lying about
 *   its length, gratuitous ARP ......... counted drop (ON_XDP_DROP)
 *   ARP request for a known remote ep .. answer it    (ON_XDP_TX)
 *   endpoint hosted here ............... decap or bypass, XDP_REDIRECT (ON_XDP_REDIRECT)
 *   scaled endpoint .................... tail call   (ON_XDP_SCALED_EP), else drop
 *   endpoint known, remote (Bouncer) ... XDP_TX to its host  (ON_XDP_TX)
 *   network known (Divider) ............ XDP_TX to one of its bouncers
 *   a peered VPC's address (Divider) ... XDP_TX to one of the peer's dividers,
 *                                        with the peer's VNI
 *   otherwise .......................... XDP_TX to one of the VPC's dividers
 *   any drop ........................... XDP_DROP     (ON_XDP_DROP)
 *
 * A stage function receives the packet exactly as the pipeline prepared it
 * (rewritten, decapsulated, redirect target set) and returns the final
 * verdict: the pipeline's (from mzr_stage_ctx) to let it go, or another one.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_encap.h"
#include "mzr_deliver.h"
#include "mzr_tables.h"
#include "mzr_route.h"
#include "mzr_stages.h"

static __always_inline int mzr_drop(struct xdp_md *ctx, __u32 reason, __u32 vni)
{
	mzr_count(reason);
	return mzr_stage(ctx, XDP_DROP, MZR_STAGE_ON_XDP_DROP, vni, 0, MZR_SC_F_TUNNEL);
}

static __always_inline int mzr_pass(struct xdp_md *ctx)
{
	return mzr_stage(ctx, XDP_PASS, MZR_STAGE_ON_XDP_PASS, 0, 0, 0);
}

struct mzr_outer {
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct mzr_geneve *g;
};

/*
 * May the tunnel peer at outer address peer send an inner packet of vni
 * from inner address src? Only for an endpoint behind that very peer: its
 * entry, which every bouncer of its network holds, names the peer's
 * substrate slot as its host. A gateway, a scaled endpoint, an endpoint
 * hosted here or behind another peer or host, and an address that is no
 * endpoint (of the VPC or of a peered one) are no such endpoint.
 *
 * A subprogram, not inlined: only a peer's packets call it, and inlined its
 * second probe loop made the transit hosts' paths (bounce, divide) pay for
 * the registers it takes.
 */
static __noinline int mzr_peer_sender_ok(__u32 vni, __be32 src, __be32 peer)
{
	struct mzr_endpoint *ep = mzr_ep_find(vni, src);
	struct mzr_host *h;

	if (!ep || ep->type != MZR_EP_SIMPLE || ep->ifindex)
		return 0;
	h = mzr_host_get(ep->host);
	return h && h->ip == peer;
}

/* Send the (still encapsulated) packet on to another substrate host, with
 * the VNI of the hop (a peer VPC's when it crosses a peering). */
static __always_inline int mzr_forward(struct xdp_md *ctx, struct mzr_outer *o,
				       const struct mzr_if_cfg *cfg, const struct mzr_hop *hop, __u32 vni)
{
	__u8 ttl = o->ip->ttl;

	if (hop->host->ip == cfg->ip)
		return mzr_drop(ctx, MZR_D_LOOP, vni);
	mzr_outer_retarget(o->eth, o->ip, o->udp, cfg->mac, hop->host->mac, cfg->ip, hop->host->ip,
			   ttl - 1);
	if (hop->vni != vni) /* the Geneve header is in no checksum */
		mzr_geneve_set_vni(o->g, hop->vni);
	mzr_count(hop->path);
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, hop->vni, 0, MZR_SC_F_TUNNEL);
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
	return mzr_stage(ctx, XDP_TX, MZR_STAGE_ON_XDP_TX, vni, 0, MZR_SC_F_TUNNEL);
}

/* Hand the packet to an endpoint hosted on this host. outer_ecn and
 * inner_ecn: the ECN fields of an inner IPv4 packet (0 for ARP); ieth: the
 * inner frame, at outer_len. */
static __always_inline int mzr_deliver(struct xdp_md *ctx, struct mzr_outer *o, struct ethhdr *ieth,
				       const struct mzr_endpoint *ep, __u32 vni, __u32 outer_len,
				       __u8 inner_ecn, int arp)
{
	__u8 outer_ecn = o->ip->tos & MZR_ECN_MASK;

	if (ep->flags & MZR_EP_F_BYPASS_DECAP) {
		if (!arp) /* mzr_deliver.h */
			mzr_bypass_address(o->udp, ieth, ep->mac);
		mzr_count(MZR_C_BYPASS);
	} else {
		__u32 why = mzr_decap(ctx, outer_len, outer_ecn, inner_ecn, ep->mac); /* mzr_deliver.h */

		if (why)
			return mzr_drop(ctx, why, vni);
		mzr_count(MZR_C_DECAP);
	}
	return mzr_stage(ctx, bpf_redirect(ep->ifindex, 0), MZR_STAGE_ON_XDP_REDIRECT, vni, ep->ifindex,
			 ep->flags & MZR_EP_F_BYPASS_DECAP ? MZR_SC_F_TUNNEL : 0);
}

/*
 * An outer IPv4 header with options: skip them only to see whether the
 * packet is Geneve to this host. Ours or not, no transit host sends
 * options, so Geneve to us is dropped; anything else is the host's.
 */
static __always_inline int mzr_outer_options(struct xdp_md *ctx, void *end, struct iphdr *ip)
{
	struct mzr_if_cfg *cfg;
	struct udphdr *udp;

	udp = (void *)ip + mzr_clamp((__u32)ip->ihl << 2, 60);
	if (mzr_no_room(udp, end) || udp->dest != bpf_htons(MZR_GENEVE_PORT))
		return mzr_pass(ctx);
	cfg = mzr_if_cfg_get();
	if (!cfg || ip->daddr != cfg->ip || cfg->ip == 0)
		return mzr_pass(ctx);
	return mzr_drop(ctx, MZR_D_OUTER_IP_OPTS, 0);
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
	struct mzr_source *from;
	struct mzr_hop hop;
	__be32 src, dst;
	__u32 outer_len, vni = 0, frame_len;
	__u8 ecn = 0;
	int err, peer;

	/* 1. Anything but Geneve to this host belongs to the host. */
	o.eth = mzr_parse_eth(&c);
	if (!o.eth || o.eth->h_proto != bpf_htons(ETH_P_IP))
		return mzr_pass(ctx);
	o.ip = mzr_parse_ipv4(&c);
	if (!o.ip || o.ip->protocol != IPPROTO_UDP || o.ip->ihl < 5 || o.ip->version != 4 ||
	    (o.ip->frag_off & bpf_htons(MZR_IP_FRAG_MASK)))
		return mzr_pass(ctx);
	if (o.ip->ihl != 5)
		return mzr_outer_options(ctx, c.end, o.ip);
	o.udp = mzr_parse_udp(&c);
	if (!o.udp || o.udp->dest != bpf_htons(MZR_GENEVE_PORT))
		return mzr_pass(ctx);
	cfg = mzr_if_cfg_get();
	if (!cfg || o.ip->daddr != cfg->ip || cfg->ip == 0)
		return mzr_pass(ctx);

	/* Geneve addressed to us: from here on every packet is ours, and the
	 * host stack never sees it. */
	/* Lengths must describe the frame exactly: a Geneve frame carrying
	 * Ethernet is longer than the Ethernet minimum, so it has no padding. */
	frame_len = c.end - (void *)o.eth;
	if (bpf_ntohs(o.ip->tot_len) != frame_len - sizeof(struct ethhdr) ||
	    bpf_ntohs(o.udp->len) != frame_len - sizeof(struct ethhdr) - sizeof(struct iphdr))
		return mzr_drop(ctx, MZR_D_OUTER_LEN, vni);
	g = o.g = mzr_take(&c, sizeof(*g));
	if (!g)
		return mzr_drop(ctx, MZR_D_GENEVE_TRUNC, vni);
	vni = mzr_geneve_vni(g);
	/* Only known transit hosts and tunnel peers (for their VPC) may send. */
	from = mzr_source_find(o.ip->saddr, vni);
	if (o.ip->saddr == cfg->ip || !from)
		return mzr_drop(ctx, MZR_D_UNTRUSTED_SRC, vni);
	/* A source trusted for one VNI is a tunnel peer: checked below. */
	peer = from->vni != 0;
	if (g->ver_optlen >> 6)
		return mzr_drop(ctx, MZR_D_GENEVE_VERSION, vni);
	if (g->proto != bpf_htons(MZR_GENEVE_PROTO_ETH))
		return mzr_drop(ctx, MZR_D_GENEVE_PROTO, vni);
	if (g->flags & MZR_GENEVE_F_OAM)
		return mzr_drop(ctx, MZR_D_GENEVE_OAM, vni);
	if (g->flags & MZR_GENEVE_F_CRITICAL)
		return mzr_drop(ctx, MZR_D_GENEVE_CRITICAL, vni);
	if (g->ver_optlen & 0x3f) {
		err = mzr_skip_geneve_opts(&c, (__u32)(g->ver_optlen & 0x3f) << 2);
		if (err)
			return mzr_drop(ctx, err == MZR_OPTS_CRITICAL ? MZR_D_GENEVE_CRITICAL :
					MZR_D_GENEVE_OPTLEN, vni);
	}
	outer_len = c.pos - (void *)o.eth; /* o.eth is ctx->data: no second 32-bit load of it to spill */

	ieth = mzr_parse_eth(&c);
	if (!ieth)
		return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
	if (ieth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iip = mzr_parse_ipv4(&c);

		if (!iip)
			return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
		/* Options and fragments go through: forwarding needs only the
		 * addresses, which every fragment carries. */
		if (mzr_ipv4_malformed(iip, c.end))
			return mzr_drop(ctx, MZR_D_INNER_IP_BAD, vni);
		src = iip->saddr;
		dst = iip->daddr;
		ecn = iip->tos & MZR_ECN_MASK;
	} else if (ieth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = mzr_parse_arp(&c);
		if (!arp)
			return mzr_drop(ctx, MZR_D_INNER_TRUNC, vni);
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
		    arp->hlen != 6 || arp->plen != 4)
			return mzr_drop(ctx, MZR_D_INNER_ARP_BAD, vni);
		src = arp->spa;
		dst = arp->tpa;
		/* Gratuitous ARP updates caches the overlay does not have. */
		if (src == dst)
			return mzr_drop(ctx, MZR_D_ARP_GRATUITOUS, vni);
		/* No host sends from a group or zero address. A probe (sender
		 * 0.0.0.0, RFC 5227) is not answered either: its reply carries
		 * no address to route it back by, and the overlay gives every
		 * address to one endpoint only. */
		if (mzr_mac_bad_sender(arp->sha) || mzr_ipv4_group(src) || src == 0)
			return mzr_drop(ctx, MZR_D_ARP_SENDER, vni);
	} else {
		return mzr_drop(ctx, MZR_D_INNER_PROTO, vni);
	}
	/* A tunnel peer speaks for the endpoints behind it only: not for
	 * another endpoint of its VPC, nor for a peered VPC's address (whose
	 * owner would get the replies). Transit hosts are trusted as before. */
	if (peer && !mzr_peer_sender_ok(vni, src, o.ip->saddr))
		return mzr_drop(ctx, MZR_D_TUNNEL_SRC, vni);

	ep = mzr_ep_find(vni, dst);
	if (ep) {
		/* 2. ARP for an endpoint or gateway that is not here: answer it. */
		if (arp && arp->op == bpf_htons(MZR_ARP_REQUEST) && !ep->ifindex)
			return mzr_arp_reply(ctx, &o, ieth, arp, cfg, ep->mac, vni);
		if (ep->type == MZR_EP_GATEWAY)
			return mzr_drop(ctx, MZR_D_TO_GATEWAY, vni);
		if (ep->type == MZR_EP_SCALED) {
			mzr_count(MZR_C_SCALED);
			mzr_stage_enter(ctx, MZR_STAGE_ON_XDP_SCALED_EP, XDP_DROP, vni, 0, MZR_SC_F_TUNNEL);
			return mzr_drop(ctx, MZR_D_SCALED_NO_FN, vni);
		}
		/* 3. Hosted here. */
		if (ep->ifindex)
			return mzr_deliver(ctx, &o, ieth, ep, vni, outer_len, ecn, arp != NULL);
	}
	/* 4. Bouncer, Divider, Peer, VPC fallback. The TTL check comes first: it is free. */
	if (o.ip->ttl <= 1)
		return mzr_drop(ctx, MZR_D_TTL, vni);
	err = mzr_next_hop(vni, src, dst, ep, arp != NULL, &hop);
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
