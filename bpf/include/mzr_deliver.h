/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Decapsulating a tunnel packet for an endpoint hosted here: shared by the
 * transit program's delivery and by stage functions that deliver
 * themselves (the scaled function, at a backend's host).
 */
#ifndef MZR_DELIVER_H
#define MZR_DELIVER_H

#include <linux/bpf.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_csum.h"
#include "mzr_encap.h"
#include "mzr_parse.h"

/*
 * The inner ECN field after decapsulation (RFC 6040, section 4.2), from
 * the outer and inner ones; MZR_ECN_DROP: congestion marked on a packet
 * whose sender cannot be told.
 */
#define MZR_ECN_DROP 0xff

static __always_inline __u8 mzr_ecn_decap(__u8 outer, __u8 inner)
{
	if (outer == MZR_ECN_CE)
		return inner == MZR_ECN_NOT_ECT ? MZR_ECN_DROP : MZR_ECN_CE;
	if (outer == MZR_ECN_ECT1 && inner == MZR_ECN_ECT0)
		return MZR_ECN_ECT1;
	return inner;
}

/*
 * Strip the outer_len bytes of outer headers, address the inner frame to
 * mac, and carry congestion marks of the outer header into an inner IPv4
 * header (outer_ecn and inner_ecn: the ECN fields; 0 for ARP). Returns 0,
 * or the drop reason.
 */
static __always_inline __u32 mzr_decap(struct xdp_md *ctx, __u32 outer_len, __u8 outer_ecn, __u8 inner_ecn,
				       const __u8 *mac)
{
	__u8 ecn = mzr_ecn_decap(outer_ecn, inner_ecn);
	struct ethhdr *eth;
	void *end;

	if (ecn == MZR_ECN_DROP)
		return MZR_D_INNER_ECN;
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		return MZR_D_ADJUST;
	eth = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (mzr_no_room(eth, end))
		return MZR_D_ADJUST;
	mzr_mac_copy(eth->h_dest, mac);
	if (ecn != inner_ecn) { /* only an IPv4 packet has a non-zero ECN */
		struct iphdr *ip = (void *)(eth + 1);
		__u16 old;

		if (mzr_no_room(ip, end))
			return MZR_D_ADJUST;
		old = *(__u16 *)ip;
		ip->tos = (ip->tos & ~MZR_ECN_MASK) | ecn;
		ip->check = mzr_csum_replace16(ip->check, old, *(__u16 *)ip);
	}
	return 0;
}

/*
 * A bypass_decap endpoint gets the whole tunnel packet, its inner frame
 * addressed as decapsulation would have: to the endpoint's MAC. A routed
 * frame still carries its gateway's MAC when the host it was sent to
 * hosts the endpoint (no bouncer rewrote it), and the endpoint's own stack
 * would drop it. The outer UDP checksum, when the sender set one, covers
 * the inner frame: it is updated word by word (RFC 1624), and a result of
 * zero goes out as 0xffff (RFC 768).
 */
static __always_inline void mzr_bypass_address(struct udphdr *udp, struct ethhdr *ieth, const __u8 *mac)
{
	__u16 *w = (__u16 *)ieth->h_dest;
	const __u16 *m = (const __u16 *)mac;
	__u16 check = udp->check;

	if (!check) { /* no checksum: nothing covers the frame */
		mzr_mac_copy(ieth->h_dest, mac);
		return;
	}
	/* Every word updates the running checksum, whatever it reads on the
	 * way: 0x0000 is a valid intermediate value (the same as 0xffff). */
#pragma unroll
	for (int i = 0; i < 3; i++) {
		check = mzr_csum_replace16(check, w[i], m[i]);
		w[i] = m[i];
	}
	udp->check = check ? check : 0xffff;
}

#endif /* MZR_DELIVER_H */
