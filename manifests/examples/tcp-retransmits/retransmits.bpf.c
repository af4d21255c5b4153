/* TCP retransmits per destination: the tcp_retransmit_skb tracepoint counts each retransmitted
 * segment under its IPv4 destination address. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2

struct dest {
	__be32 daddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dest);
	__type(value, __u64);
} retransmits SEC(".maps");

SEC("tracepoint/tcp/tcp_retransmit_skb")
int count_retransmits(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	if (ctx->family != AF_INET)
		return 0;
	/* daddr is not 4-byte aligned in the tracepoint's record: read it as bytes */
	struct dest d = {};
	bpf_probe_read_kernel(&d.daddr, sizeof(d.daddr), ctx->daddr);
	__u64 one = 1, *n = bpf_map_lookup_elem(&retransmits, &d);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&retransmits, &d, &one, BPF_NOEXIST);
	return 0;
}
