/* What the hook test objects share: a version set by the manifest, and a counter per version
 * (slot version % 8) in a map the manifests pin, so a swap shows as counts moving. */
#pragma once

const volatile __u32 version = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} hook_counts SEC(".maps");

static __always_inline void count_version(__u64 n)
{
	__u32 slot = version % 8;
	__u64 *v = bpf_map_lookup_elem(&hook_counts, &slot);
	if (v)
		__sync_fetch_and_add(v, n);
}
