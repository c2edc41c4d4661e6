/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where a tunnel packet goes next when its destination is not hosted here:
 * the Bouncer, Divider and VPC-fallback steps of the Mizar pipeline, shared
 * by the transit program and by the agent when this host is the bouncer.
 */
#ifndef MZR_ROUTE_H
#define MZR_ROUTE_H

#include "mzr_maps.h"
#include "mzr_hash.h"

struct mzr_hop {
	__be32 ip;  /* substrate IP of the next host */
	__u32 path; /* MZR_C_BOUNCE, MZR_C_DIVIDE or MZR_C_TO_DIVIDER */
};

static __always_inline __be32 mzr_hop_pick(const __be32 *ips, __u32 n, __u32 hash)
{
	return ips[mzr_pick(hash, n) & (MZR_MAX_HOPS - 1)];
}

/*
 * Next hop for (vni, dst) given the endpoint entry (or NULL). Returns 0 and
 * fills hop, or a drop reason.
 */
static __always_inline int mzr_next_hop(__u32 vni, __be32 src, __be32 dst,
					const struct mzr_ep_val *ep, struct mzr_hop *hop)
{
	struct mzr_net_key nk = { .prefixlen = 64, .vni = vni, .ip = dst };
	struct mzr_vpc_key vk = { .vni = vni };
	struct mzr_net_val *net;
	struct mzr_vpc_val *vpc;
	__u32 n;

	if (ep) { /* Bouncer: the endpoint's own host */
		hop->ip = ep->host_ip;
		hop->path = MZR_C_BOUNCE;
		return 0;
	}
	net = bpf_map_lookup_elem(&mzr_networks, &nk);
	if (net) { /* Divider: a bouncer of the destination network */
		n = net->nbouncers;
		if (n == 0 || n > MZR_MAX_HOPS)
			return MZR_D_NO_HOPS;
		hop->ip = mzr_hop_pick(net->bouncer_ip, n, mzr_flow_hash(src, dst));
		hop->path = MZR_C_DIVIDE;
		return 0;
	}
	vpc = bpf_map_lookup_elem(&mzr_vpcs, &vk);
	if (!vpc)
		return MZR_D_UNKNOWN_VNI;
	if (vpc->flags & MZR_VPC_F_LOCAL_DIVIDER)
		return MZR_D_NO_NETWORK;
	n = vpc->ndividers;
	if (n == 0 || n > MZR_MAX_HOPS)
		return MZR_D_NO_HOPS;
	hop->ip = mzr_hop_pick(vpc->divider_ip, n, mzr_flow_hash(src, dst));
	hop->path = MZR_C_TO_DIVIDER;
	return 0;
}

#endif /* MZR_ROUTE_H */
