// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * scaled: the L4 load balancer of scaled endpoints.
 *
 *   scaled_on_xdp_scaled_ep ... at ON_XDP_SCALED_EP, where the transit
 *                               program (a tunnel packet, MZR_SC_F_TUNNEL)
 *                               or the agent of a client on a bouncer (the
 *                               client's bare frame) meets a packet to a
 *                               scaled endpoint (a VIP)
 *
 * A packet to a VIP, without our option:
 *   1. its flow (VNI, source, VIP, ports, protocol) in the connection
 *      table, naming a backend still in the VIP's set ... that backend, and
 *      no map is written (an established flow); still in the set: the
 *      flow's slot in the VIP's ring names it, or else mzr_lb_members does;
 *   2. otherwise the VIP's Maglev ring: the flow's hash picks a slot, the
 *      slot names the backend, and the flow is written to the connection
 *      table (a new flow, or one whose backend left the set);
 *   3. the backend hosted here ..... delivered: decapsulated (tunnel) or
 *                                    straight (agent), to its interface,
 *                                    addressed to its MAC;
 *      hosted elsewhere ............ sent to its host (XDP_TX, or out of the
 *                                    NIC from the agent) with the inner
 *                                    destination still the VIP, the inner
 *                                    destination MAC the backend's, and the
 *                                    backend's address in a non-critical
 *                                    Geneve option of class MZR_GENEVE_CLASS.
 * A packet with the option (at the backend's host, whose transit program
 * found the VIP and entered the stage again): the option's backend must be
 * in the VIP's set (the flow's slot in this host's ring names it, or else
 * mzr_lb_members does) and hosted here, and the packet is delivered to it, never
 * balanced or sent on a second time. A forged option can therefore only
 * pick one of the VIP's own backends on the host it was sent to.
 *
 * The backend replies from the VIP itself (direct server return: the VIP
 * is on its loopback), so replies never come back through this function.
 *
 * The ring. Each VIP's ring of `size` slots (a prime, model/maglev.py)
 * lies in consecutive chunks of mzr_lb_ring, from chunk `ring` on. The
 * control plane writes a changed ring into free chunks, adds the backends
 * it names to mzr_lb_members, then replaces the VIP's entry in mzr_lb_vips
 * (a hash map: an update swaps the whole element), and only then removes
 * the backends that left and forgets the old chunks. A packet reads the
 * VIP's entry once, so it sees one whole ring, old or new.
 *
 * The connection table is an LRU hash whose LRU lists are per CPU
 * (BPF_F_NO_COMMON_LRU: no lock shared by CPUs when a new flow evicts an
 * old one), while its entries are seen by every CPU: a flow whose packets
 * come in on several CPUs (a veth's sender moving between CPUs, RSS after
 * a queue change) keeps one backend. A backend drained (weight 0) stays in
 * the set: its flows go on, and the ring gives it no new one. A backend
 * removed leaves the set: its flows get a new backend from the ring.
 *
 * Whatever this function decides goes on through mzr_stage_next() with the
 * verdict (XDP_REDIRECT, XDP_TX) set, so a function after it in the chain
 * sees the packet as it leaves. Drops return XDP_DROP and are counted in
 * mzr_lb_counters by reason. Config: bpf/functions/scaled.yml (rendered
 * per host from the scaled endpoints), written by fnconfig.Scaled.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_bounds.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_encap.h"
#include "mzr_deliver.h"
#include "mzr_tables.h"
#include "mzr_function.h"
#include "mzr_stages.h"

#define LB_CHUNK_SLOTS 256	/* ring slots in one chunk */
#define LB_POOL_CHUNKS 16384	/* the rings of a host: 4 Mi slots, 16 MiB */
#define LB_MAX_VIPS 4096	/* scaled endpoints one host holds (MAX_SCALED, model/capacity.py) */
#define LB_MAX_MEMBERS 131072	/* backends of all of them */
#define LB_CONNS 262144		/* flows remembered */
#define LB_OPT_LEN 8		/* our option: 4 bytes of header, the backend's address */
#define LB_OUTER_LEN (MZR_OUTER_LEN + LB_OPT_LEN)
#define LB_MAX_OPTS 8		/* options looked at for ours */

