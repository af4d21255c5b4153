/* Test object: a flow dissector that counts the packets it dissects per version and hands the
 * kernel the IPv4 addresses and protocol (enough for a flow hash). */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	struct iphdr ip;
	count_version(1);
	if (keys->n_proto != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, keys->nhoff, &ip, sizeof(ip)))
		return BPF_DROP;
	keys->addr_proto = ETH_P_IP;
	keys->ipv4_src = ip.saddr;
	keys->ipv4_dst = ip.daddr;
	keys->ip_proto = ip.protocol;
	keys->thoff = keys->nhoff + ip.ihl * 4;
	return BPF_OK;
}
