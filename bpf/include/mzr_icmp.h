/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Path MTU for the agent. Encapsulation adds MZR_OUTER_LEN (50) bytes: outer
 * IPv4 20, UDP 8, Geneve 8 and the inner Ethernet header 14 that now rides
 * inside. An endpoint frame whose encapsulation would not fit the substrate
 * NIC's MTU (mzr_if_cfg.mtu; 0 is taken as 1500) is never sent: the outer
 * header carries DF, so it would be lost further on anyway. A frame to a
 * scaled endpoint's VIP may get the scaled function's Geneve option on the
 * way to a backend (MZR_OPT_LB_BACKEND_LEN, 8 bytes): the agent reserves
 * them (reserve below), so the sender learns the MTU that carries it.
 *
 *   IPv4 with DF ......... ICMP "fragmentation needed" (type 3 code 4,
 *                          RFC 1191 next-hop MTU = NIC MTU - 50 - reserve)
 *                          back to the endpoint, XDP_TX out of the veth it
 *                          came in on
 *   anything else ........ dropped, MZR_D_AGENT_TOO_BIG
 *
 * The reply is built in place: 28 bytes (IPv4 + ICMP header) are added in
 * front, which puts the original IPv4 header right where the quote belongs,
 * and the tail is cut after the original header (with its options) and the
 * first 8 bytes of its payload (RFC 792). Its source address is the original
 * destination: the agent knows no router address the endpoint would
 * recognise, and Linux takes a "fragmentation needed" from any source, it
 * matches the quoted header. No error answers an ICMP error (RFC 1122
 * 3.2.2) or a fragment other than the first.
 */
#ifndef MZR_ICMP_H
#define MZR_ICMP_H

#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_csum.h"
#include "mzr_maps.h"
#include "mzr_parse.h"

/* ICMP (RFC 792); linux/icmp.h pulls in libc headers, so spelled out here. */
struct mzr_icmp {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu; /* "fragmentation needed": the next-hop MTU (RFC 1191) */
};

#define MZR_ICMP_UNREACH 3
#define MZR_ICMP_FRAG_NEEDED 4
#define MZR_ICMP_SOURCE_QUENCH 4
#define MZR_ICMP_REDIRECT 5
#define MZR_ICMP_TIME_EXCEEDED 11
#define MZR_ICMP_PARAMPROB 12

#define MZR_MTU_DEFAULT 1500
#define MZR_ICMP_HDRS (sizeof(struct iphdr) + sizeof(struct mzr_icmp))
#define MZR_ICMP_WORDS ((sizeof(struct mzr_icmp) + 60 + 8) / 2) /* ICMP header and the longest quote */

static __always_inline __u32 mzr_nic_mtu(const struct mzr_if_cfg *cfg)
{
	return cfg->mtu ? cfg->mtu : MZR_MTU_DEFAULT;
}

/* Would a frame of frame_len bytes, encapsulated with reserve bytes of
 * options, exceed the NIC's MTU? */
static __always_inline int mzr_too_big(const struct mzr_if_cfg *cfg, __u32 frame_len, __u32 reserve)
{
	return frame_len + MZR_OUTER_LEN - sizeof(struct ethhdr) + reserve > mzr_nic_mtu(cfg);
}

static __always_inline int mzr_icmp_is_error(__u8 type)
{
	return type == MZR_ICMP_UNREACH || type == MZR_ICMP_SOURCE_QUENCH || type == MZR_ICMP_REDIRECT ||
	       type == MZR_ICMP_TIME_EXCEEDED || type == MZR_ICMP_PARAMPROB;
}

/*
 * The endpoint's frame in ctx is too big to encapsulate (with reserve
 * bytes of options): turn it into the ICMP "fragmentation needed" reply to
 * send back (returns 0), or say why it must be dropped instead (returns the
 * drop reason). Counts nothing.
 */
static __always_inline __u32 mzr_icmp_frag_needed(struct xdp_md *ctx, const struct mzr_if_cfg *cfg,
						  __u32 reserve)
{
	__u32 len = ctx->data_end - ctx->data;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct mzr_icmp *icmp;
	__u8 src_mac[6], dst_mac[6];
	__u32 hlen, quote, sum = 0;
	__be32 saddr, daddr;
	__u16 *w;
	int i;

	asm volatile("" : "+r"(len)); /* a scalar, as in mzr_agent_encap */
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return MZR_D_AGENT_TOO_BIG;
	if (!(ip->frag_off & bpf_htons(MZR_IP_DF)) || (ip->frag_off & bpf_htons(MZR_IP_OFFSET)) ||
	    ip->ihl < 5)
		return MZR_D_AGENT_TOO_BIG;
	hlen = mzr_clamp((__u32)ip->ihl * 4, 63);
	quote = hlen + 8;
	if (len < sizeof(*eth) + quote)
		return MZR_D_AGENT_TOO_BIG;
	if (ip->protocol == IPPROTO_ICMP) {
		__u8 *type = (void *)ip + hlen;

		if ((void *)(type + 1) > end || mzr_icmp_is_error(*type))
			return MZR_D_AGENT_TOO_BIG;
	}
	__builtin_memcpy(src_mac, eth->h_source, 6);
	__builtin_memcpy(dst_mac, eth->h_dest, 6);
	saddr = ip->saddr;
	daddr = ip->daddr;

	/* [eth][ip][icmp] in front: the original IPv4 header is the quote. */
	if (bpf_xdp_adjust_head(ctx, -(int)MZR_ICMP_HDRS))
		return MZR_D_ADJUST;
	len += MZR_ICMP_HDRS;
	if (bpf_xdp_adjust_tail(ctx, (int)(sizeof(*eth) + MZR_ICMP_HDRS + quote) - (int)len))
		return MZR_D_ADJUST;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip = data + sizeof(*eth);
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > end)
		return MZR_D_ADJUST;

	__builtin_memcpy(eth->h_dest, src_mac, 6);
	__builtin_memcpy(eth->h_source, dst_mac, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xc0; /* internetwork control, as routers send their errors */
	ip->tot_len = bpf_htons(MZR_ICMP_HDRS + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = daddr;
	ip->daddr = saddr;
	mzr_ipv4_csum(ip);

	icmp->type = MZR_ICMP_UNREACH;
	icmp->code = MZR_ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(mzr_nic_mtu(cfg) - MZR_OUTER_LEN - reserve); /* RFC 1191 */

	/* The ICMP message ends where the packet does: sum to there. */
	w = (void *)icmp;
#pragma unroll
	for (i = 0; i < (int)MZR_ICMP_WORDS; i++) {
		if ((void *)(w + i + 1) > end)
			break;
		sum += w[i];
	}
	/* Keep clang from storing through the loop's last bound-checked
	 * pointer, which the verifier knows nothing about on the way out. */
	asm volatile("" : "+r"(icmp));
	icmp->checksum = mzr_csum_fold(sum);
	return 0;
}

#endif /* MZR_ICMP_H */
