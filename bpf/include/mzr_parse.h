/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet parsing. A cursor walks the frame; every parse_* checks its own
 * bounds and returns NULL when the header does not fit, so call sites read
 * like the packet layout.
 */
#ifndef MZR_PARSE_H
#define MZR_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "mzr_bounds.h"

struct mzr_cursor {
	void *pos;
	void *end;
};

/* Geneve fixed header (RFC 8926). */
struct mzr_geneve {
	__u8 ver_optlen; /* version:2, option length in 4-byte words:6 */
	__u8 flags;      /* O:1 C:1 reserved:6 */
	__be16 proto;
	__u8 vni[3];
	__u8 _rsvd;
};

/* ARP for Ethernet/IPv4 (RFC 826), the only kind we answer or forward. */
struct mzr_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

#define MZR_ARP_REQUEST 1
#define MZR_ARP_REPLY 2
#define MZR_IP_FRAG_MASK 0x3fff /* MF flag and fragment offset */
#define MZR_IP_DF 0x4000        /* don't fragment */
#define MZR_IP_OFFSET 0x1fff    /* fragment offset: non-zero in a later fragment */

/* The ECN field, the low two bits of the IPv4 TOS byte (RFC 3168). */
#define MZR_ECN_MASK 0x3
#define MZR_ECN_NOT_ECT 0
#define MZR_ECN_ECT1 1
#define MZR_ECN_ECT0 2
#define MZR_ECN_CE 3

/* Geneve header plus the option TLVs up to the inner frame. */
#define MZR_OUTER_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + \
		       sizeof(struct udphdr) + sizeof(struct mzr_geneve))

#define mzr_no_room(p, end) ((void *)((p) + 1) > (end))

static __always_inline void *mzr_take(struct mzr_cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

static __always_inline struct ethhdr *mzr_parse_eth(struct mzr_cursor *c)
{
	return mzr_take(c, sizeof(struct ethhdr));
}

static __always_inline struct iphdr *mzr_parse_ipv4(struct mzr_cursor *c)
{
	return mzr_take(c, sizeof(struct iphdr));
}

static __always_inline struct udphdr *mzr_parse_udp(struct mzr_cursor *c)
{
	return mzr_take(c, sizeof(struct udphdr));
}

static __always_inline struct mzr_arp *mzr_parse_arp(struct mzr_cursor *c)
{
	return mzr_take(c, sizeof(struct mzr_arp));
}

static __always_inline __u32 mzr_geneve_vni(const struct mzr_geneve *g)
{
	return ((__u32)g->vni[0] << 16) | ((__u32)g->vni[1] << 8) | g->vni[2];
}

/* The Geneve header's VNI set to vni (a packet crossing a VPC peering). */
static __always_inline void mzr_geneve_set_vni(struct mzr_geneve *g, __u32 vni)
{
	g->vni[0] = vni >> 16;
	g->vni[1] = vni >> 8;
	g->vni[2] = vni;
}

#define MZR_GENEVE_F_OAM 0x80      /* O: a control packet */
#define MZR_GENEVE_F_CRITICAL 0x40 /* C: critical options present */
#define MZR_GENEVE_OPT_CRITICAL 0x80 /* high bit of an option's type */

#define MZR_OPTS_BAD -1      /* options malformed or past the packet */
#define MZR_OPTS_CRITICAL -2 /* a critical option: none is known here */

/*
 * Walk the option TLVs that follow a Geneve header: each is class:16,
 * type:8, reserved:3, length:5 (in 4-byte words, header excluded). The
 * options must exactly fill the advertised length and lie in the packet.
 * This host knows no option, so a critical one (RFC 8926 section 3.5)
 * ends the walk. Returns 0 and leaves the cursor on the inner frame, or
 * MZR_OPTS_BAD or MZR_OPTS_CRITICAL.
 */
static __always_inline int mzr_skip_geneve_opts(struct mzr_cursor *c, __u32 optlen)
{
	__u8 *opts = c->pos;
	__u32 off = 0;
	int i;

	if ((void *)opts + optlen > c->end)
		return MZR_OPTS_BAD;
	for (i = 0; i < 64; i++) {
		__u8 *opt;

		if (off >= optlen)
			break;
		if (off > 248) /* optlen is at most 252: keeps the verifier's range tight */
			return MZR_OPTS_BAD;
		opt = opts + off;
		if ((void *)(opt + 4) > c->end)
			return MZR_OPTS_BAD;
		if (opt[2] & MZR_GENEVE_OPT_CRITICAL)
			return MZR_OPTS_CRITICAL;
		off += 4 + ((__u32)(opt[3] & 0x1f) << 2);
	}
	if (off != optlen)
		return MZR_OPTS_BAD;
	c->pos = opts + optlen;
	return 0;
}

/*
 * An IPv4 header the overlay refuses: not version 4, shorter than 20
 * bytes, or a total length shorter than its header or past end. The
 * transit program and the agent judge a packet alike with it.
 */
static __always_inline int mzr_ipv4_malformed(const struct iphdr *ip, void *end)
{
	__u32 tot_len = mzr_clamp((__u32)bpf_ntohs(ip->tot_len), 0xffff);

	return ip->version != 4 || ip->ihl < 5 || tot_len < ((__u32)ip->ihl << 2) ||
	       (void *)ip + tot_len > end;
}

/* IPv4 multicast (224.0.0.0/4) or the limited broadcast address. */
static __always_inline int mzr_ipv4_group(__be32 ip)
{
	return (bpf_ntohl(ip) & 0xf0000000U) == 0xe0000000U || ip == 0xffffffffU;
}

/* A MAC no host sends from: multicast or broadcast (group bit), or zero. */
static __always_inline int mzr_mac_bad_sender(const __u8 *mac)
{
	return (mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

#endif /* MZR_PARSE_H */
