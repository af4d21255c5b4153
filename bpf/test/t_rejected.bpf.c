/* Loader test object the verifier must reject: it reads packet bytes without checking them
 * against data_end. */
#include "../common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	return data[20] == 0x42 ? XDP_DROP : XDP_PASS;
}
