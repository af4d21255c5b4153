// Types of the bpfops native addon (native/src/*.cc). Only fds, ids, numbers, strings and
// Buffers cross this boundary; reconciler/kernel/ wraps them in owned handles and typed errors.

export interface NativeErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  program?: string;
  verifierLog?: string;
  libbpfLog?: string;
  updated?: number;
}

export type LibbpfLevel = "warn" | "info" | "debug";
/** One message libbpf printed, at its own level. */
export interface LibbpfMessage {
  level: LibbpfLevel;
  message: string;
}

export interface NativeObjectProgram {
  name: string;
  section: string;
  type: number;
  expectedAttachType: number;
  autoload: boolean;
  instructions: number;
}

export interface NativeObjectMap {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
  pinPath: string | null;
}

export interface NativeGlobal {
  name: string;
  offset: number;
  size: number;
}

export declare class BpfObject {
  constructor(source: string | Buffer, opts: { pinRoot: string; name?: string });
  programs(): NativeObjectProgram[];
  maps(): NativeObjectMap[];
  globals(section?: string): NativeGlobal[];
  setGlobal(section: string, variable: string, value: Buffer): void;
  setProgramType(program: string, type: number, expectedAttachType?: number): void;
  setAutoload(program: string, autoload: boolean): void;
  setMaxEntries(map: string, maxEntries: number): void;
  reuseMap(map: string, fd: number): void;
  setMapPinPath(map: string, path: string | null): void;
  load(opts?: { logLevel?: number; logSize?: number }): Promise<Record<string, string>>;
  programFd(program: string): number;
  mapFd(map: string): number;
  close(): void;
  /** What libbpf printed while opening and loading, taken: a second call returns only what came after. */
  libbpfMessages(): LibbpfMessage[];
}

export interface NativeProgInfo {
  id: number;
  type: number;
  name: string;
  tag: string;
  mapIds: number[];
  btfId: number;
  loadTimeNs: number;
  createdByUid: number;
  xlatedLen: number;
  jitedLen: number;
  verifiedInstructions: number;
  runCount: number;
  runTimeNs: number;
}

export interface NativeMapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

export interface NativeLinkInfo {
  id: number;
  type: number;
  progId: number;
  ifindex?: number;
  attachType?: number;
  cgroupId?: number;
  tracepoint?: string;
  netnsIno?: number;
  targetObjId?: number;
  targetBtfId?: number;
}

export interface NativeXdpQuery {
  ifindex: number;
  progId: number;
  mode: "none" | "driver" | "generic" | "offload" | "multi" | "unknown";
  driverProgId: number;
  genericProgId: number;
  offloadProgId: number;
}

export interface NativeProgQuery {
  ifindex?: number;
  progIds: number[];
  /** per program, the link holding it; 0 when attached without a link, or (cgroup hooks) not reported */
  linkIds: number[];
  revision: number;
}

/** A network namespace: a name under /var/run/netns, a path, an fd, or null for the caller's. */
export type NetnsRef = string | number | null | undefined;

