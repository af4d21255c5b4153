/* One stage of an XDP tail-call chain: counts the packet under its stage index and version,
 * then tail-calls the next slot; the last stage (or an empty next slot) passes the packet. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define CHAIN_SLOTS 8
#define STAGE_VERSIONS 4

const volatile __u32 stage_index = 0;
const volatile __u32 stage_version = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_chain SEC(".maps");

/* packets seen, by stage_index * STAGE_VERSIONS + stage_version */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CHAIN_SLOTS * STAGE_VERSIONS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_stage_stats SEC(".maps");

SEC("xdp")
int xdp_stage(struct xdp_md *ctx)
{
	__u32 slot = stage_index * STAGE_VERSIONS + (stage_version % STAGE_VERSIONS);
	__u64 *v = bpf_map_lookup_elem(&xdp_stage_stats, &slot);
	if (v)
		(*v)++;
	bpf_tail_call(ctx, &xdp_chain, stage_index + 1);
	return XDP_PASS;
}
