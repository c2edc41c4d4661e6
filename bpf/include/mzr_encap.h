/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writing outer (substrate) headers. */
#ifndef MZR_ENCAP_H
#define MZR_ENCAP_H

#include "mzr_parse.h"
#include "mzr_csum.h"

static __always_inline void mzr_mac_copy(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 6);
}

/* A MAC as a scalar (in its low 6 bytes, in memory order), to carry it
 * where a pointer would not do. */
static __always_inline __u64 mzr_mac_load(const __u8 *mac)
{
	__u64 v = 0;

	__builtin_memcpy(&v, mac, 6);
	return v;
}

/*
 * Point an existing outer header at a new substrate hop: MACs, source and
 * destination IP, TTL, header checksum. The UDP checksum is zeroed, which
 * IPv4 allows for tunnels and which keeps it valid after the address change.
 */
static __always_inline void mzr_outer_retarget(struct ethhdr *eth, struct iphdr *ip,
					       struct udphdr *udp, const __u8 *src_mac,
					       const __u8 *dst_mac, __be32 src, __be32 dst,
					       __u8 ttl)
{
	mzr_mac_copy(eth->h_dest, dst_mac);
	mzr_mac_copy(eth->h_source, src_mac);
	ip->saddr = src;
	ip->daddr = dst;
	ip->ttl = ttl;
	mzr_ipv4_csum(ip);
	udp->check = 0;
}

/*
 * Fill a fresh outer header in front of an inner frame of inner_len bytes.
 * tos is the inner IPv4 header's (0 for ARP): its DSCP is copied, and so is
 * its ECN field, CE included (RFC 6040 section 4.1, normal mode), so that
 * congestion marked before the tunnel stays visible and ECN-capable
 * transports stay ECN-capable on the substrate.
 */
static __always_inline void mzr_outer_write(struct ethhdr *eth, const __u8 *src_mac,
					    const __u8 *dst_mac, __be32 src, __be32 dst,
					    __u32 vni, __u16 sport, __u8 tos, __u16 inner_len)
{
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct mzr_geneve *g = (void *)(udp + 1);
	__u16 udp_len = sizeof(*udp) + sizeof(*g) + inner_len;

	mzr_mac_copy(eth->h_dest, dst_mac);
	mzr_mac_copy(eth->h_source, src_mac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(sizeof(*ip) + udp_len);
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF: the overlay MTU is the endpoints' job */
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = src;
	ip->daddr = dst;
	mzr_ipv4_csum(ip);

	udp->source = bpf_htons(sport);
	udp->dest = bpf_htons(MZR_GENEVE_PORT);
	udp->len = bpf_htons(udp_len);
	udp->check = 0;

	g->ver_optlen = 0;
	g->flags = 0;
	g->proto = bpf_htons(MZR_GENEVE_PROTO_ETH);
	g->vni[0] = vni >> 16;
	g->vni[1] = vni >> 8;
	g->vni[2] = vni;
	g->_rsvd = 0;
}

/* Turn an ARP request for target_ip into its reply from target_mac, in place. */
static __always_inline void mzr_arp_answer(struct ethhdr *eth, struct mzr_arp *arp,
					   const __u8 *target_mac)
{
	__be32 target_ip = arp->tpa;

	mzr_mac_copy(eth->h_dest, arp->sha);
	mzr_mac_copy(eth->h_source, target_mac);
	arp->op = bpf_htons(MZR_ARP_REPLY);
	mzr_mac_copy(arp->tha, arp->sha);
	arp->tpa = arp->spa;
	mzr_mac_copy(arp->sha, target_mac);
	arp->spa = target_ip;
}

#endif /* MZR_ENCAP_H */
