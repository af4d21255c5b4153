/* A loader test object: an fentry program. This kernel refuses BPF trampolines (EPERM at load),
 * which bpfops must report as NotSupported, never as a verifier rejection. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/do_nanosleep")
int on_nanosleep(void *ctx)
{
	return 0;
}
