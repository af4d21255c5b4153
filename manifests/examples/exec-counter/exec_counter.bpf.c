/* Exec counter: counts execve calls per user id at the sys_enter_execve tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);   /* uid */
	__type(value, __u64); /* execs */
} execs SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int count_execs(struct trace_event_raw_sys_enter *ctx)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u64 one = 1, *n = bpf_map_lookup_elem(&execs, &uid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&execs, &uid, &one, BPF_NOEXIST);
	return 0;
}