struct mzr_lb_vip_key {
	__u32 vni;
	__be32 ip;
};

struct mzr_lb_vip {
	__u32 ring;	 /* its first chunk in mzr_lb_ring */
	__u32 size;	 /* ring slots; 0: every backend drained, no new flow */
	__u32 nbackends; /* backends in mzr_lb_members (drained ones included) */
	__u32 _pad;
};

struct mzr_lb_member_key {
	__u32 vni;
	__be32 vip;
	__be32 ip; /* the backend */
};

struct mzr_lb_member {
	__u32 weight; /* 0: drained (read back by the control plane) */
};

struct mzr_lb_chunk {
	__be32 ip[LB_CHUNK_SLOTS]; /* each slot's backend */
};

struct mzr_lb_flow {
	__u32 vni;
	__be32 src;
	__be32 dst; /* the VIP */
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 _pad[3];
};

struct mzr_lb_conn {
	__be32 backend;
};

enum mzr_lb_counter {
	LB_C_NEW = 0,	      /* a new flow: a backend from the ring, remembered */
	LB_C_ESTABLISHED = 1, /* a remembered flow whose backend is still in the set */
	LB_C_MOVED = 2,	      /* a remembered flow whose backend left the set: a new one */
	LB_C_LOCAL = 3,	      /* balanced to a backend hosted here */
	LB_C_REMOTE = 4,      /* balanced to a backend's host, with the option */
	LB_C_AT_BACKEND = 5,  /* came with the option, delivered to its backend here */
	LB_D_NO_VIP = 8,      /* a scaled endpoint this host's config does not hold */
	LB_D_NO_BACKEND = 9,  /* no backend takes new flows (all drained) */
	LB_D_FORGED = 10,     /* the option names no backend of the VIP */
	LB_D_NOT_HERE = 11,   /* the option names a backend that is not hosted here */
	LB_D_MALFORMED = 12,  /* not IPv4, or cut short */
	LB_D_TOO_BIG = 13,    /* with the option, longer than the substrate MTU */
	LB_D_ADJUST = 14,     /* head adjustment failed, or ECN refused decapsulation */
	LB_D_NO_ROUTE = 15,   /* the backend's host is unknown here, or is this host */
	LB_C_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_VIPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mzr_lb_vip_key);
	__type(value, struct mzr_lb_vip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_lb_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_MEMBERS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mzr_lb_member_key);
	__type(value, struct mzr_lb_member);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_lb_members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_POOL_CHUNKS);
	__type(key, __u32);
	__type(value, struct mzr_lb_chunk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_lb_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_CONNS);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct mzr_lb_flow);
	__type(value, struct mzr_lb_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_lb_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LB_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_lb_counters SEC(".maps");

/* What the function reads of a packet. */
struct lb_pkt {
	struct ethhdr *ieth;
	struct iphdr *iip;
	__u32 outer_len;    /* tunnel: the bytes before the inner frame */
	__be32 opt_backend; /* tunnel: the backend our option names; 0: no option */
	__be16 outer_sport;
	__u8 outer_tos;
};

static __always_inline void lb_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&mzr_lb_counters, &idx);

	if (c)
		*c += 1;
}

static __always_inline int lb_drop(__u32 reason)
{
	lb_count(reason);
	return XDP_DROP;
}

/* Let the packet go on with the verdict this function decided. */
static __always_inline int lb_go(struct xdp_md *ctx, struct mzr_stage_ctx *sc, int verdict, __u32 ifindex,
				 __u32 flags)
{
	mzr_count(verdict);
	sc->verdict = verdict;
	sc->ifindex = ifindex;
	sc->flags = flags;
	return mzr_stage_next(ctx);
}

