/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lookups in the flat tables of mzr_abi.h: hash to a home slot, probe at
 * most MZR_PROBES slots on, stop at an empty one. Every step is an ARRAY
 * lookup, which the verifier inlines into a bounds check and an add.
 */
#ifndef MZR_TABLES_H
#define MZR_TABLES_H

#include "mzr_maps.h"
#include "mzr_hash.h"
#include <bpf/bpf_endian.h>

/* Home slot of the key (a, b); tables.py computes the same. */
static __always_inline __u32 mzr_slot_hash(__u32 a, __u32 b)
{
	return mzr_mix32(a * 0x9e3779b1U + b);
}

/*
 * Probe map (of slots entries) from the home slot of (ha, hb) for the first
 * live entry e that satisfies match; evaluates to it or NULL. tag names the
 * entry's tag field.
 */
#define MZR_PROBE(map, slots, type, tag, ha, hb, match)                         \
	({                                                                     \
		__u32 __slot = mzr_slot_hash((ha), (hb));                        \
		type *__found = NULL;                                            \
		for (int __i = 0; __i < MZR_PROBES; __i++) {                     \
			__u32 __k = (__slot + __i) & ((slots) - 1);              \
			type *e = bpf_map_lookup_elem(&(map), &__k);             \
			if (!e || e->tag == MZR_TAG_EMPTY)                       \
				break;                                           \
			if (match) {                                             \
				__found = e;                                     \
				break;                                           \
			}                                                        \
		}                                                                \
		__found;                                                         \
	})

static __always_inline struct mzr_endpoint *mzr_ep_find(__u32 vni, __be32 ip)
{
	return MZR_PROBE(mzr_endpoints, MZR_EP_SLOTS, struct mzr_endpoint, vni, vni, ip,
			 e->vni == vni && e->ip == ip);
}

static __always_inline struct mzr_vpc *mzr_vpc_find(__u32 vni)
{
	return MZR_PROBE(mzr_vpcs, MZR_VPC_SLOTS, struct mzr_vpc, vni, vni, 0, e->vni == vni);
}

static __always_inline struct mzr_network *mzr_net_find(__u32 vni, __u8 plen, __be32 net)
{
	return MZR_PROBE(mzr_networks, MZR_NET_SLOTS, struct mzr_network, vni, vni | ((__u32)plen << 24),
			 net, e->vni == vni && e->ip == net && e->plen == plen);
}

static __always_inline struct mzr_peer *mzr_peer_find(__u32 vni, __u8 plen, __be32 net)
{
	return MZR_PROBE(mzr_peers, MZR_PEER_SLOTS, struct mzr_peer, vni, vni | ((__u32)plen << 24),
			 net, e->vni == vni && e->ip == net && e->plen == plen);
}

/* Home of a membership: the VIP mixed into the VNI, the backend as the
 * second word (tables.py MemberCodec computes the same). */
static __always_inline struct mzr_member *mzr_member_find(__u32 vni, __be32 vip, __be32 ip)
{
	return MZR_PROBE(mzr_members, MZR_MEMBER_SLOTS, struct mzr_member, vni, vni ^ mzr_mix32(vip), ip,
			 e->vni == vni && e->vip == vip && e->ip == ip);
}

static __always_inline struct mzr_agent *mzr_agent_find(__u32 ifindex)
{
	return MZR_PROBE(mzr_agents, MZR_AGENT_SLOTS, struct mzr_agent, ifindex, ifindex, 0,
			 e->ifindex == ifindex);
}

/*
 * The trusted source entry a Geneve packet of vni from outer source ip
 * matches, or NULL: vni 0 (a transit host, any VNI) or vni itself (a
 * tunnel peer, for its VPC only).
 */
static __always_inline struct mzr_source *mzr_source_find(__be32 ip, __u32 vni)
{
	/* The address is the table's tag: the two tag values are no source
	 * (an attacker's 255.255.255.255 would match a tombstone). */
	if (ip == MZR_TAG_DEAD || ip == MZR_TAG_EMPTY)
		return NULL;
	return MZR_PROBE(mzr_sources, MZR_SRC_SLOTS, struct mzr_source, ip, ip, 0,
			 e->ip == ip && (e->vni == 0 || e->vni == vni));
}

static __always_inline struct mzr_host *mzr_host_get(__u32 slot)
{
	struct mzr_host *h = bpf_map_lookup_elem(&mzr_substrate, &slot);

	return h && h->ip ? h : NULL;
}

/* Network-order mask of a prefix length (1..32). */
static __always_inline __be32 mzr_prefix_mask(__u8 plen)
{
	return bpf_htonl(plen >= 32 ? 0xffffffffU : ~(0xffffffffU >> plen));
}

#endif /* MZR_TABLES_H */
