// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ratelimit: ingress rate limits, in packets and/or bits per second, per
 * endpoint (the VNI from mzr_stage_ctx and the inner IPv4 destination) and
 * per VPC (everything of the VNI this host delivers).
 *
 *   ratelimit_on_xdp_redirect ... at ON_XDP_REDIRECT, before delivery to a
 *                                 local endpoint (inner frame, or tunnel
 *                                 packet for a bypass endpoint)
 *
 * A packet within its limits goes on (mzr_stage_next(): to the next function
 * of the chain, or with the verdict so far); one over a limit is dropped and
 * counted on that limit. Both are counted in mzr_rl_stats (passed, dropped),
 * which transit_info reports by name. A packet of an endpoint with a limit
 * in a VPC with a limit must pass both, and takes from both only when it
 * passes both. A VNI without limits costs one probe of the set's table,
 * before the packet is even parsed, and is not counted.
 *
 * The token bucket, across CPUs. Each limit has one shared clock per
 * resource (packets, bytes) in mzr_rl_shared: its theoretical arrival
 * time (GCRA, ITU-T I.371), the time at which everything granted so far
 * has been paid for at the configured rate. A grant of n tokens moves it
 * by n times their cost in ns, and is allowed while the clock is at most
 * `burst` ahead of now: after an idle spell a limit passes `burst` worth
 * of its rate at once, and in the long run exactly its rate. One 64-bit
 * word per resource holds the whole bucket, so a grant is one compare-and-
 * exchange, with no lock and no second word to keep consistent.
 *
 * CPUs do not touch the shared word per packet: each keeps its own budget
 * (mzr_rl_local, per-CPU) and takes a batch of tokens from the shared
 * clock only when the budget cannot pay for the packet at hand. The
 * control plane sizes a batch at burst / (2 * possible CPUs) worth of the
 * rate (at least 1 us of it, and one packet or byte): the tokens all CPUs
 * may hold unspent are then at most half the burst, however traffic moves
 * between CPUs, and tokens are never made anywhere but on the clock. So
 * the total across CPUs stays at the configured rate (plus at most the
 * burst and those held tokens once), with one atomic operation per batch
 * rather than per packet, and no cache line bouncing between CPUs on the
 * per-packet path. (Per-CPU buckets each refilled at rate / ncpus were
 * the alternative: they need no atomics at all, but a single flow, which
 * RSS keeps on one CPU, would get only rate / ncpus.) Each grant is at
 * most RL_CAS_TRIES attempts; a CPU that loses them all to others taking
 * from the same limit at that very moment drops the packet, as the limit
 * is being spent right then.
 *
 * The configuration is double-buffered: the control plane fills the
 * inactive set of mzr_rl_sets (an open-addressing table of the limited
 * keys, and the limits' parameters), then flips mzr_rl_active, so a packet
 * sees one whole set, old or new. A limit keeps its index (its state)
 * while its key stays in the configuration; a new one gets a fresh
 * generation, and each CPU starts its budget and counters afresh when it
 * meets a generation it does not hold. Config: bpf/functions/ratelimit.yml.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_function.h"
#include "mzr_maps.h"
#include "mzr_parse.h"
#include "mzr_stages.h"
#include "mzr_tables.h"

#define RL_MAX_LIMITS 256 /* limits of one configuration (endpoints and VPCs) */
#define RL_IDS 512	   /* indexes: a new configuration's new limits take ones the set in use does not hold */
#define RL_SLOTS 1024	   /* the set's table: limits plus one entry per VPC, at most half full */
#define RL_PROBES 16	   /* an entry sits within this many slots of its home */
#define RL_NO_LIMIT 0xffffffffU
#define RL_F_ENDPOINTS 0x1 /* on a VPC's entry: some endpoint of the VPC has a limit */
#define RL_CAS_TRIES 4

/* One entry of a set's table. */
struct mzr_rl_slot {
	__u32 vni;   /* 0: an empty slot */
	__be32 ip;   /* the endpoint; 0.0.0.0 for the VPC's own entry */
	__u32 id;    /* the limit's index in limit[] and the state maps; RL_NO_LIMIT: none */
	__u32 flags; /* RL_F_* */
};

/* One limit's parameters; a resource with cost 0 is not limited. */
struct mzr_rl_limit {
	__u64 pps;	    /* as configured (read back by the control plane) */
	__u64 bps;
	__u64 burst_ns;	    /* how far ahead of now the shared clock may run */
	__u64 pkt_batch;    /* packets a CPU takes at once */
	__u64 pkt_cost_ns;  /* what a batch of packets costs on the shared clock */
	__u64 byte_batch;   /* bytes a CPU takes at once */
	__u64 byte_cost_ns; /* what a batch of bytes costs on the shared clock */
	__u32 gen;	    /* the generation of the limit's state */
	__u32 _pad;
};

struct mzr_rl_set {
	__u32 nlimits;
	__u32 gen; /* the newest generation given to a limit */
	struct mzr_rl_slot slot[RL_SLOTS];
	struct mzr_rl_limit limit[RL_IDS];
};

/* The shared clocks of one limit, alone in their cache line. */
struct mzr_rl_shared {
	__u64 pkt_tat;
	__u64 byte_tat;
	__u64 _pad[6];
};

/* One CPU's budget and counters for one limit. */
struct mzr_rl_local {
	__u32 gen; /* the generation these belong to */
	__u32 _pad;
	__u64 pkt_tokens;
	__u64 byte_tokens;
	__u64 passed;
	__u64 dropped;
	__u64 passed_bytes;
	__u64 dropped_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct mzr_rl_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_rl_sets SEC(".maps");

MZR_FN_ACTIVE_MAP(mzr_rl_active);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RL_IDS);
	__type(key, __u32);
	__type(value, struct mzr_rl_shared);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_rl_shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_IDS);
	__type(key, __u32);
	__type(value, struct mzr_rl_local);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_rl_local SEC(".maps");

