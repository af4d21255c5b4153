/* Test object: a cgroup sysctl program that denies reading kernel/ostype to the processes of its
 * cgroup, and counts the reads it denied, per program version (for swap tests). */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 version = 1;

/* [0] reads denied, [1 + version % 2] denied by that version */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} sysctl_denied SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&sysctl_denied, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("cgroup/sysctl")
int deny_ostype(struct bpf_sysctl *ctx)
{
	const char want[] = "kernel/ostype";
	char name[sizeof(want)] = {};
	if (ctx->write)
		return 1;
	if (bpf_sysctl_get_name(ctx, name, sizeof(name), 0) != sizeof(want) - 1)
		return 1;
	for (int i = 0; i < sizeof(want); i++)
		if (name[i] != want[i])
			return 1;
	bump(0);
	bump(1 + version % 2);
	return 0;
}
