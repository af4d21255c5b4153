/* Syscall counters for one process: a tracepoint program on sys_enter_getppid and a raw
 * tracepoint program on sys_enter, both filtered by the target process's tgid. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;

/* [0] getppid calls (tracepoint), [1] syscalls entered (raw tracepoint) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tp_counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return;
	__u64 *v = bpf_map_lookup_elem(&tp_counts, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	bump(0);
	return 0;
}

SEC("raw_tp/sys_enter")
int count_sys_enter(void *ctx)
{
	bump(1);
	return 0;
}
