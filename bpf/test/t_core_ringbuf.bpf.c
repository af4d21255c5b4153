/* Loader test object: CO-RE field access through vmlinux.h (task_struct), .data/.bss/.rodata
 * globals with initial values, and a ring buffer carrying one event per getppid call. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
__u64 data_magic = 0xb0f0b0f0cafeULL; /* .data: initial value must survive loading */
__u64 bss_hits;                       /* .bss: starts at zero */
__u32 seen_tgid;                      /* .bss: tgid read through CO-RE */

struct event {
	__u32 tgid;
	__u32 pid;
	__u64 seq;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int core_getppid(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tgid = BPF_CORE_READ(task, tgid);
	if (tgid != target_tgid)
		return 0;
	seen_tgid = tgid;
	__u64 seq = __sync_fetch_and_add(&bss_hits, 1);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = tgid;
	e->pid = BPF_CORE_READ(task, pid);
	e->seq = seq + data_magic - data_magic;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
