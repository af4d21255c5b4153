// Zod schemas of the manifest kinds (Program, Map, Attachment, Chain, Rollout) and their types.
// Pure data: no I/O. Unknown fields are errors, so a typo never passes silently.
import { z } from "zod";

// zod compiles a parser for each object schema with `new Function` the first time it parses; a
// command parses a handful of manifests once, where compiling costs more than it saves.
z.config({ jitless: true });

export const API_VERSION = "bpfops.dev/v1alpha1";

// DNS-label-like names: they become bpffs pin names and appear in logs.
const Name = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "lowercase letters, digits and '-', starting and ending with a letter or digit");

// Kernel object names (ELF programs and maps, globals, interfaces) are C-ish identifiers.
const Identifier = z.string().min(1).max(64).regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, "a C identifier");
const LabelValue = z.string().max(63).regex(/^[A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-'");
const Labels = z.record(z.string().min(1).max(63).regex(/^[A-Za-z0-9._/-]+$/, "a label key"), LabelValue);

const Metadata = z.strictObject({
  name: Name,
  labels: Labels.optional(),
  annotations: z.record(z.string(), z.string().max(4096)).optional(),
});

export const HostSelector = z.strictObject({ matchLabels: Labels });

// A path relative to the manifest's directory; whether it stays inside the repository (after '..'
// and symlinks) is checked against the real tree.
const RepoPath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith("/"), "a path relative to the manifest's directory, not an absolute path")
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), "no control characters");

export const PROGRAM_TYPES = [
  "xdp", "sched_cls", "cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "sock_ops", "cgroup_device", "cgroup_sysctl", "cgroup_sockopt", "tracepoint", "raw_tracepoint", "tracing", "kprobe", "lsm",
  "socket_filter", "netfilter", "sk_lookup", "flow_dissector", "sk_msg", "sk_skb", "perf_event",
] as const;
export const ATTACH_TYPES = [
  "xdp", "tcx_ingress", "tcx_egress", "cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
  "cgroup_inet4_bind", "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg",
  "cgroup_device", "cgroup_inet4_post_bind", "cgroup_inet6_post_bind", "cgroup_sysctl", "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg",
  "cgroup_getsockopt", "cgroup_setsockopt", "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_getsockname",
  "cgroup_inet6_getsockname", "cgroup_inet_sock_release",
  "trace_fentry", "trace_fexit", "trace_raw_tp",
  "netfilter", "sk_lookup", "flow_dissector", "sk_msg_verdict", "sk_skb_stream_verdict", "sk_skb_stream_parser", "sk_skb_verdict",
] as const;

// Bytes written as "hex:..."; spaces may group the digits for reading.
const HexBytes = z.string().regex(/^hex:(\s*[0-9a-fA-F]{2})+\s*$/, "hex:<bytes> (pairs of hex digits, spaces allowed)");

// A global's value: an integer, a boolean, "hex:" bytes, or (by the variable's BTF type) a string,
// a list or a structure; sizes and types are checked against the object's BTF. A string that
// starts "hex:" is bytes and must be well-formed ones, not text.
const GlobalValue = z.union([z.int().min(-(2 ** 53) + 1).max(2 ** 53 - 1), z.boolean(), HexBytes, z.string().max(4096).refine((s) => !s.startsWith("hex:"), "hex:<bytes> (pairs of hex digits, spaces allowed)"), z.array(z.unknown()).max(65536), z.record(z.string(), z.unknown())]);

const ObjectMapOverride = z
  .strictObject({
    /** use the pinned Map manifest of this name instead of the object's own map */
    bind: Name.optional(),
    /** size the object's own map (objects often declare 0 and leave it to the loader) */
    maxEntries: z.int().min(1).max(1 << 28).optional(),
    /** pin the object's own map under the bpffs root so it survives upgrades */
    pin: z.boolean().optional(),
    /**
     * a pinned object map a new version declares differently (resized, retyped): keep (refuse,
     * the default), recreate (start empty), migrate (copy what fits), as for Map manifests
     */
    onChange: z.enum(["keep", "recreate", "migrate"]).optional(),
    /** with migrate: latest, or sum for u64 counters (what is counted during the switch is added) */
    merge: z.enum(["latest", "sum"]).optional(),
  })
  .refine((m) => !(m.bind && (m.maxEntries !== undefined || m.pin !== undefined || m.onChange !== undefined || m.merge !== undefined)), "bind cannot be combined with maxEntries, pin, onChange or merge: the bound Map's own say");

