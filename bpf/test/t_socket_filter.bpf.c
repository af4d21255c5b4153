/* Test object: a socket filter (load-only: an application attaches it to its own socket) that
 * counts what it sees per version and keeps datagrams whose payload starts "keep". */
#include "../common.bpf.h"
#include "t_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int keep_filter(struct __sk_buff *skb)
{
	char word[4];
	count_version(1);
	/* UDP socket filters see the datagram from the UDP header on */
	if (bpf_skb_load_bytes(skb, 8, word, 4))
		return 0;
	return word[0] == 'k' && word[1] == 'e' && word[2] == 'e' && word[3] == 'p' ? skb->len : 0;
}
