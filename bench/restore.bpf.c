// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Benchmark wrapper: put the original packet back (head and bytes), then
 * tail-call the program under test. With BPF_PROG_TEST_RUN's repeat, every
 * repetition then runs the program on the original packet, hot, as a NIC
 * driver's poll loop would. The wrapper's own cost is measured by pointing
 * it at the trivial XDP_PASS program and subtracted.
 *
 * bench_vary, when its offset is set, then writes a counter (4 bytes, one
 * more each repetition) at that offset of the packet: each repetition is
 * then another flow (the ports of an inner UDP header, say), for paths whose
 * cost is a flow's first packet.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BENCH_MAX 256

struct bench_packet {
	__u32 len;
	__u8 data[BENCH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_packet);
} bench_packet SEC(".maps");

struct bench_vary {
	__u32 offset; /* 0: nothing varies */
	__u32 next;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_vary);
} bench_vary SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

SEC("xdp")
int bench_restore(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_packet *p = bpf_map_lookup_elem(&bench_packet, &zero);
	struct bench_vary *v = bpf_map_lookup_elem(&bench_vary, &zero);
	__u32 len;
	int delta;

	if (!p)
		return XDP_ABORTED;
	len = p->len;
	if (len < 14 || len > BENCH_MAX)
		return XDP_ABORTED;
	/*
	 * The packet's length as a scalar from the helper, not as data_end -
	 * data: with the build's 32-bit ALU (-mcpu=v3) the compiler may fold
	 * that difference into 32-bit arithmetic on the packet pointers, which
	 * the verifier refuses.
	 */
	delta = (int)bpf_xdp_get_buff_len(ctx) - (int)len;
	if (bpf_xdp_adjust_head(ctx, delta))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, p->data, len))
		return XDP_ABORTED;
	if (v && v->offset) {
		__u32 n = v->next++;

		if (bpf_xdp_store_bytes(ctx, v->offset, &n, sizeof(n)))
			return XDP_ABORTED;
	}
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
