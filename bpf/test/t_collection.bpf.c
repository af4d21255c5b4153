/* Test object for collections (several programs of one object loaded as one unit): an XDP entry
 * tail-calls two stages through a prog-array filled statically with its sibling programs
 * (.values, as libbpf fills it) and counts through a map-in-map filled with a sibling map, a tc
 * program counts on its own hook, and all of them count into one .bss (shared globals). */
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

/* A map-in-map whose .values name a sibling map: libbpf puts `inner` in slot 0 at load. */
struct inner_counts {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner_counts);
} outer SEC(".maps") = {
	.values = { [0] = &inner },
};

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__sync_fetch_and_add(&entry_seen[version % 4], 1);
	/* through the map-in-map: counts only if libbpf filled its slot with the sibling map */
	void *in = bpf_map_lookup_elem(&outer, &zero);
	if (in) {
		__u64 *n = bpf_map_lookup_elem(in, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
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
