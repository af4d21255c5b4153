/* Test object: an sk_msg verdict program on a sockmap, counting the bytes each version passes. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("sk_msg")
int count_msg(struct sk_msg_md *msg)
{
	count_version(msg->size);
	return SK_PASS;
}
