/* Loader test object: map-in-map and prog-array initial values (.values), as libbpf objects
 * declare them. The root counts into outer[0]'s inner map and tail-calls jmp[0]. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};
struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

int tail_target(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jmp SEC(".maps") = {
	.values = { [0] = (void *)&tail_target },
};

static __always_inline void bump_outer(__u32 idx)
{
	__u32 zero = 0;
	void *in = bpf_map_lookup_elem(&outer, &idx);
	if (!in)
		return;
	__u64 *v = bpf_map_lookup_elem(in, &zero);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int tail_target(struct xdp_md *ctx)
{
	bump_outer(1);
	return XDP_PASS;
}

SEC("xdp")
int mim_root(struct xdp_md *ctx)
{
	bump_outer(0);
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_PASS;
}
