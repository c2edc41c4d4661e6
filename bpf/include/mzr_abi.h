/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The map ABI of mizar.transit: every key and value the datapath shares with
 * the control plane. The Python codecs in plugins/module_utils/abi.py mirror
 * these structs; tests/datapath/test_abi.py checks them against the BTF of
 * the compiled objects, so a change here that is not made there fails CI.
 *
 * Byte order: fields named *_ip hold IPv4 addresses in network order, as
 * they appear on the wire. Every other integer is in host order.
 *
 * Bump MZR_ABI_VERSION with any layout change. The loader compares the BTF
 * layout of pinned maps with the new object's and migrates entries by field
 * name when they differ; it never mixes layouts.
 */
#ifndef MZR_ABI_H
#define MZR_ABI_H

#include <linux/types.h>

#define MZR_ABI_VERSION 4

#define MZR_GENEVE_PORT 6081
#define MZR_GENEVE_PROTO_ETH 0x6558 /* Transparent Ethernet Bridging */
/* The Geneve option class of mizar.transit's own options, from the range
 * the IANA registry keeps for experimental use (0xfff0-0xffff). Every
 * option of this class is non-critical (the type's high bit clear). */
#define MZR_GENEVE_CLASS 0xfff3
#define MZR_OPT_LB_BACKEND 0x01 /* the scaled function's chosen backend: its IPv4 address */
/* What that option adds to a tunnel packet: 4 bytes of option header and the
 * address. The agent keeps them free in a scaled endpoint's path MTU. */
#define MZR_OPT_LB_BACKEND_LEN 8

/*
 * Lookups on the forwarding paths must be cheap: a BPF hash map lookup
 * costs about as much as the whole bouncer path may. So the keyed tables
 * are open-addressing hash tables laid out in ARRAY maps, whose lookups the
 * verifier inlines. The control plane (plugins/module_utils/tables.py)
 * places every entry within MZR_PROBES slots of its home slot
 * mzr_slot_hash(a, b) & (slots - 1), and updates them so that a reader
 * always sees either the old or the new complete entry:
 *
 *   tag 0 ............ empty: a probe stops here (miss)
 *   tag MZR_TAG_DEAD .. tombstone or staged entry: a probe goes on
 *   any other tag ..... a live entry (the VNI, or the ifindex for agents)
 *
 * The flat tables are mmap-able (BPF_F_MMAPABLE): the control plane reads
 * a whole table as one block of memory, not slot by slot, and their
 * entries are multiples of 8 bytes so that block has no holes.
 *
 * Substrate hosts are a plain array indexed by a slot number the control
 * plane allocates (0 = none); the tables refer to hosts by that slot.
 */
#define MZR_PROBES 16
#define MZR_TAG_EMPTY 0
#define MZR_TAG_DEAD 0xffffffffU

#define MZR_EP_SLOTS (1 << 19)     /* 4 x 131,072 endpoints */
#define MZR_NET_SLOTS (1 << 16)    /* >= 4 x 16,384 networks */
#define MZR_VPC_SLOTS (1 << 15)    /* >= 4 x 8,192 VPCs */
#define MZR_AGENT_SLOTS (1 << 15)  /* >= 4 x 8,192 local endpoints */
#define MZR_HOST_SLOTS 16384       /* substrate hosts, slot 0 unused */
#define MZR_SRC_SLOTS (1 << 16)    /* >= 4 x 16,384 trusted tunnel sources */
#define MZR_PEER_SLOTS (1 << 14)   /* 4 x 4,096 peer routes */
#define MZR_MEMBER_SLOTS (1 << 19) /* 4 x 131,072 backend memberships */

/* Capacities (at least Mizar's). */
#define MZR_MAX_ENDPOINTS 131072
#define MZR_MAX_NETWORKS 16384
#define MZR_MAX_VPCS 8192
#define MZR_MAX_SUBSTRATE (MZR_HOST_SLOTS - 1)
#define MZR_MAX_AGENTS 8192
#define MZR_MAX_SOURCES 16384
#define MZR_MAX_PEERS 4096  /* peer routes one divider holds (one per peering of its VPCs) */
#define MZR_MAX_HOPS 128    /* bouncers per network, dividers per VPC */
#define MZR_MAX_BACKENDS 4096 /* backends of one scaled endpoint */
#define MZR_MAX_MEMBERS 131072 /* backends of all the scaled endpoints one host knows */
#define MZR_MAX_PLENS 8     /* distinct network prefix lengths in one VPC */

