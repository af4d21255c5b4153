/* Test object: an sk_skb stream verdict on a sockmap, counting the bytes each version lets
 * through to the receiving socket. */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("sk_skb/stream_verdict")
int count_skb(struct __sk_buff *skb)
{
	count_version(skb->len);
	return SK_PASS;
}
