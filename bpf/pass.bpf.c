// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * XDP_PASS and nothing else. Attached to the far end of a veth that the
 * datapath redirects or transmits into (the kernel drops such frames unless
 * the receiving end runs XDP), and the benchmark's floor.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int mzr_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