/* Tail-call stages: each stage's number, its first slot in the mzr_stages prog array. */
enum mzr_stage {
	MZR_STAGE_ON_XDP_TX = 0,
	MZR_STAGE_ON_XDP_PASS = 1,
	MZR_STAGE_ON_XDP_REDIRECT = 2,
	MZR_STAGE_ON_XDP_DROP = 3,
	MZR_STAGE_ON_XDP_SCALED_EP = 4,
	MZR_STAGE_MAX = 5,
};

/*
 * A stage runs a chain of up to MZR_CHAIN_MAX functions. mzr_stages holds
 * two banks of chains; mzr_stage_bank says, per stage, which one is live.
 * Position pos of a stage's chain in bank b is slot
 * (b * MZR_CHAIN_MAX + pos) * MZR_STAGE_MAX + stage, so position 0 of bank
 * 0 is the stage's own number, and the next position is MZR_STAGE_MAX on.
 */
#define MZR_CHAIN_MAX 8
#define MZR_STAGE_BANK_SLOTS (MZR_CHAIN_MAX * MZR_STAGE_MAX)
#define MZR_STAGE_SLOTS (2 * MZR_STAGE_BANK_SLOTS)

/* mzr_if_cfg: one entry (key 0), this host's substrate interface. */
struct mzr_if_cfg {
	__be32 ip;
	__u8 mac[6];
	__u16 mtu; /* the NIC's MTU; 0: not known, taken as 1500 */
	__u32 ifindex;
	__u32 flags;
};

/*
 * mzr_sources: flat table of the outer source addresses a Geneve packet may
 * come from, keyed by (ip, vni) but homed by the IP alone, so that every
 * entry of one address sits in one probe run. vni 0: any VNI (a transit
 * host of the fleet); otherwise the one VNI a tunnel peer may use. The tag
 * is the address: 0.0.0.0 and 255.255.255.255 are never sources.
 */
struct mzr_source {
	__be32 ip; /* tag */
	__u32 vni;
};

/* mzr_substrate[slot]: a substrate host (ip 0: free slot). */
struct mzr_host {
	__be32 ip;
	__u8 mac[6];
	__u16 _pad;
};

/* mzr_endpoints: flat table keyed by (VNI, inner IP). */
enum mzr_ep_type {
	MZR_EP_SIMPLE = 1,
	MZR_EP_SCALED = 2,
	MZR_EP_GATEWAY = 3, /* a network's gateway: answered by ARP, never a destination */
};

#define MZR_EP_F_BYPASS_DECAP 0x1

struct mzr_endpoint {
	__u32 vni; /* tag */
	__be32 ip;
	__u8 type;     /* enum mzr_ep_type */
	__u8 flags;    /* MZR_EP_F_* */
	__u16 host;    /* simple, remote: substrate slot of its host */
	__u32 ifindex; /* non-zero: hosted here, deliver to this interface */
	__u8 mac[6];
	__u16 _pad; /* ABI 3 and before: the scaled endpoint's backend set slot */
};

/*
 * mzr_members: flat table keyed by (VNI, VIP, backend IP), homed by all
 * three: one entry per backend of each scaled endpoint this host knows.
 * The agent's direct server return check is one lookup, whatever the
 * number of backends (up to MZR_MAX_BACKENDS per VIP, MZR_MAX_MEMBERS in
 * all); an entry exists only for a scaled endpoint's VIP.
 */
struct mzr_member {
	__u32 vni; /* tag */
	__be32 vip;
	__be32 ip; /* the backend */
	__u32 _pad; /* to a multiple of 8 bytes: the mmap'ed table has no holes */
};

/* mzr_networks: flat table keyed by (VNI, prefix length, network address). */
#define MZR_NET_F_LOCAL_BOUNCER 0x1 /* this host bounces for the network: it knows all its endpoints */

struct mzr_network {
	__u32 vni; /* tag */
	__be32 ip; /* network address */
	__u8 plen;
	__u8 flags; /* MZR_NET_F_* */
	__u16 nbouncers;
	__u16 bouncer[MZR_MAX_HOPS]; /* substrate slots */
	__u32 _pad; /* to a multiple of 8 bytes: the mmap'ed table has no holes */
};

