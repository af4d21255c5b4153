/* Security events: every exec (sched_process_exec) and every openat (sys_enter_openat) as a
 * record in one ring buffer that both programs share; `bpfops events` prints them decoded. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

enum sec_kind { SEC_EXEC = 1, SEC_OPEN = 2 };

struct sec_event {
	__u32 pid;
	__u32 uid;
	enum sec_kind kind;
	char comm[16];
	char path[64];
};

/* Keeps struct sec_event in the object's BTF (nothing else names it outside inlined code), so
 * that the Map manifest's recordType can name it. */
const struct sec_event *unused_sec_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Event counts by kind, so that a reader can tell records that were made from records it saw. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} event_counts SEC(".maps");

static __always_inline struct sec_event *start(enum sec_kind kind)
{
	__u32 k = kind;
	__u64 *n = bpf_map_lookup_elem(&event_counts, &k);
	if (n)
		*n += 1;
	struct sec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->kind = kind;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct sec_event *e = start(SEC_EXEC);
	if (!e)
		return 0;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + (ctx->__data_loc_filename & 0xffff));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int on_open(struct trace_event_raw_sys_enter *ctx)
{
	struct sec_event *e = start(SEC_OPEN);
	if (!e)
		return 0;
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[1]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
