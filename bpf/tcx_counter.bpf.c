/* A tcx counter: counts packets and bytes per program version in a pinned per-CPU array and
 * hands the packet on to the next program on the hook. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define COUNTER_VERSIONS 4

const volatile __u32 counter_version = 1;

struct tcx_count {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_VERSIONS);
	__type(key, __u32);
	__type(value, struct tcx_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tcx_counts SEC(".maps");

SEC("tc")
int tcx_counter(struct __sk_buff *skb)
{
	__u32 slot = counter_version % COUNTER_VERSIONS;
	struct tcx_count *c = bpf_map_lookup_elem(&tcx_counts, &slot);
	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	return TCX_NEXT;
}
