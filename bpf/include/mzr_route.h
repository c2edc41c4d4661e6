/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a tunnel packet goes next when its destination is not hosted here:
 * the Bouncer, Divider, Peer and VPC-fallback steps of the Mizar pipeline,
 * shared by the transit program and by the agent when this host is the
 * bouncer.
 */
#ifndef MZR_ROUTE_H
#define MZR_ROUTE_H

#include "mzr_bounds.h"
#include "mzr_tables.h"

struct mzr_hop {
	struct mzr_host *host; /* the next substrate host */
	__u32 path;            /* MZR_C_BOUNCE, MZR_C_DIVIDE, MZR_C_TO_PEER or MZR_C_TO_DIVIDER */
	__u32 vni;             /* the VNI the packet leaves with: its own, or a peer VPC's */
};

/*
 * Longest prefix first: the entry find(vni, plen, dst's prefix) gives for
 * the first of the n prefix lengths plens[] (at most MZR_MAX_PLENS) that
 * has one, or NULL. type: the entry's.
 */
#define MZR_LPM(find, type, vni, plens, n, dst)                                    \
	({                                                                         \
		type *__e = NULL;                                                  \
		for (int __i = 0; __i < MZR_MAX_PLENS; __i++) {                    \
			__u8 __plen;                                               \
			if (__i >= (n))                                            \
				break;                                             \
			__plen = (plens)[__i];                                     \
			__e = find((vni), __plen, (dst) & mzr_prefix_mask(__plen)); \
			if (__e)                                                   \
				break;                                             \
		}                                                                  \
		__e;                                                               \
	})

static __always_inline __u32 mzr_hop_slot(const __u16 *slots, __u32 n, __be32 src, __be32 dst)
{
	return slots[mzr_clamp(mzr_pick(mzr_flow_hash(src, dst), n), MZR_MAX_HOPS - 1)];
}

/*
 * Peer step, on a divider of the VPC for a destination in none of its
 * networks: the peer route (mzr_peers) whose CIDR, a peered VPC's, holds
 * it. The packet leaves with the peer's VNI for one of the peer's dividers,
 * chosen by the flow hash, which handle it as their own. Only the VPC's own
 * addresses cross (an endpoint behind a tunnel peer could otherwise speak
 * for one of the peer VPC's addresses), and ARP never does. Without peer
 * routes for the VNI this is one comparison. Returns 0 and fills *slot and
 * hop, or a drop reason.
 */
static __always_inline int mzr_peer_hop(const struct mzr_vpc *vpc, __u32 vni, __be32 src, __be32 dst,
					int arp, struct mzr_hop *hop, __u32 *slot)
{
	struct mzr_peer *peer;
	__u32 n;

	peer = MZR_LPM(mzr_peer_find, struct mzr_peer, vni, vpc->peer_plens, vpc->npeer_plens, dst);
	if (!peer)
		return MZR_D_NO_NETWORK;
	if (arp)
		return MZR_D_PEER_ARP;
	if ((src & mzr_prefix_mask(peer->src_plen)) != peer->src_ip)
		return MZR_D_PEER_SRC;
	n = peer->ndividers;
	if (n == 0 || n > MZR_MAX_HOPS)
		return MZR_D_NO_HOPS;
	*slot = mzr_hop_slot(peer->divider, n, src, dst);
	hop->vni = peer->peer_vni;
	hop->path = MZR_C_TO_PEER;
	return 0;
}

/*
 * Next hop for (vni, dst) given its endpoint entry (or NULL); arp: the
 * packet is ARP. Returns 0 and fills hop, or a drop reason.
 */
static __always_inline int mzr_next_hop(__u32 vni, __be32 src, __be32 dst,
					const struct mzr_endpoint *ep, int arp, struct mzr_hop *hop)
{
	struct mzr_network *net;
	struct mzr_vpc *vpc;
	__u32 slot, n;
	int err;

	hop->vni = vni;
	if (ep) { /* Bouncer: the endpoint's own host */
		slot = ep->host;
		hop->path = MZR_C_BOUNCE;
		goto found;
	}
	vpc = mzr_vpc_find(vni);
	if (!vpc)
		return MZR_D_UNKNOWN_VNI;
	net = MZR_LPM(mzr_net_find, struct mzr_network, vni, vpc->plens, vpc->nplens, dst);
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
	if (vpc->flags & MZR_VPC_F_LOCAL_DIVIDER) { /* Peer, or no such network */
		err = mzr_peer_hop(vpc, vni, src, dst, arp, hop, &slot);
		if (err)
			return err;
		goto found;
	}
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