/**
 * Flags a manifest may give clang: warnings, optimization, debug info, the language standard, the
 * BPF CPU version and -f switches (not plugins). Paths, outputs, includes and defines are bpfops's
 * (build.includes, build.defines), so nothing outside the repository reaches the compiler.
 */
export const ALLOWED_CFLAG = /^(-W(?![alp],)[A-Za-z0-9=_+-]+|-w|-O[0-3s]|-g[0-3]?|-std=[a-z0-9+]+|-mcpu=(v[1-4]|probe|generic)|-m(no-)?alu32|-f(?!plugin)(no-)?[a-z0-9-]+)$/;

const BuildSpec = z.strictObject({
  /** directories of the repository (relative to the manifest) searched for #include "..." */
  includes: z.array(RepoPath).max(16).default([]),
  /** -DNAME=VALUE for each */
  defines: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a C identifier"), z.union([z.string().max(256).regex(/^[^\n\r]*$/, "one line"), z.number(), z.boolean()])).default({}),
  cflags: z.array(z.string().max(64).regex(ALLOWED_CFLAG, "not a flag a manifest may give: warnings (-W...), -O0..-O3/-Os, -g, -std=..., -mcpu=v1..v4, -malu32, -f... (no plugins); includes and defines go in build.includes and build.defines")).max(32).default([]),
});

export const ProgramSpec = z.strictObject({
  /** .o used as is, or .bpf.c compiled by clang (cached by content digest) */
  object: RepoPath.refine((p) => p.endsWith(".o") || p.endsWith(".bpf.c"), "an eBPF object (.o) or source (.bpf.c)"),
  /** how a .bpf.c source is compiled */
  build: BuildSpec.optional(),
  /** the program's function name in the ELF object */
  program: Identifier.optional(),
  /**
   * a collection: several programs of the object loaded as one unit (as a libbpf skeleton loads
   * them), sharing the object's maps and globals, named <Program>/<program> by Attachments and
   * Chains, and swapped together
   */
  programs: z
    .array(Identifier)
    .min(1)
    .max(64)
    .refine((l) => new Set(l).size === l.length, "each program once")
    .optional(),
  type: z.enum(PROGRAM_TYPES).optional(),
  attachType: z.enum(ATTACH_TYPES).optional(),
  globals: z.record(Identifier, GlobalValue).optional(),
  /** the object's maps by name; ".data" and ".bss" (its data sections) may only be pinned */
  maps: z.record(z.union([Identifier, z.enum([".data", ".bss", ".rodata"])]), ObjectMapOverride).optional(),
  hostSelector: HostSelector.optional(),
}).refine((s) => (s.program === undefined) !== (s.programs === undefined), { message: "a Program names one program (program) or a collection (programs), not both", path: ["program"] });

/** A Program manifest by name, or one program of a collection: <Program>/<program>. */
const ProgramRef = z
  .string()
  .max(128)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\/[A-Za-z_][A-Za-z0-9_]*)?$/, "a Program's name, or <Program>/<program> for a program of a collection");

export const MAP_TYPES = [
  "hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "prog_array", "ringbuf", "perf_event_array",
  "queue", "stack", "bloom_filter", "hash_of_maps", "array_of_maps", "devmap", "devmap_hash", "cpumap", "xskmap", "sockmap", "sockhash",
] as const;

// Map flags: a number, or names (reconciler/core/map-types.ts checks them per map type).
const MapFlagsField = z.union([z.int().min(0).max(2 ** 32 - 1), z.array(z.string().max(32)).max(16)]);

// A map-in-map's inner map: the definition every map put in it must have.
const InnerMap = z.strictObject({ type: z.string().max(32), keySize: z.int().min(0).max(512), valueSize: z.int().min(0).max(65536), maxEntries: z.int().min(1).max(1 << 28), flags: MapFlagsField.optional() });

// An entry's key or value: checked against the map's type when the type is known (core/validate.ts).
const EntryValue = z.union([HexBytes, z.int().min(0).max(2 ** 53 - 1), z.string().max(4096), z.boolean(), z.number(), z.array(z.unknown()).max(65536), z.record(z.string(), z.unknown())]);
// A declared type: a name or a list of { field: type } (core/type-desc.ts parses it).
const DeclaredType = z.union([z.string().max(64), z.array(z.record(z.string(), z.unknown())).max(256)]);

