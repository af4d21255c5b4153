/* Test object: a uprobe (or uretprobe) program counting calls per version. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe")
int count_calls(void *ctx)
{
	count_version(1);
	return 0;
}
