/* Loader test object: a map declared with max_entries 0, which the loader must size, and a
 * program in a section name libbpf does not know (the loader sets its type to XDP). */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0);
	__type(key, __u32);   /* IP protocol */
	__type(value, __u64); /* packets */
} proto_counts SEC(".maps");

SEC("bpfops_custom/proto_count")
int proto_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 key = ip->protocol;
	__u64 one = 1, *v = bpf_map_lookup_elem(&proto_counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&proto_counts, &key, &one, BPF_NOEXIST);
	return XDP_PASS;
}
