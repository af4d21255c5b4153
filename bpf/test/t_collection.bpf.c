/* Test object for collections (several programs of one object loaded as one unit): an XDP entry
 * tail-calls two stages through a prog-array filled statically with its sibling programs
 * (.values, as libbpf fills it), a tc program counts on its own hook, and all of them count into
 * one .bss (shared globals), per version. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 version = 1;

/* packets each program saw, by version % 4: shared by every program of one load */
__u64 entry_seen[4];
__u64 one_seen[4];
__u64 two_seen[4];
__u64 tc_seen[4];

int stage_one(struct xdp_md *ctx);
int stage_two(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int(void *));
} stages SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_one,
		[1] = (void *)&stage_two,
	},
};

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&entry_seen[version % 4], 1);
	bpf_tail_call(ctx, &stages, 0);
	return XDP_DROP; /* an empty slot drops: a missing sibling shows as lost packets */
}

SEC("xdp")
int stage_one(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&one_seen[version % 4], 1);
	bpf_tail_call(ctx, &stages, 1);
	return XDP_DROP;
}

SEC("xdp")
int stage_two(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&two_seen[version % 4], 1);
	return XDP_PASS;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&tc_seen[version % 4], 1);
	return TCX_NEXT;
}
