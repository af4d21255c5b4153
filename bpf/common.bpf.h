/* Definitions shared by the bpfops BPF programs: UAPI macros that vmlinux.h (types only)
 * does not carry, and the libbpf helper headers. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCX_NEXT -1
#define TCX_PASS 0
