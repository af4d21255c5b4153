/* The "packet of death" XDP filter: drops (or explicitly passes) IPv4 packets that match rules
 * held in a pinned array map, by protocol, destination port, source prefix and payload bytes. */
/* Packet headers are wire formats and xdp_md is UAPI: nothing here needs CO-RE relocation. With
 * none, libbpf loads the program without parsing the kernel's BTF (megabytes), which took a load
 * from 18 to 5 ms, paid by every host of a fleet at every new version of the filter. */
#define BPF_NO_PRESERVE_ACCESS_INDEX
/* For the same reason its types come from the UAPI headers, not vmlinux.h: a fleet's controller
 * compiles a new filter before any host gets it, and parsing vmlinux.h (megabytes) was most of
 * that (350 against 80 ms). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pod_filter.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader: distinguishes builds of the filter (and makes each a distinct program). */
const volatile __u32 filter_version = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, POD_MAX_RULES);
	__type(key, __u32);
	__type(value, struct pod_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pod_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, POD_STATS_SLOTS);
	__type(key, __u32);
	__type(value, struct pod_stat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pod_stats SEC(".maps");

/* Packets each build of the filter handled, by filter_version % POD_VERSIONS: a swap shows as
 * counts moving from one version to the next, and together they count every packet. */
#define POD_VERSIONS 4
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, POD_VERSIONS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pod_versions SEC(".maps");

struct pkt {
	__u8 proto;
	__u16 dport;
	__u32 saddr;
	__u32 payload_off;
};

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return -1;
	__u32 l4 = sizeof(*eth) + ip->ihl * 4;
	p->proto = ip->protocol;
	p->saddr = ip->saddr;
	p->dport = 0;
	p->payload_off = l4;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = data + l4;
		if ((void *)(udp + 1) > end)
			return -1;
		p->dport = bpf_ntohs(udp->dest);
		p->payload_off = l4 + sizeof(*udp);
	} else if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4;
		if ((void *)(tcp + 1) > end)
			return -1;
		p->dport = bpf_ntohs(tcp->dest);
		p->payload_off = l4 + tcp->doff * 4;
	}
	return 0;
}

/* A word's first n bytes (n <= 8) as they lie in memory: the low ones on a little-endian machine. */
static __always_inline __u64 pattern_mask(__u32 n)
{
	if (n >= 8)
		return ~0ULL;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (1ULL << (n * 8)) - 1;
#else
	return ~(~0ULL >> (n * 8));
#endif
}

static __always_inline int matches(struct xdp_md *ctx, const struct pod_rule *r, const struct pkt *p)
{
	if (r->proto && r->proto != p->proto)
		return 0;
	if (r->dport && r->dport != p->dport)
		return 0;
	if (r->src_prefix_len) {
		__u32 bits = r->src_prefix_len > 32 ? 32 : r->src_prefix_len;
		__u32 mask = bits == 32 ? 0xffffffff : ~(0xffffffffu >> bits);
		if ((bpf_ntohl(p->saddr) & mask) != (bpf_ntohl(r->src_addr) & mask))
			return 0;
	}
	if (r->pattern_len) {
		__u64 buf[2] = {};
		__u32 len = r->pattern_len;
		if (len > POD_PATTERN_MAX)
			len = POD_PATTERN_MAX;
		if (bpf_xdp_load_bytes(ctx, p->payload_off + r->pattern_offset, buf, len))
			return 0; /* packet too short for the pattern */
		/* The pattern's bytes as two words, compared under a mask of its length. A loop over the
		 * bytes branched up to 16 times per rule and the verifier walked each branch: 9k
		 * instructions and 10 ms of CPU to load, against 4k and 6 ms, paid by every host of a
		 * fleet at every new version of the filter. Per packet it costs the same. */
		__u64 want[2];
		__builtin_memcpy(want, r->pattern, sizeof(want));
		if (((buf[0] ^ want[0]) & pattern_mask(len)) | ((buf[1] ^ want[1]) & pattern_mask(len > 8 ? len - 8 : 0)))
			return 0;
	}
	return 1;
}

static __always_inline void count(__u32 slot, int dropped)
{
	struct pod_stat *s = bpf_map_lookup_elem(&pod_stats, &slot);
	if (!s)
		return;
	if (dropped)
		s->dropped++;
	else
		s->passed++;
}

/* The state of one packet's walk over the rules (bpf_loop's context, on the program's stack). */
struct scan {
	struct xdp_md *ctx;
	struct pkt p;
	__u32 hit; /* the rule that matched, or POD_STAT_DEFAULT */
	int drop;
};

/* Rules are walked RULES_PER_CALL at a time: bpf_loop's call per iteration costs more than a
 * rule that is not enabled (measured with `npm run bench:datapath`), and the verifier still checks
 * the body once, whatever the number of rules. */
#define RULES_PER_CALL 4

/* RULES_PER_CALL rules: stops the walk (returns 1) at the first enabled rule that matches. */
static long scan_rules(__u32 i, void *data)
{
	struct scan *s = data;
#pragma clang loop unroll(full)
	for (__u32 j = 0; j < RULES_PER_CALL; j++) {
		__u32 key = i * RULES_PER_CALL + j;
		struct pod_rule *r = bpf_map_lookup_elem(&pod_rules, &key);
		if (!r || !r->enabled || !matches(s->ctx, r, &s->p))
			continue;
		s->hit = key;
		s->drop = r->action == POD_DROP;
		return 1;
	}
	return 0;
}

SEC("xdp")
int pod_filter(struct xdp_md *ctx)
{
	__u32 version = filter_version % POD_VERSIONS;
	__u64 *seen = bpf_map_lookup_elem(&pod_versions, &version);
	if (seen)
		(*seen)++;
	struct scan s = { .ctx = ctx, .hit = POD_STAT_DEFAULT };
	if (parse(ctx, &s.p)) {
		count(POD_STAT_DEFAULT, 0);
		return XDP_PASS;
	}
	/* bpf_loop rather than a bounded loop: the verifier checks scan_rules once, not once per
	 * rule (a bounded loop of 64 rules took 47k instructions and 48 ms to verify, this 4k and
	 * 6 ms; every host of a fleet pays that at each new version of the filter, and the canary's
	 * verdict gates the emergency path). bpf_loop needs Linux 5.17. */
	bpf_loop(POD_MAX_RULES / RULES_PER_CALL, scan_rules, &s, 0);
	count(s.hit, s.drop);
	return s.drop ? XDP_DROP : XDP_PASS;
}
