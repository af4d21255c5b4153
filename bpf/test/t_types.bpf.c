/* Test object: a map whose key and value use every BTF type class the typed entry encoders
 * handle (integers of each size and signedness, __be16/__be32, an enum, nested structs with
 * padding, arrays, a union, bitfields, char arrays, in6_addr), and an LPM trie keyed by prefix. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

enum action { ACTION_PASS = 0, ACTION_DROP = 1, ACTION_REDIRECT = 7 };

struct port_rule {
	__be16 port;
	__u8 proto;
	/* 1 byte of padding */
	__u32 hits;
};

struct t_key {
	__be32 saddr;
	struct in6_addr daddr;
	__u8 proto;
	/* 3 bytes of padding */
	__s32 zone;
};

struct t_value {
	enum action action;
	__u8 flags : 3;
	__u8 level : 5;
	char label[8];
	struct port_rule rules[2];
	union {
		__u32 ifindex;
		__u8 mac[6];
	} target;
	__s64 delta;
	__u16 small;
	__s8 tiny;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct t_key);
	__type(value, struct t_value);
} t_typed SEC(".maps");

struct lpm_v4_key {
	__u32 prefixlen;
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} t_prefixes SEC(".maps");

SEC("xdp")
int t_types(struct xdp_md *ctx)
{
	struct t_key k = {};
	struct lpm_v4_key p = { .prefixlen = 32 };
	if (bpf_map_lookup_elem(&t_typed, &k) || bpf_map_lookup_elem(&t_prefixes, &p))
		return XDP_DROP;
	return XDP_PASS;
}