/* The outer headers of a tunnel packet the transit program accepted, and
 * our option among its first LB_MAX_OPTS. Returns 0, or -1 when cut short.
 * The outer length is taken from the parsed Ethernet header, not from a
 * second load of ctx->data, which the compiler may keep as a 32-bit value and
 * spill with a 4-byte store the verifier refuses. */
static __always_inline int lb_outer(struct mzr_cursor *c, struct lb_pkt *p)
{
	struct ethhdr *eth = mzr_parse_eth(c);
	struct iphdr *ip;
	struct udphdr *udp;
	struct mzr_geneve *g;
	__u32 optlen, off = 0;
	__u8 *opts;

	if (!eth)
		return -1;
	ip = mzr_parse_ipv4(c);
	if (!ip || ip->ihl != 5)
		return -1;
	udp = mzr_parse_udp(c);
	if (!udp)
		return -1;
	g = mzr_take(c, sizeof(*g));
	if (!g)
		return -1;
	p->outer_tos = ip->tos;
	p->outer_sport = udp->source;
	optlen = (__u32)(g->ver_optlen & 0x3f) << 2;
	opts = c->pos;
	if ((void *)opts + optlen > c->end)
		return -1;
	for (int i = 0; i < LB_MAX_OPTS; i++) {
		__u8 *o;

		if (off + 4 > optlen || off > 248)
			break;
		o = opts + off;
		if ((void *)(o + 8) > c->end)
			break;
		if (o[0] == (MZR_GENEVE_CLASS >> 8) && o[1] == (MZR_GENEVE_CLASS & 0xff) &&
		    o[2] == MZR_OPT_LB_BACKEND && (o[3] & 0x1f) == 1 && off + 8 <= optlen) {
			__builtin_memcpy(&p->opt_backend, o + 4, 4);
			break;
		}
		off += 4 + ((__u32)(o[3] & 0x1f) << 2);
	}
	c->pos = opts + optlen;
	p->outer_len = c->pos - (void *)eth;
	return 0;
}

/* The flow of an inner IPv4 packet; fragments and protocols without ports
 * have ports 0, so every fragment of a datagram is one flow. */
static __always_inline void lb_flow(struct mzr_lb_flow *fl, __u32 vni, const struct iphdr *ip, void *end)
{
	__u8 proto = ip->protocol;

	fl->vni = vni;
	fl->src = ip->saddr;
	fl->dst = ip->daddr;
	fl->proto = proto;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) &&
	    !(ip->frag_off & bpf_htons(MZR_IP_FRAG_MASK))) {
		__be16 *l4 = (void *)ip + ((__u32)ip->ihl << 2);

		if ((void *)(l4 + 2) <= end) {
			fl->sport = l4[0];
			fl->dport = l4[1];
		}
	}
}

/* The hash of a flow that picks its ring slot and its outer source port
 * (mzr_agent_flow_of's, so the agent and this function agree). */
static __always_inline __u32 lb_hash(const struct mzr_lb_flow *fl)
{
	return mzr_tuple_hash(fl->src, fl->dst, fl->proto, fl->sport | ((__u32)fl->dport << 16));
}

static __always_inline int lb_member(__u32 vni, __be32 vip, __be32 ip)
{
	struct mzr_lb_member_key k = {.vni = vni, .vip = vip, .ip = ip};

	return bpf_map_lookup_elem(&mzr_lb_members, &k) != NULL;
}

/* The backend the VIP's ring gives the flow; 0: none (every backend drained). */
static __always_inline __be32 lb_ring_pick(const struct mzr_lb_vip *vip, const struct mzr_lb_flow *fl)
{
	__u32 size = vip->size, slot, idx;
	struct mzr_lb_chunk *chunk;

	if (!size)
		return 0;
	slot = (mzr_mix32(lb_hash(fl) ^ fl->vni)) % size;
	idx = vip->ring + slot / LB_CHUNK_SLOTS;
	chunk = bpf_map_lookup_elem(&mzr_lb_ring, &idx);
	if (!chunk)
		return 0;
	return chunk->ip[slot & (LB_CHUNK_SLOTS - 1)];
}

