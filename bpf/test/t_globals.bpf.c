/* Loader test object: globals in .data (a struct, with a string) and .bss (integers) set by a
 * manifest, and a .bss counter that a pinned .bss keeps: drops UDP to drop_port and above
 * limits.max_port, counts every IPv4 packet in seen. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct limits {
	__u32 max_port;
	char label[8];
};

/* Initialized: .data. */
struct limits limits = { .max_port = 65535, .label = "none" };
/* Zero: .bss. */
__u64 seen;
__u32 drop_port;

SEC("xdp")
int globals_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	__sync_fetch_and_add(&seen, 1);
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	__u16 port = bpf_ntohs(udp->dest);
	if (port == drop_port || port > limits.max_port)
		return XDP_DROP;
	return XDP_PASS;
}
