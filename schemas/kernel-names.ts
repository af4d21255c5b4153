// Kernel ABI numbers bpfops uses (enum bpf_prog_type, bpf_attach_type, bpf_map_type,
// bpf_link_type, XDP flags), with names for printing; values are the kernel's and never change.

export const ProgType = {
  socket_filter: 1, kprobe: 2, sched_cls: 3, sched_act: 4, tracepoint: 5, xdp: 6,
  perf_event: 7, cgroup_skb: 8, cgroup_sock: 9, sock_ops: 13, cgroup_device: 15, cgroup_sock_addr: 18,
  raw_tracepoint: 17, cgroup_sysctl: 23, cgroup_sockopt: 25, tracing: 26, lsm: 29,
  sk_skb: 14, sk_msg: 16, flow_dissector: 22, sk_lookup: 30, netfilter: 32,
} as const;
export type ProgTypeName = keyof typeof ProgType;

export const AttachType = {
  cgroup_inet_ingress: 0, cgroup_inet_egress: 1, cgroup_inet_sock_create: 2, cgroup_sock_ops: 3,
  cgroup_device: 6, cgroup_inet4_bind: 8, cgroup_inet6_bind: 9, cgroup_inet4_connect: 10, cgroup_inet6_connect: 11,
  cgroup_inet4_post_bind: 12, cgroup_inet6_post_bind: 13, cgroup_udp4_sendmsg: 14, cgroup_udp6_sendmsg: 15,
  cgroup_sysctl: 18, cgroup_udp4_recvmsg: 19, cgroup_udp6_recvmsg: 20, cgroup_getsockopt: 21, cgroup_setsockopt: 22,
  cgroup_inet4_getpeername: 29, cgroup_inet6_getpeername: 30, cgroup_inet4_getsockname: 31, cgroup_inet6_getsockname: 32,
  cgroup_inet_sock_release: 34, trace_raw_tp: 23, trace_fentry: 24,
  trace_fexit: 25, lsm_mac: 27, xdp: 37, perf_event: 41, tcx_ingress: 46, tcx_egress: 47,
  sk_skb_stream_parser: 4, sk_skb_stream_verdict: 5, sk_msg_verdict: 7, flow_dissector: 17, sk_lookup: 36, sk_skb_verdict: 38, netfilter: 45,
} as const;
export type AttachTypeName = keyof typeof AttachType;

export const MapType = {
  hash: 1, array: 2, prog_array: 3, perf_event_array: 4, percpu_hash: 5, percpu_array: 6,
  lru_hash: 9, lru_percpu_hash: 10, lpm_trie: 11, array_of_maps: 12, hash_of_maps: 13,
  devmap: 14, sockmap: 15, cpumap: 16, xskmap: 17, sockhash: 18, queue: 22, stack: 23,
  devmap_hash: 25, ringbuf: 27, bloom_filter: 30,
} as const;
export type MapTypeName = keyof typeof MapType;

export const LinkType = {
  raw_tracepoint: 1, tracing: 2, cgroup: 3, iter: 4, netns: 5, xdp: 6, perf_event: 7,
  kprobe_multi: 8, struct_ops: 9, netfilter: 10, tcx: 11, uprobe_multi: 12, netkit: 13, sockmap: 14,
} as const;
export type LinkTypeName = keyof typeof LinkType;

export const XdpFlags = { updateIfNoExist: 1, skbMode: 2, drvMode: 4, hwMode: 8 } as const;

export const MapUpdateFlags = { any: 0, noExist: 1, exist: 2 } as const;

const PERCPU_MAP_TYPES = new Set<number>([MapType.percpu_hash, MapType.percpu_array, MapType.lru_percpu_hash, 21 /* percpu_cgroup_storage */]);

export function isPerCpuMapType(type: number): boolean {
  return PERCPU_MAP_TYPES.has(type);
}

function nameOf(table: Record<string, number>, value: number): string {
  for (const [k, v] of Object.entries(table)) if (v === value) return k;
  return `type_${value}`;
}

export const progTypeName = (t: number): string => nameOf(ProgType, t);
export const mapTypeName = (t: number): string => nameOf(MapType, t);
export const linkTypeName = (t: number): string => nameOf(LinkType, t);
export const attachTypeName = (t: number): string => nameOf(AttachType, t);
