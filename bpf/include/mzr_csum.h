/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MZR_CSUM_H
#define MZR_CSUM_H

#include <linux/ip.h>

static __always_inline __u16 mzr_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Header checksum of an option-less IPv4 header, written in place. */
static __always_inline void mzr_ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
	int i;

	ip->check = 0;
#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	ip->check = mzr_csum_fold(sum);
}

/*
 * Fix a header checksum after one of the 16-bit words it covers changed
 * from old to new (RFC 1624: HC' = ~(~HC + ~m + m')). Words in network
 * order, as they sit in the packet.
 */
static __always_inline __u16 mzr_csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u32)(__u16)~old + new;

	return mzr_csum_fold(sum);
}

#endif /* MZR_CSUM_H */
