/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The maps shared by every mizar.transit program, pinned by name under the
 * pin directory the loader chooses, so that the transit program, the agent
 * and stage functions all see the same state.
 */
#ifndef MZR_MAPS_H
#define MZR_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mzr_if_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_if_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_EP_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_endpoint);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_NET_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_network);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_networks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_VPC_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_vpc);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_vpcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_PEER_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_peer);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_SRC_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_source);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_HOST_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_host);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_substrate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_AGENT_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_agent);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_agents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MZR_MEMBER_SLOTS);
	__type(key, __u32);
	__type(value, struct mzr_member);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MZR_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mzr_stage_ctx);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mzr_stage_ctx SEC(".maps");

static __always_inline void mzr_count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&mzr_counters, &idx);

	if (c)
		*c += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline struct mzr_if_cfg *mzr_if_cfg_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mzr_if_cfg, &zero);
}

#endif /* MZR_MAPS_H */