export interface NativeAddon {
  BpfObject: typeof BpfObject;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  fdKind(fd: number): "prog" | "map" | "link" | "btf" | "other";
  isBpffs(path: string): boolean;
  mapLookup(fd: number, key: Buffer, valueSize: number, flags?: number): Buffer | null;
  /** with netns, from inside that network namespace (a devmap's ifindex is resolved there) */
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number, netns?: NetnsRef): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null;
  mapLookupBatch(fd: number, keySize: number, valueSize: number, maxEntries: number): { keys: Buffer; values: Buffer; count: number };
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags?: number): number;
  /** BPF_MAP_DELETE_BATCH; a missing key throws ENOENT with `deleted` (how many went before it) */
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, flags?: number, name?: string, innerMapFd?: number): number;
  mapCreateStringHash(keySize: number, valueSize: number, maxEntries: number, name: string): number;
  /** BPF_MAP_CREATE with the map's key and value types (raw BTF, loaded for it) */
  mapCreateWithBtf(type: number, keySize: number, valueSize: number, maxEntries: number, flags: number, name: string, btf: Buffer, keyTypeId: number, valueTypeId: number): number;
  /** the raw BTF the kernel holds under btfId */
  btfRaw(btfId: number): Buffer;
  /** a perf buffer on a perf event array: a handle for perfBufferPoll/perfBufferClose */
  perfBufferOpen(mapFd: number, pagesPerCpu: number): number;
  /** the records that arrived within timeoutMs, and how many the kernel lost */
  perfBufferPoll(handle: number, timeoutMs: number): { records: Buffer[]; lost: number };
  perfBufferClose(handle: number): void;
  progArraySet(mapFd: number, slot: number, progFd: number): void;
  ringbufDrain(mapFd: number): Buffer[];
  possibleCpus(): number;
  attachXdp(progFd: number, ifname: string, netns: NetnsRef, flags?: number): { fd: number; ifindex: number };
  tcAttach(progFd: number, ifname: string, netns: NetnsRef, direction: "ingress" | "egress", handle: number, priority: number, replace: boolean): number;
  tcDetach(ifname: string, netns: NetnsRef, direction: "ingress" | "egress", handle: number, priority: number): void;
  tcQuery(ifname: string, netns: NetnsRef, direction: "ingress" | "egress", handle: number, priority: number): number;
  xdpAttachNetlink(progFd: number, ifname: string, netns: NetnsRef, flags: number, expectedOldFd?: number): number;
  xdpDetachNetlink(ifname: string, netns: NetnsRef, flags: number, expectedFd: number): void;
  cgroupProgAttach(progFd: number, cgroupPath: string, attachType: number, replaceFd?: number): void;
  cgroupProgDetach(progFd: number, cgroupPath: string, attachType: number): void;
  attachNetfilter(progFd: number, netns: NetnsRef, pf: number, hooknum: number, priority: number, defrag?: boolean): number;
  attachNetns(progFd: number, netns: NetnsRef, attachType: number): number;
  attachMap(progFd: number, mapFd: number, attachType: number): number;
  attachPerfEvent(progFd: number, type: number, config: number, frequency: number, cpu: number): number;
  attachUprobe(progFd: number, path: string, offset: number, retprobe: boolean, pid?: number): number;
  attachTcx(progFd: number, ifname: string, netns: NetnsRef, direction: "ingress" | "egress", order?: { before?: number; after?: number; link?: boolean }): { fd: number; ifindex: number };
  attachCgroup(progFd: number, cgroupPath: string, attachType: number): number;
  attachTracepoint(progFd: number, category: string, name: string, tracefsRoot?: string): number;
  attachRawTracepoint(progFd: number, name: string): number;
  attachTracing(progFd: number, attachType: number): number;
  linkUpdate(linkFd: number, progFd: number, expectedOldProgFd?: number): void;
  linkDetach(linkFd: number): void;
  rcuGracePeriod(): void;
  libbpfVersion(): string;
  /** The most verbose libbpf level captured from now on (default "info"). */
  setLibbpfLogLevel(level: LibbpfLevel): void;
  /** adds u64 deltas (per entry: lanes x 8 bytes, per CPU for per-CPU maps) to values, atomically, in the kernel */
  mapAddValues(mapFd: number, keys: Buffer, deltas: Buffer, count: number): void;
  listPrograms(): NativeProgInfo[];
  listMaps(): NativeMapInfo[];
  listLinks(): NativeLinkInfo[];
  infoOfFd(kind: "prog", fd: number): NativeProgInfo;
  infoOfFd(kind: "map", fd: number): NativeMapInfo;
  infoOfFd(kind: "link", fd: number): NativeLinkInfo;
  fdById(kind: "prog" | "map" | "link", id: number): number;
  queryXdp(ifname: string, netns: NetnsRef): NativeXdpQuery;
  queryNetns(netns: NetnsRef, attachType: number): NativeProgQuery;
  queryMap(mapFd: number, attachType: number): NativeProgQuery;
  queryTcx(ifname: string, netns: NetnsRef, direction: "ingress" | "egress"): NativeProgQuery;
  queryCgroup(cgroupPath: string, attachType: number): NativeProgQuery;
  loadRawProgram(type: number, insns: Buffer, opts?: { expectedAttachType?: number; attachBtfId?: number; license?: string; name?: string }): number;
  testRun(progFd: number, data: Buffer, repeat?: number): { retval: number; durationNs: number; data: Buffer };
  enableStats(): number;
  vmlinuxBtfId(name: string, kind?: "func" | "struct"): number;
  privateNetns(): number;
  ifindex(ifname: string, netns?: NetnsRef): number;
  interfaces(netns?: NetnsRef): string[];
}
