/* Test object: a BTF-typed raw tracepoint (tp_btf) on sys_enter counting one process's getppid
 * calls, and per program version (for swap tests). */
#include "../common.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u32 version = 1;
/* __NR_getppid of the host's architecture, set by the manifest */
const volatile __s64 nr_getppid = 110;

/* [0] getppid calls, [1 + version % 2] calls seen by that version */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} btf_counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&btf_counts, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(count_enter, struct pt_regs *regs, long id)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid || id != nr_getppid)
		return 0;
	bump(0);
	bump(1 + version % 2);
	return 0;
}
