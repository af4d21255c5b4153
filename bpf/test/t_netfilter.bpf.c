/* Test object: a netfilter program (SEC("netfilter"), a section libbpf 1.1 does not know) that
 * counts UDP packets per version; from version 2 on it drops UDP to port 6666. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_DROP 0
#define NF_ACCEPT 1

SEC("netfilter")
int nf_udp(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.protocol != IPPROTO_UDP)
		return NF_ACCEPT;
	if (bpf_probe_read_kernel(&udp, sizeof(udp), head + nh + ip.ihl * 4))
		return NF_ACCEPT;
	count_version(1);
	if (version >= 2 && udp.dest == bpf_htons(6666))
		return NF_DROP;
	return NF_ACCEPT;
}