/* The function's own counters (ratelimit.yml declares them): packets of a
 * limited VPC or endpoint that passed, and that were dropped. The VNIs
 * without limits are not counted. */
enum mzr_rl_stat {
	RL_PASSED = 0,
	RL_DROPPED = 1,
	RL_STAT_MAX = 2,
};

MZR_FN_COUNTERS_MAP(mzr_rl_stats, RL_STAT_MAX);

/* The set's entry of (vni, ip), or NULL. */
static __always_inline struct mzr_rl_slot *rl_find(struct mzr_rl_set *set, __u32 vni, __be32 ip)
{
	__u32 home = mzr_slot_hash(vni, ip);

	for (int i = 0; i < RL_PROBES; i++) {
		struct mzr_rl_slot *s = &set->slot[(home + i) & (RL_SLOTS - 1)];

		if (s->vni == 0)
			return NULL;
		if (s->vni == vni && s->ip == ip)
			return s;
	}
	return NULL;
}

/* Take cost ns from a shared clock that may run burst_ns ahead of now. */
static __always_inline int rl_grant(__u64 *tat, __u64 now, __u64 cost, __u64 burst_ns)
{
	for (int i = 0; i < RL_CAS_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 base = old > now ? old : now;

		if (base - now > burst_ns)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, base + cost) == old)
			return 1;
	}
	return 0;
}

/* Make the CPU's budget *tokens hold cost, taking whole batches from the
 * shared clock when it does not. *now is read once, on the first grant. */
static __always_inline int rl_afford(__u64 *tokens, __u64 cost, __u64 batch, __u64 batch_ns, __u64 burst_ns,
				     __u64 *tat, __u64 *now)
{
	__u64 have = *tokens, n = 1;

	if (have >= cost)
		return 1;
	if (cost - have > batch)
		n = (cost - have + batch - 1) / batch;
	if (!*now)
		*now = bpf_ktime_get_ns();
	if (!rl_grant(tat, *now, n * batch_ns, burst_ns))
		return 0;
	*tokens = have + n * batch;
	return 1;
}

struct rl_hold {
	struct mzr_rl_limit *lim;
	struct mzr_rl_local *loc;
};

/* Can limit id pay for a packet of len bytes? Fills h for rl_pay(); counts
 * the drop when it cannot. */