// A metric read from a map: one sample per entry (or for one key), the value (or a field of it)
// summed over CPUs, labels from fields of the key ("" for the whole key).
const MapMetric = z.strictObject({
  name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "a Prometheus metric name").max(128),
  help: z.string().max(200).optional(),
  type: z.enum(["counter", "gauge"]).default("counter"),
  /** one entry's key; all entries when absent */
  key: EntryValue.optional(),
  /** a field of the value, dotted ("packets", "stats.bytes"); the whole value when absent */
  value: z.string().max(128).optional(),
  /** label -> field of the key, dotted ("" for the whole key) */
  labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, "a Prometheus label name"), z.string().max(128)).optional(),
});

export const MapSpec = z.strictObject({
  type: z.enum(MAP_TYPES),
  keySize: z.int().min(0).max(512),
  valueSize: z.int().min(0).max(65536),
  maxEntries: z.int().min(1).max(1 << 28),
  flags: MapFlagsField.optional(),
  /** hash_of_maps, array_of_maps: the definition of the maps it holds */
  innerMap: InnerMap.optional(),
  /** ringbuf, perf_event_array, queue, stack: the struct (by name, in the BTF of a program bound to it) its records are, for `bpfops events` */
  recordType: z.string().regex(/^[A-Za-z_]\w*$/, "a C struct name").max(128).optional(),
  /** Prometheus metrics the agent reads from this map's entries at each scrape */
  metrics: z.array(MapMetric).max(16).optional(),
  /** what to do when the definition changes: keep (refuse), recreate (start empty), migrate (copy what fits) */
  onChange: z.enum(["keep", "recreate", "migrate"]).default("keep"),
  /**
   * how migrate carries over what the datapath writes to the old map between the copy and the
   * moment the hooks have moved: latest (the old map's value wins) or sum (values are u64
   * counters: what was counted meanwhile is added)
   */
  merge: z.enum(["latest", "sum"]).default("latest"),
  /**
   * entries: "hex:..." bytes or an integer (little-endian at the size), or, when the map's types
   * are known (keyType/valueType, or the BTF of the object map it is bound to), a structure of
   * that type: { saddr: 10.0.0.0/8 }, { port: 53, proto: udp }, enums by name, nested fields
   */
  entries: z.array(z.strictObject({ key: EntryValue.optional(), value: EntryValue })).max(65536).optional(),
  /** the key's layout when the map has no BTF: a type name ("u32", "__be16", "ipv4", "u8[16]") or a list of fields */
  keyType: DeclaredType.optional(),
  /** the value's layout, as keyType */
  valueType: DeclaredType.optional(),
  /** entries kept in a JSON Lines file of the repository (relative to the manifest), for large sets */
  entriesFile: RepoPath.optional(),
  /** write initial entries over values the datapath or an operator wrote (seed only) */
  overwriteEntries: z.boolean().default(false),
  /**
   * who owns the map's contents: seed (git's entries are written when missing; anything else is
   * left alone) or exact (the map holds git's entries and nothing else: entries not in git are
   * deleted, changed values rewritten)
   */
  entryPolicy: z.enum(["seed", "exact"]).default("seed"),
  /**
   * what the datapath writes to this map, which exact must not fight over: none (a policy or
   * config map: git owns keys and values), values (git owns the keys, programs the values, such
   * as counters per key: exact adds and removes keys, never rewrites values), entries (programs
   * insert keys of their own: exact is refused). Required with entryPolicy: exact.
   */
  datapathWrites: z.enum(["none", "values", "entries"]).optional(),
  /** false: when this manifest leaves the repository, the map stays pinned (and its data with it) */
  prune: z.boolean().default(true),
  hostSelector: HostSelector.optional(),
});

const Interfaces = z.array(z.string().min(1).max(15).regex(/^[A-Za-z0-9_.:*?-]+$/, "an interface name or a glob (*, ?)")).min(1).max(256);
const Netns = z.string().min(1).max(255).regex(/^[A-Za-z0-9_.-]+$/, "a network namespace name under /var/run/netns");

