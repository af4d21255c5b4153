/* bench/datapath's reference for a three-stage tail-call chain: the dispatcher's and three
 * stages' work (one per-CPU counter each, as xdp_dispatcher.bpf.c and xdp_stage.bpf.c do) in one
 * program, so that the chain's cost is its tail calls. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define STAGES 3
#define STAGE_VERSIONS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} inline_chain_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8 * STAGE_VERSIONS);
	__type(key, __u32);
	__type(value, __u64);
} inline_stage_stats SEC(".maps");

static __always_inline void bump(void *map, __u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(map, &slot);
	if (v)
		(*v)++;
}

SEC("xdp")
int xdp_stages_inline(struct xdp_md *ctx)
{
	bump(&inline_chain_stats, 0);
#pragma clang loop unroll(full)
	for (__u32 i = 0; i < STAGES; i++)
		bump(&inline_stage_stats, i * STAGE_VERSIONS + 1);
	return XDP_PASS;
}

/* The floor under every figure: an XDP program that only returns. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
