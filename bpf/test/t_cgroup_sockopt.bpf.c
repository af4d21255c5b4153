/* Test object: a cgroup setsockopt program counting SO_RCVBUF changes per version; from version
 * 2 on it refuses them (EPERM to the caller). */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

#define SOL_SOCKET 1
#define SO_RCVBUF 8

SEC("cgroup/setsockopt")
int rcvbuf_guard(struct bpf_sockopt *ctx)
{
	if (ctx->level != SOL_SOCKET || ctx->optname != SO_RCVBUF)
		return 1;
	count_version(1);
	return version >= 2 ? 0 : 1;
}
