/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a tunnel packet goes next when its destination is not hosted here:
 * the Bouncer, Divider and VPC-fallback steps of the Mizar pipeline, shared
 * by the transit program and by the agent when this host is the bouncer.
 */
#ifndef MZR_ROUTE_H
#define MZR_ROUTE_H

#include "mzr_bounds.h"
#include "mzr_tables.h"

struct mzr_hop {
	struct mzr_host *host; /* the next substrate host */
	__u32 path;            /* MZR_C_BOUNCE, MZR_C_DIVIDE or MZR_C_TO_DIVIDER */
};

static __always_inline __u32 mzr_hop_slot(const __u16 *slots, __u32 n, __be32 src, __be32 dst)
{
	return slots[mzr_clamp(mzr_pick(mzr_flow_hash(src, dst), n), MZR_MAX_HOPS - 1)];
}

/*
 * Next hop for (vni, dst) given its endpoint entry (or NULL). Returns 0 and
 * fills hop, or a drop reason.
 */
static __always_inline int mzr_next_hop(__u32 vni, __be32 src, __be32 dst,
					const struct mzr_endpoint *ep, struct mzr_hop *hop)
{
	struct mzr_network *net = NULL;
	struct mzr_vpc *vpc;
	__u32 slot, n;
	int i;

	if (ep) { /* Bouncer: the endpoint's own host */
		slot = ep->host;
		hop->path = MZR_C_BOUNCE;
		goto found;
	}
	vpc = mzr_vpc_find(vni);
	if (!vpc)
		return MZR_D_UNKNOWN_VNI;
	for (i = 0; i < MZR_MAX_PLENS; i++) {
		__u8 plen;

		if (i >= vpc->nplens)
			break;
		plen = vpc->plens[i];
		net = mzr_net_find(vni, plen, dst & mzr_prefix_mask(plen));
		if (net)
			break;
	}
	if (net) { /* Divider: a bouncer of the destination network */
		/* A bouncer of that network knows all its endpoints: it was not
		 * found, it does not exist. (Sending it on would ping-pong it
		 * between bouncer and divider until the TTL ran out.) */
		if (net->flags & MZR_NET_F_LOCAL_BOUNCER)
			return MZR_D_NO_ENDPOINT;
		n = net->nbouncers;
		if (n == 0 || n > MZR_MAX_HOPS)
			return MZR_D_NO_HOPS;
		slot = mzr_hop_slot(net->bouncer, n, src, dst);
		hop->path = MZR_C_DIVIDE;
		goto found;
	}
	if (vpc->flags & MZR_VPC_F_LOCAL_DIVIDER)
		return MZR_D_NO_NETWORK;
	n = vpc->ndividers;
	if (n == 0 || n > MZR_MAX_HOPS)
		return MZR_D_NO_HOPS;
	slot = mzr_hop_slot(vpc->divider, n, src, dst);
	hop->path = MZR_C_TO_DIVIDER;
found:
	hop->host = mzr_host_get(slot);
	return hop->host ? 0 : MZR_D_NO_SUBSTRATE;
}

#endif /* MZR_ROUTE_H */