/* mzr_vpcs: flat table keyed by VNI. */
#define MZR_VPC_F_LOCAL_DIVIDER 0x1 /* this host is a divider of the VPC */

struct mzr_vpc {
	__u32 vni; /* tag */
	__u8 flags; /* MZR_VPC_F_* */
	__u8 nplens;
	__u16 ndividers;
	__u8 plens[MZR_MAX_PLENS];   /* prefix lengths of the VPC's networks known here, longest first */
	__u16 divider[MZR_MAX_HOPS]; /* substrate slots */
	__u8 npeer_plens;
	__u8 peer_plens[MZR_MAX_PLENS]; /* prefix lengths of the peer routes (mzr_peers) of the VNI here */
	__u8 _pad[7]; /* to a multiple of 8 bytes: the mmap'ed table has no holes */
};

/*
 * mzr_peers: flat table keyed by (VNI, prefix length, address) like
 * mzr_networks: on a divider of the VPC of vni, the CIDR of a VPC peered
 * with it. A packet of vni for no network of the VPC but inside that CIDR
 * leaves with the peer's VNI for one of the peer's dividers. Only the VPC's
 * own addresses cross: an inner source outside src_ip/src_plen is dropped.
 */
struct mzr_peer {
	__u32 vni; /* tag: the VPC the packet comes from */
	__be32 ip; /* the peer VPC's CIDR */
	__u8 plen;
	__u8 src_plen; /* the VPC's own CIDR: the sources that may cross */
	__u16 ndividers;
	__be32 src_ip;
	__u32 peer_vni;              /* the VNI the packet leaves with */
	__u16 divider[MZR_MAX_HOPS]; /* substrate slots of the peer's dividers */
	__u32 _pad; /* to a multiple of 8 bytes: the mmap'ed table has no holes */
};

/* mzr_agents: flat table keyed by the ifindex of an endpoint's host-side veth. */
struct mzr_agent {
	__u32 ifindex; /* tag */
	__u32 vni;
	__be32 ip;
	__u8 mac[6];
	__u16 nbouncers;
	__u16 bouncer[MZR_MAX_HOPS]; /* substrate slots */
	__u32 _pad; /* to a multiple of 8 bytes: the mmap'ed table has no holes */
};

/*
 * mzr_stage_ctx: per-CPU, one entry (key 0). What the pipeline knew about
 * the packet it hands to a stage: after decapsulation the VNI is no longer
 * in the packet, so a function reads it here; and where the stage's chain
 * goes on (mzr_stage_next() in mzr_stages.h).
 */
#define MZR_SC_F_TUNNEL 0x1 /* the packet is the whole tunnel packet (bypass_decap) */

struct mzr_stage_ctx {
	__u32 vni;
	__u32 ifindex; /* the interface the packet is redirected to */
	__u32 flags;   /* MZR_SC_F_* */
	__u32 verdict; /* the verdict so far: the pipeline's, or what the previous function left */
	__u32 next;    /* mzr_stages slot of the chain's next function */
	__u32 end;     /* the first slot past the chain's bank */
};

/*
 * mzr_counters: per-CPU __u64 indexed by enum mzr_counter. The first five
 * mirror the XDP verdicts (enum xdp_action) the pipeline decided, before any
 * stage function ran. Drop reasons follow; each drop counts one verdict and
 * one reason.
 */
