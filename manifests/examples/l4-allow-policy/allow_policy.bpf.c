/* An L4 allow policy at XDP: an IPv4 TCP or UDP packet passes only when (source address,
 * destination port, protocol) has a grant in the policy map; everything else IPv4 is dropped.
 * The policy map's contents are git's (entryPolicy: exact); verdicts are counted per CPU. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

char LICENSE[] SEC("license") = "GPL";

struct grant_key {
	__be32 saddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct grant_key);
	__type(value, __u32);
} allow SEC(".maps");

enum verdict { VERDICT_PASS, VERDICT_DROP, VERDICT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} allow_verdicts SEC(".maps");

static __always_inline int count(__u32 v, int action)
{
	__u64 *c = bpf_map_lookup_elem(&allow_verdicts, &v);
	if (c)
		*c += 1;
	return action;
}

SEC("xdp")
int allow_policy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return XDP_PASS;
	struct grant_key k = { .saddr = ip->saddr, .proto = ip->protocol };
	if (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP) {
		/* Both headers start with the source and destination ports. */
		__be16 *ports = (void *)ip + ip->ihl * 4;
		if ((void *)(ports + 2) > end)
			return count(VERDICT_DROP, XDP_DROP);
		k.dport = ports[1];
	}
	if (bpf_map_lookup_elem(&allow, &k))
		return count(VERDICT_PASS, XDP_PASS);
	return count(VERDICT_DROP, XDP_DROP);
}
