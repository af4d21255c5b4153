/* Test object: an sk_lookup program counting UDP lookups for port 5000 per version; from version
 * 2 on it refuses UDP to port 6666 (SK_DROP), which no socket then receives. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("sk_lookup")
int lookup_udp(struct bpf_sk_lookup *ctx)
{
	if (ctx->protocol != IPPROTO_UDP)
		return SK_PASS;
	if (ctx->local_port == 5000)
		count_version(1);
	if (version >= 2 && ctx->local_port == 6666)
		return SK_DROP;
	return SK_PASS;
}