/*
 * The flow's backend: remembered, or from the ring (and remembered); 0: none.
 * A remembered backend is still in the set when the ring gives the flow that
 * same backend (the ring the VIP's entry names holds members only: the
 * control plane adds a ring's backends before it points the VIP at it and
 * removes the ones that left after), which is so for all but the flows a
 * change moved: only those pay the lookup in mzr_lb_members.
 */
static __always_inline __be32 lb_backend(const struct mzr_lb_vip *vip, struct mzr_lb_flow *fl)
{
	struct mzr_lb_conn *conn = bpf_map_lookup_elem(&mzr_lb_conns, fl);
	struct mzr_lb_conn fresh = {.backend = lb_ring_pick(vip, fl)};
	__u32 moved = 0;

	if (conn) {
		__be32 backend = conn->backend;

		if ((fresh.backend && backend == fresh.backend) || lb_member(fl->vni, fl->dst, backend)) {
			lb_count(LB_C_ESTABLISHED);
			return backend;
		}
		moved = 1;
	}
	if (!fresh.backend)
		return 0;
	bpf_map_update_elem(&mzr_lb_conns, fl, &fresh, BPF_ANY);
	lb_count(moved ? LB_C_MOVED : LB_C_NEW);
	return fresh.backend;
}

/* Deliver to a backend hosted here. */
static __always_inline int lb_local(struct xdp_md *ctx, struct mzr_stage_ctx *sc, struct lb_pkt *p,
				    const struct mzr_endpoint *ep, int tunnel)
{
	__u32 ifindex = ep->ifindex;

	if (tunnel) {
		__u32 why = mzr_decap(ctx, p->outer_len, p->outer_tos & MZR_ECN_MASK, p->iip->tos & MZR_ECN_MASK,
				      ep->mac);

		if (why)
			return lb_drop(LB_D_ADJUST);
		mzr_count(MZR_C_DECAP);
	} else {
		mzr_mac_copy(p->ieth->h_dest, ep->mac);
		mzr_count(MZR_C_AGENT_LOCAL);
	}
	return lb_go(ctx, sc, bpf_redirect(ifindex, 0), ifindex, 0);
}

/* Send to the backend's host, the backend named in our option. */
static __always_inline int lb_remote(struct xdp_md *ctx, struct mzr_stage_ctx *sc, struct lb_pkt *p,
				     const struct mzr_endpoint *ep, __be32 backend, const struct mzr_lb_flow *fl,
				     int tunnel)
{
	struct mzr_if_cfg *cfg = mzr_if_cfg_get();
	struct mzr_host *host = mzr_host_get(ep->host);
	__u32 inner_len, mtu;
	struct ethhdr *eth;
	__u16 sport;
	__u8 tos, *opt;
	int delta;

	if (!cfg || !host || !host->ip || host->ip == cfg->ip)
		return lb_drop(LB_D_NO_ROUTE);
	mzr_mac_copy(p->ieth->h_dest, ep->mac);
	inner_len = ctx->data_end - ctx->data;
	if (tunnel) {
		inner_len -= p->outer_len;
		sport = bpf_ntohs(p->outer_sport);
		tos = p->outer_tos;
		delta = (int)p->outer_len - (int)LB_OUTER_LEN;
	} else {
		sport = mzr_sport(lb_hash(fl));
		tos = p->iip->tos;
		delta = -(int)LB_OUTER_LEN;
	}
	asm volatile("" : "+r"(inner_len)); /* a scalar, as in mzr_agent_encap */
	mtu = cfg->mtu ? cfg->mtu : 1500;
	if (inner_len + LB_OUTER_LEN - sizeof(struct ethhdr) > mtu)
		return lb_drop(LB_D_TOO_BIG);
	if (bpf_xdp_adjust_head(ctx, delta))
		return lb_drop(LB_D_ADJUST);
	eth = (void *)(long)ctx->data;
	if ((void *)eth + LB_OUTER_LEN > (void *)(long)ctx->data_end)
		return lb_drop(LB_D_ADJUST);
	mzr_outer_write(eth, cfg->mac, host->mac, cfg->ip, host->ip, fl->vni, sport, tos, inner_len + LB_OPT_LEN);
	opt = (__u8 *)eth + MZR_OUTER_LEN;
	((struct mzr_geneve *)opt - 1)->ver_optlen = LB_OPT_LEN / 4;
	opt[0] = MZR_GENEVE_CLASS >> 8;
	opt[1] = MZR_GENEVE_CLASS & 0xff;
	opt[2] = MZR_OPT_LB_BACKEND;
	opt[3] = 1; /* one 4-byte word of data */
	__builtin_memcpy(opt + 4, &backend, 4);
	lb_count(LB_C_REMOTE);
	if (tunnel)
		return lb_go(ctx, sc, XDP_TX, 0, MZR_SC_F_TUNNEL);
	return lb_go(ctx, sc, bpf_redirect(cfg->ifindex, 0), cfg->ifindex, MZR_SC_F_TUNNEL);
}

