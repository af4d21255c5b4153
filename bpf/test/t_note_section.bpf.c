/* Loader test object: an XDP program that passes everything, in an object that carries a data
 * section libbpf does not know (a build note), which libbpf reports at info level and skips. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

__attribute__((used, section(".bpfops.note"))) const char build_note[] = "built for the libbpf log test";

/* Created at load, which libbpf reports at debug level. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} note_seen SEC(".maps");

SEC("xdp")
int xdp_note(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&note_seen, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}
