/* The "packet of death" filter's map layouts, shared by pod_filter.bpf.c and the TypeScript
 * encoders in reconciler/kernel/pod-rules.ts (which must stay byte-compatible). */
#pragma once

#define POD_MAX_RULES 64
#define POD_PATTERN_MAX 16
#define POD_STAT_DEFAULT POD_MAX_RULES /* packets no rule matched */
#define POD_STATS_SLOTS (POD_MAX_RULES + 1)

enum pod_action { POD_DROP = 0, POD_PASS = 1 };

/* One rule; a zero field matches anything. First enabled rule that matches decides. */
struct pod_rule {
	__u8 enabled;
	__u8 action;          /* enum pod_action */
	__u8 proto;           /* IPPROTO_UDP, IPPROTO_TCP, 0 = any */
	__u8 src_prefix_len;  /* 0 = any source */
	__u32 src_addr;       /* network byte order */
	__u16 dport;          /* host byte order, 0 = any */
	__u16 pattern_offset; /* from the start of the L4 payload */
	__u8 pattern_len;     /* 0 = no pattern */
	__u8 pad[3];
	__u8 pattern[POD_PATTERN_MAX];
};

struct pod_stat {
	__u64 dropped;
	__u64 passed;
};