static __always_inline int rl_check(struct mzr_rl_set *set, __u32 id, __u64 len, __u64 *now, struct rl_hold *h)
{
	struct mzr_rl_limit *lim;
	struct mzr_rl_local *loc;
	struct mzr_rl_shared *sh;

	if (id >= RL_IDS)
		return 1;
	lim = &set->limit[id];
	loc = bpf_map_lookup_elem(&mzr_rl_local, &id);
	sh = bpf_map_lookup_elem(&mzr_rl_shared, &id);
	if (!loc || !sh)
		return 1;
	if (loc->gen != lim->gen) { /* a new limit at this index: start afresh */
		__builtin_memset(loc, 0, sizeof(*loc));
		loc->gen = lim->gen;
	}
	if ((lim->pkt_cost_ns &&
	     !rl_afford(&loc->pkt_tokens, 1, lim->pkt_batch, lim->pkt_cost_ns, lim->burst_ns, &sh->pkt_tat, now)) ||
	    (lim->byte_cost_ns &&
	     !rl_afford(&loc->byte_tokens, len, lim->byte_batch, lim->byte_cost_ns, lim->burst_ns, &sh->byte_tat,
			now))) {
		loc->dropped += 1;
		loc->dropped_bytes += len;
		return 0;
	}
	h->lim = lim;
	h->loc = loc;
	return 1;
}

static __always_inline void rl_pay(struct rl_hold *h, __u64 len)
{
	if (!h->loc)
		return;
	if (h->lim->pkt_cost_ns)
		h->loc->pkt_tokens -= 1;
	if (h->lim->byte_cost_ns)
		h->loc->byte_tokens -= len;
	h->loc->passed += 1;
	h->loc->passed_bytes += len;
}

/* The inner IPv4 destination of the frame at the cursor, or 0. */
static __always_inline __be32 rl_inner_dst(struct mzr_cursor *c)
{
	struct ethhdr *eth = mzr_parse_eth(c);
	struct iphdr *ip;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = mzr_parse_ipv4(c);
	return ip ? ip->daddr : 0;
}

SEC("xdp")
int ratelimit_on_xdp_redirect(struct xdp_md *ctx)
{
	struct mzr_cursor c = mzr_fn_cursor(ctx);
	struct mzr_stage_ctx *sc = mzr_fn_stage_ctx();
	struct rl_hold ep_hold = {}, vpc_hold = {};
	struct mzr_rl_slot *vpc, *ep = NULL;
	struct mzr_rl_set *set;
	__u32 zero = 0, *active, vni;
	__u64 len, now = 0;
	__be32 dst;

	if (!sc)
		return XDP_ABORTED;
	vni = sc->vni;
	active = bpf_map_lookup_elem(&mzr_rl_active, &zero);
	if (!active)
		return mzr_stage_next(ctx);
	set = bpf_map_lookup_elem(&mzr_rl_sets, active);
	if (!set || !vni)
		return mzr_stage_next(ctx);
	vpc = rl_find(set, vni, 0);
	if (!vpc)
		return mzr_stage_next(ctx); /* nothing of this VPC is limited */
	if (vpc->flags & RL_F_ENDPOINTS &&
	    (!(sc->flags & MZR_SC_F_TUNNEL) || mzr_fn_skip_tunnel(&c) == vni)) {
		dst = rl_inner_dst(&c);
		if (dst)
			ep = rl_find(set, vni, dst);
	}
	len = ctx->data_end - ctx->data;
	if ((ep && !rl_check(set, ep->id, len, &now, &ep_hold)) || !rl_check(set, vpc->id, len, &now, &vpc_hold)) {
		mzr_fn_count(&mzr_rl_stats, RL_DROPPED);
		return XDP_DROP;
	}
	rl_pay(&ep_hold, len);
	rl_pay(&vpc_hold, len);
	mzr_fn_count(&mzr_rl_stats, RL_PASSED);
	return mzr_stage_next(ctx); /* the next function, or the pipeline's verdict: its target is set */
}

char _license[] SEC("license") = "GPL";