enum mzr_counter {
	MZR_C_ABORTED = 0,
	MZR_C_DROP = 1,
	MZR_C_PASS = 2,
	MZR_C_TX = 3,
	MZR_C_REDIRECT = 4,
	/* transit paths */
	MZR_C_BOUNCE = 8,        /* to a remote endpoint's host */
	MZR_C_DIVIDE = 9,        /* to a bouncer of the destination network */
	MZR_C_TO_DIVIDER = 10,   /* to a divider of the VPC */
	MZR_C_ARP_REPLY = 11,    /* ARP answered by this bouncer */
	MZR_C_DECAP = 12,        /* decapsulated to a local endpoint */
	MZR_C_BYPASS = 13,       /* tunnel packet handed to a bypass endpoint */
	MZR_C_SCALED = 14,       /* handed to ON_XDP_SCALED_EP */
	MZR_C_TO_PEER = 15,      /* to a divider of a peered VPC, VNI rewritten */
	/* agent paths */
	MZR_C_AGENT_ENCAP = 16,
	MZR_C_AGENT_LOCAL = 17,
	MZR_C_AGENT_PMTU = 18,   /* agent: ICMP "fragmentation needed" sent back to the endpoint */
	/* drop reasons */
	MZR_D_GENEVE_TRUNC = 32,   /* Geneve header cut short */
	MZR_D_GENEVE_VERSION = 33, /* version != 0 */
	MZR_D_GENEVE_OPTLEN = 34,  /* options longer than the packet or malformed */
	MZR_D_GENEVE_PROTO = 35,   /* inner frame is not Ethernet */
	MZR_D_INNER_TRUNC = 36,    /* inner Ethernet/IPv4/ARP cut short */
	MZR_D_INNER_PROTO = 37,    /* inner frame neither IPv4 nor ARP */
	MZR_D_INNER_IP_BAD = 38,   /* inner IPv4 version/length invalid */
	/* 39, 40: unused (inner options and fragments were dropped before ABI 2) */
	MZR_D_INNER_ARP_BAD = 41,  /* inner ARP not Ethernet/IPv4 */
	MZR_D_TTL = 42,            /* outer TTL would expire */
	MZR_D_UNKNOWN_VNI = 43,    /* no VPC for the VNI */
	MZR_D_NO_NETWORK = 44,     /* divider: destination network unknown */
	MZR_D_NO_SUBSTRATE = 45,   /* next hop has no substrate MAC */
	MZR_D_NO_HOPS = 46,        /* network or VPC with no bouncer/divider */
	MZR_D_LOOP = 47,           /* next hop is this host */
	MZR_D_SCALED_NO_FN = 48,   /* scaled endpoint, ON_XDP_SCALED_EP empty */
	MZR_D_TO_GATEWAY = 49,     /* IPv4 addressed to a gateway */
	MZR_D_ADJUST = 50,         /* head adjustment failed */
	MZR_D_AGENT_NOCFG = 51,    /* agent: interface has no config */
	MZR_D_AGENT_PROTO = 52,    /* agent: frame neither IPv4 nor ARP */
	MZR_D_AGENT_TRUNC = 53,    /* agent: frame cut short */
	MZR_D_AGENT_SPOOF = 54,    /* agent: source is not the endpoint's IP */
	MZR_D_NO_ENDPOINT = 55,    /* no such endpoint in a network this host bounces for */
	MZR_D_UNTRUSTED_SRC = 56,  /* outer source is no known substrate host (or is this host) */
	MZR_D_GENEVE_CRITICAL = 57, /* C bit: a critical option this host does not know */
	MZR_D_GENEVE_OAM = 58,     /* O bit: a control packet, never forwarded as data */
	MZR_D_OUTER_LEN = 59,      /* outer IPv4 total length or UDP length disagrees with the frame */
	MZR_D_OUTER_IP_OPTS = 60,  /* Geneve to this host with outer IPv4 options */
	MZR_D_ARP_SENDER = 61,     /* ARP from a broadcast/multicast/zero sender */
	MZR_D_ARP_GRATUITOUS = 62, /* gratuitous ARP: nobody in the overlay needs it */
	MZR_D_INNER_ECN = 63,      /* outer CE over a not-ECT inner packet (RFC 6040) */
	MZR_D_AGENT_MCAST = 64,    /* agent: IPv4 multicast or broadcast */
	MZR_D_AGENT_ARP_BAD = 65,  /* agent: ARP not Ethernet/IPv4 */
	MZR_D_AGENT_TOO_BIG = 66,  /* agent: larger than the path MTU, and not DF */
	MZR_D_PEER_SRC = 67,       /* to a peered VPC from a source outside the sending VPC */
	MZR_D_PEER_ARP = 68,       /* ARP for an address of a peered VPC: ARP never crosses */
	MZR_D_TUNNEL_SRC = 69,     /* a tunnel peer's inner source is no endpoint behind it */
	MZR_C_MAX = 96,
};

#endif /* MZR_ABI_H */
