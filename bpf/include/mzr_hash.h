/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow hashing: pick one of n bouncers or dividers for a flow. The hash is
 * symmetric in source and destination, so both directions of a flow within a
 * network meet the same bouncer (useful to stateful functions), and stable:
 * the same pair always gets the same choice while the list is unchanged.
 */
#ifndef MZR_HASH_H
#define MZR_HASH_H

#include <linux/types.h>

static __always_inline __u32 mzr_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x7feb352dU;
	h ^= h >> 15;
	h *= 0x846ca68bU;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 mzr_flow_hash(__be32 a, __be32 b)
{
	return mzr_mix32((a ^ b) + 0x9e3779b9U * (a & b));
}

/*
 * The outer UDP source port's hash (RFC 8926 section 3.3: entropy for ECMP
 * and RSS on the substrate): the inner addresses, protocol and ports (0
 * for fragments and protocols without ports, so that every fragment of a
 * datagram gets the same one). Unlike mzr_flow_hash it is not symmetric:
 * both directions of a flow need not share an outer port.
 */
static __always_inline __u32 mzr_tuple_hash(__be32 src, __be32 dst, __u32 proto, __u32 ports)
{
	/* One finalizer round: for a given pair of endpoints and protocol, the
	 * input is a bijection of the ports, so distinct port pairs never
	 * collide before the final shift. */
	return mzr_mix32((src ^ ports) + 0x9e3779b9U * (dst ^ proto));
}

/* An outer UDP source port of a tuple hash, in the ephemeral range (RFC 8926 section 3.3). */
static __always_inline __u16 mzr_sport(__u32 h)
{
	return 0xc000 | (h >> 18);
}

/* Index in [0, n) with no division: the high half of h * n. */
static __always_inline __u32 mzr_pick(__u32 h, __u32 n)
{
	return (__u32)(((__u64)h * n) >> 32);
}

#endif /* MZR_HASH_H */
