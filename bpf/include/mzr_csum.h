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

#endif /* MZR_CSUM_H */
