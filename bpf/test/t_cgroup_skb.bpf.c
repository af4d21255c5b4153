/* Loader test object: a cgroup_skb egress program counting the packets and bytes that
 * processes of one cgroup send, and packets per program version (for swap tests). */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 cg_version = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32); /* 0 packets, 1 bytes, 2 + version % 2: packets of that version */
	__type(value, __u64);
} cg_counts SEC(".maps");

SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&cg_counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	k = 1;
	v = bpf_map_lookup_elem(&cg_counts, &k);
	if (v)
		__sync_fetch_and_add(v, skb->len);
	k = 2 + (cg_version & 1);
	v = bpf_map_lookup_elem(&cg_counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 1;
}
