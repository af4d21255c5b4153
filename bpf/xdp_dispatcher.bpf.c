/* XDP root of a tail-call chain: counts each packet and tail-calls slot 0 of the pinned
 * prog-array; an empty slot falls through to a configurable verdict. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* What a packet gets when the chain's first slot is empty: XDP_PASS by default; tests set
 * XDP_DROP so that a gap during a slot swap shows up as lost packets. */
const volatile __u32 fallthrough_action = XDP_PASS;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_chain SEC(".maps");

/* [0] packets entering the chain, [1] packets that fell through an empty slot 0 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_chain_stats SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&xdp_chain_stats, &slot);
	if (v)
		(*v)++;
}

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	bump(0);
	bpf_tail_call(ctx, &xdp_chain, 0);
	bump(1);
	return fallthrough_action;
}