export const XdpHook = z.strictObject({ type: z.literal("xdp"), interfaces: Interfaces, netns: Netns.optional(), mode: z.enum(["auto", "generic", "driver"]).default("auto") });
export const TcxHook = z.strictObject({ type: z.literal("tcx"), interfaces: Interfaces, netns: Netns.optional(), direction: z.enum(["ingress", "egress"]) });
export const CgroupHook = z.strictObject({
  type: z.literal("cgroup"),
  path: z.string().min(1).max(4096).refine((p) => p.startsWith("/") && !p.split("/").includes(".."), "an absolute cgroup v2 path without '..'"),
  attachType: z.enum(ATTACH_TYPES).refine((a) => a.startsWith("cgroup_"), "a cgroup attach type"),
});
export const TracepointHook = z.strictObject({ type: z.literal("tracepoint"), name: z.string().regex(/^[a-z0-9_]+\/[a-z0-9_]+$/, "category/name") });
export const RawTracepointHook = z.strictObject({ type: z.literal("raw_tracepoint"), name: Identifier });
/** a BTF-typed raw tracepoint (SEC("tp_btf/<name>")): the program's arguments are typed by the kernel's BTF */
export const TpBtfHook = z.strictObject({ type: z.literal("tp_btf"), name: Identifier });
export const FentryHook = z.strictObject({ type: z.enum(["fentry", "fexit"]), function: Identifier });
export const KprobeHook = z.strictObject({ type: z.enum(["kprobe", "kretprobe"]), function: Identifier });
export const LsmHook = z.strictObject({ type: z.literal("lsm"), name: Identifier });
/** a netfilter hook of a family in a network namespace, at a priority (lower runs first) */
export const NetfilterHook = z.strictObject({
  type: z.literal("netfilter"),
  netns: Netns.optional(),
  family: z.enum(["ipv4", "ipv6"]),
  hook: z.enum(["prerouting", "input", "forward", "output", "postrouting"]),
  // INT_MIN and INT_MAX are netfilter's own first and last places, which the kernel refuses; a
  // swap uses priority + 1 beside it (one BPF program per priority).
  priority: z.int().min(-(2 ** 31) + 1).max(2 ** 31 - 3),
  /** reassemble IP fragments before the program runs (BPF_F_NETFILTER_IP_DEFRAG) */
  defrag: z.boolean().default(false),
});
/** a network namespace's socket lookup (sk_lookup, several programs) or flow dissector (one program) */
export const NetnsHook = z.strictObject({ type: z.enum(["sk_lookup", "flow_dissector"]), netns: Netns.optional() });
/** a function of a binary on the host, by symbol (plus offset) or by file offset; all processes or one pid */
export const UprobeHook = z
  .strictObject({
    type: z.enum(["uprobe", "uretprobe"]),
    binary: z.string().min(2).max(4096).refine((p) => p.startsWith("/") && !p.split("/").includes(".."), "an absolute path without '..'"),
    symbol: z.string().min(1).max(256).regex(/^[A-Za-z_][A-Za-z0-9_.@$]*$/, "a symbol name").optional(),
    offset: z.int().min(0).max(2 ** 48).optional(),
    pid: z.int().min(1).max(2 ** 22).optional(),
  })
  .refine((h) => h.symbol !== undefined || h.offset !== undefined, { message: "a uprobe needs a symbol, an offset, or both (an offset into the symbol)" });
/** an sk_msg or sk_skb program on a sockmap or sockhash Map manifest */
export const SockmapHook = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("sk_msg"), map: Name }),
  z.strictObject({ type: z.literal("sk_skb"), map: Name, attachType: z.enum(["stream_verdict", "stream_parser", "verdict"]).default("stream_verdict") }),
]);

/** a sampling perf event on each CPU (or those listed), at a frequency */
export const PerfEventHook = z.strictObject({
  type: z.literal("perf_event"),
  event: z.enum(["cpu-clock", "task-clock", "cpu-cycles", "instructions"]),
  /** samples per second on each CPU */
  frequency: z.int().min(1).max(100_000).default(99),
  /** the CPUs to sample (default: every online CPU) */
  cpus: z.array(z.int().min(0).max(8191)).min(1).max(8192).optional(),
});

export const Hook = z.discriminatedUnion("type", [XdpHook, TcxHook, CgroupHook, TracepointHook, RawTracepointHook, TpBtfHook, FentryHook, KprobeHook, LsmHook, NetfilterHook, NetnsHook, UprobeHook, ...SockmapHook.options, PerfEventHook]);
export type Hook = z.infer<typeof Hook>;

/**
 * Where a program goes among the others on its hook (tcx, which runs several in order): before
 * or after another Attachment's link on the same hook.
 */
