// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Benchmark stage function: lets every packet go on along its stage's
 * chain (mzr_stage_next) and does nothing else, so a chain of them times
 * what a position of a chain costs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "mzr_abi.h"
#include "mzr_maps.h"
#include "mzr_stages.h"

SEC("xdp")
int bench_next(struct xdp_md *ctx)
{
	return mzr_stage_next(ctx);
}

char _license[] SEC("license") = "GPL";
