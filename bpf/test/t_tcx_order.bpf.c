/* Test object for ordered tcx Attachments: each program (told apart by `position_id`) counts
 * whether it ran first on a packet (skb->mark still 0) or after another, then marks the packet. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 position_id = 1;

/* [id * 2 + 0]: packets this program saw first; [id * 2 + 1]: packets it saw after another */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} order_seen SEC(".maps");

SEC("tc")
int tcx_order(struct __sk_buff *skb)
{
	__u32 slot = (position_id % 8) * 2 + (skb->mark ? 1 : 0);
	__u64 *v = bpf_map_lookup_elem(&order_seen, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
	skb->mark = position_id;
	return TCX_NEXT;
}
