/* Test object: a perf_event program counting the samples of its event per version. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("perf_event")
int sample(void *ctx)
{
	count_version(1);
	return 0;
}