const HookOrder = z
  .strictObject({ before: Name.optional(), after: Name.optional() })
  .refine((o) => (o.before === undefined) !== (o.after === undefined), { message: "order names one Attachment, in before or in after" });

export const AttachmentSpec = z.strictObject({
  program: ProgramRef,
  hook: Hook,
  order: HookOrder.optional(),
  /** replace, atomically, a program bpfops does not own on this hook */
  takeover: z.boolean().default(false),
  hostSelector: HostSelector.optional(),
});

export const ChainSpec = z.strictObject({
  /** the dispatcher: the program on the hook that tail-calls slot 0 */
  root: ProgramRef,
  /** the prog_array Map the stages go in */
  progArray: Name,
  /** programs for slots 0, 1, ...: swapping one is one slot update */
  stages: z.array(ProgramRef).min(1).max(32),
  hook: z.discriminatedUnion("type", [XdpHook, TcxHook]),
  takeover: z.boolean().default(false),
  hostSelector: HostSelector.optional(),
});

const Duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, "a duration: 500ms, 30s, 5m, 1h");

/** A metric as a host reads it: a name a Map manifest declares (metrics:) and label values. */
const MetricRef = z.strictObject({ metric: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "a Prometheus metric name"), labels: Labels.optional() });

/**
 * A health gate, checked on every host of a ring at the end of its bake time: the increase of a
 * declared metric since the host was Ready on the new revision (or its share of another's
 * increase, with `of`), or a program's mean run time per invocation (the agent's --bpf-stats).
 */
const Gate = z
  .strictObject({
    name: Name,
    metric: MetricRef.shape.metric.optional(),
    labels: Labels.optional(),
    of: MetricRef.optional(),
    program: Name.optional(),
    max: z.number().min(0).optional(),
    min: z.number().min(0).optional(),
  })
  .refine((g) => !!g.metric !== !!g.program, { message: "a gate reads either a metric or a program's run time" })
  .refine((g) => g.max !== undefined || g.min !== undefined, { message: "a gate needs max or min" });

export const RolloutSpec = z.strictObject({
  /** in order; each ring's hosts: those its hostSelector picks, a number of hosts, or a share of the fleet (cumulative) */
  rings: z
    .array(
      z
        .strictObject({ name: Name, hostSelector: HostSelector.optional(), hosts: z.int().min(1).optional(), percent: z.int().min(1).max(100).optional(), bake: Duration.optional() })
        .refine((r) => [r.hostSelector, r.hosts, r.percent].filter((x) => x !== undefined).length <= 1, { message: "a ring is picked by one of hostSelector, hosts or percent" }),
    )
    .min(1)
    .max(16),
  /** how long a ring runs the new revision, Ready, before its gates are read and the next ring starts */
  bake: Duration.default("60s"),
  /** a host not Ready on the new revision this long after it was targeted fails the ring */
  readyTimeout: Duration.default("120s"),
  /** hosts per ring that may fail (Stalled, not Ready in time, a gate) before the rollout halts */
  failureBudget: z.int().min(0).default(0),
  gates: z.array(Gate).max(16).default([]),
  /** the emergency path: no bake time, ring after ring as fast as the agents apply */
  emergency: z.boolean().default(false),
});

function kind<K extends string, S extends z.ZodType>(k: K, spec: S) {
  return z.strictObject({ apiVersion: z.literal(API_VERSION), kind: z.literal(k), metadata: Metadata, spec });
}

export const ProgramManifest = kind("Program", ProgramSpec);
export const MapManifest = kind("Map", MapSpec);
export const AttachmentManifest = kind("Attachment", AttachmentSpec);
export const ChainManifest = kind("Chain", ChainSpec);
export const RolloutManifest = kind("Rollout", RolloutSpec);

export const KINDS = { Program: ProgramManifest, Map: MapManifest, Attachment: AttachmentManifest, Chain: ChainManifest, Rollout: RolloutManifest } as const;
export type KindName = keyof typeof KINDS;

export type ProgramManifest = z.infer<typeof ProgramManifest>;
export type MapManifest = z.infer<typeof MapManifest>;
export type AttachmentManifest = z.infer<typeof AttachmentManifest>;
export type ChainManifest = z.infer<typeof ChainManifest>;
export type RolloutManifest = z.infer<typeof RolloutManifest>;
export type Manifest = ProgramManifest | MapManifest | AttachmentManifest | ChainManifest | RolloutManifest;
