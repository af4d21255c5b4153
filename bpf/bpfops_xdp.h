/* For XDP programs that share an interface with others through bpfops's dispatcher (Attachments
 * with `order` on one XDP hook): return bpfops_xdp_pass(ctx) where the program would return
 * XDP_PASS. It runs the next program on the hook, or passes the packet when there is none; a
 * program attached alone just passes. bpfops sets bpfops_xdp_slot and binds bpfops_xdp_next. */
#pragma once

#define BPFOPS_XDP_SLOTS 8

/* this program's slot on its shared hook (set by bpfops); -1: alone on its hook */
const volatile __s32 bpfops_xdp_slot = -1;

/* the shared hook's programs by slot (bound by bpfops to the hook's prog-array) */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, BPFOPS_XDP_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} bpfops_xdp_next SEC(".maps");

static __always_inline int bpfops_xdp_pass(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &bpfops_xdp_next, (__u32)(bpfops_xdp_slot + 1));
	return XDP_PASS;
}