SEC("xdp")
int scaled_on_xdp_scaled_ep(struct xdp_md *ctx)
{
	struct mzr_cursor c = mzr_fn_cursor(ctx);
	struct mzr_stage_ctx *sc = mzr_fn_stage_ctx();
	struct lb_pkt p = {};
	struct mzr_lb_flow fl = {};
	struct mzr_lb_vip_key vk = {};
	struct mzr_lb_vip *vip;
	struct mzr_endpoint *ep;
	__be32 backend;
	int tunnel;

	if (!sc)
		return XDP_ABORTED;
	tunnel = sc->flags & MZR_SC_F_TUNNEL;
	if (tunnel && lb_outer(&c, &p))
		return lb_drop(LB_D_MALFORMED);
	p.ieth = mzr_parse_eth(&c);
	if (!p.ieth || p.ieth->h_proto != bpf_htons(ETH_P_IP))
		return lb_drop(LB_D_MALFORMED);
	p.iip = mzr_parse_ipv4(&c);
	if (!p.iip || p.iip->ihl < 5)
		return lb_drop(LB_D_MALFORMED);
	lb_flow(&fl, sc->vni, p.iip, c.end);
	vk.vni = fl.vni;
	vk.ip = fl.dst;
	vip = bpf_map_lookup_elem(&mzr_lb_vips, &vk);
	if (!vip)
		return lb_drop(LB_D_NO_VIP);
	if (p.opt_backend) { /* at the backend's host: deliver, never balance again */
		/* a member: the ring gives the flow that backend here too, or mzr_lb_members has it */
		if (p.opt_backend != lb_ring_pick(vip, &fl) && !lb_member(fl.vni, fl.dst, p.opt_backend))
			return lb_drop(LB_D_FORGED);
		ep = mzr_ep_find(fl.vni, p.opt_backend);
		if (!ep || ep->type != MZR_EP_SIMPLE || !ep->ifindex)
			return lb_drop(LB_D_NOT_HERE);
		lb_count(LB_C_AT_BACKEND);
		return lb_local(ctx, sc, &p, ep, tunnel);
	}
	backend = lb_backend(vip, &fl);
	if (!backend)
		return lb_drop(LB_D_NO_BACKEND);
	ep = mzr_ep_find(fl.vni, backend);
	if (!ep || ep->type != MZR_EP_SIMPLE)
		return lb_drop(LB_D_NO_ROUTE);
	if (ep->ifindex) {
		lb_count(LB_C_LOCAL);
		return lb_local(ctx, sc, &p, ep, tunnel);
	}
	return lb_remote(ctx, sc, &p, ep, backend, &fl, tunnel);
}

char _license[] SEC("license") = "GPL";
