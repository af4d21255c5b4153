/* Test object for XDP programs sharing one interface through bpfops's dispatcher: a filter that
 * drops UDP to port 6666, and a counter; each counts the packets it saw per version and passes
 * the rest on with bpfops_xdp_pass(). */
#include "../common.bpf.h"
#include "../bpfops_xdp.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 version = 1;

/* [0..3] the filter's packets by version % 4, [4..7] the counter's */
__u64 seen[8];

SEC("xdp")
int drop_6666(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__sync_fetch_and_add(&seen[version % 4], 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return bpfops_xdp_pass(ctx);
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return bpfops_xdp_pass(ctx);
	if (udp->dest == bpf_htons(6666))
		return XDP_DROP;
	return bpfops_xdp_pass(ctx);
}

SEC("xdp")
int count_all(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&seen[4 + version % 4], 1);
	return bpfops_xdp_pass(ctx);
}
