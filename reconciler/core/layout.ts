// Where bpfops keeps what it owns under its bpffs root: the pin names encode ownership (the
// manifest kind and name) and provenance (a program's content digest), so the kernel itself is the
// inventory. Pure naming; no I/O. bpffs refuses '.' in names: hook keys escape it, and pins being
// replaced carry "~next", "~prev" or "~new".
import { createHash } from "node:crypto";
import type { Hook } from "../../schemas/manifest.ts";

export const DIGEST_CHARS = 16;

/** bpffs names are at most 255 bytes; hook keys longer than this are hashed (the long form is in provenance). */
export const MAX_PIN_NAME = 200;

/** Suffixes of pins being replaced: a crash can leave them, and the next run recovers them. */
export const PIN_SUFFIX = { next: "~next", prev: "~prev", new: "~new" } as const;

export const layout = {
  mapsDir: (root: string) => `${root}/maps`,
  map: (root: string, name: string) => `${root}/maps/${name}`,
  programsDir: (root: string) => `${root}/programs`,
  programDir: (root: string, name: string) => `${root}/programs/${name}`,
  /** one pin per loaded version: programs/<name>/<first 16 hex of the digest> */
  program: (root: string, name: string, digest: string) => `${root}/programs/${name}/${digest.slice(0, DIGEST_CHARS)}`,
  /**
   * a part of a collection's version, pinned beside its primary program's pin: another program
   * (<digest>@<program>) or a map of that version's own (<digest>#<map>: a prog-array its programs
   * fill, which must not be shared with the next version); a "~new" pin's parts end in "~new" too
   */
  programPart: (pin: string, kind: "program" | "map", name: string) => {
    const fresh = pin.endsWith(PIN_SUFFIX.new);
    return `${fresh ? pin.slice(0, -PIN_SUFFIX.new.length) : pin}${kind === "program" ? "@" : "#"}${name}${fresh ? PIN_SUFFIX.new : ""}`;
  },
  /** the object's own maps (pinned by name, or `pin: true`), shared by every version of the program */
  objectMapsDir: (root: string, program: string) => `${root}/objmaps/${program}`,
  linksDir: (root: string) => `${root}/links`,
  link: (root: string, attachment: string, hookKey: string) => `${root}/links/${attachment}/${hookKey}`,
  chainsDir: (root: string) => `${root}/chains`,
  chainLink: (root: string, chain: string, hookKey: string) => `${root}/chains/${chain}/${hookKey}`,
};

/**
 * Whether a name in programs/<name>/ is a part of a collection's version (layout.programPart):
 * of the version `digest` when given, of any version when not.
 */
export function isProgramPart(entry: string, digest?: string): boolean {
  return digest === undefined ? /[@#]/.test(entry) : entry.startsWith(`${digest}@`) || entry.startsWith(`${digest}#`);
}

/** One concrete hook: a Hook with its interface pattern resolved to one interface. */
export type ConcreteHook =
  | { type: "xdp"; netns: string | null; ifname: string; mode: "auto" | "generic" | "driver" }
  | { type: "tcx"; netns: string | null; ifname: string; direction: "ingress" | "egress" }
  | { type: "cgroup"; path: string; attachType: string }
  | { type: "tracepoint" | "raw_tracepoint" | "tp_btf"; name: string }
  | { type: "fentry" | "fexit" | "kprobe" | "kretprobe"; function: string }
  | { type: "lsm"; name: string }
  | { type: "netfilter"; netns: string | null; family: "ipv4" | "ipv6"; hook: "prerouting" | "input" | "forward" | "output" | "postrouting"; priority: number; defrag: boolean }
  | { type: "sk_lookup" | "flow_dissector"; netns: string | null }
  | { type: "uprobe" | "uretprobe"; binary: string; symbol: string | null; offset: number; pid: number | null }
  | { type: "sk_msg" | "sk_skb"; map: string; attachType: SockmapAttach }
  | { type: "perf_event"; event: "cpu-clock" | "task-clock" | "cpu-cycles" | "instructions"; frequency: number; cpu: number };

/** The kernel attach type of each sockmap hook (sk_msg, and sk_skb's three). */
export type SockmapAttach = "sk_msg_verdict" | "sk_skb_stream_verdict" | "sk_skb_stream_parser" | "sk_skb_verdict";

/** A hook's pin name, unique per hook and readable: xdp@lab-dst@dst0, tcx-ingress@host@eth0... */
export function hookKey(h: ConcreteHook): string {
  const key = readableHookKey(h);
  if (Buffer.byteLength(key) <= MAX_PIN_NAME) return key;
  return `${h.type}@%23${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

function readableHookKey(h: ConcreteHook): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/\./g, "%2E");
  switch (h.type) {
    case "xdp":
      return `xdp@${enc(h.netns ?? "host")}@${enc(h.ifname)}`;
    case "tcx":
      return `tcx-${h.direction}@${enc(h.netns ?? "host")}@${enc(h.ifname)}`;
    case "cgroup":
      return `cgroup-${h.attachType}@${enc(h.path)}`;
    case "tracepoint":
    case "raw_tracepoint":
    case "tp_btf":
      return `${h.type}@${enc(h.name)}`;
    case "fentry":
    case "fexit":
    case "kprobe":
    case "kretprobe":
      return `${h.type}@${enc(h.function)}`;
    case "lsm":
      return `lsm@${enc(h.name)}`;
    case "netfilter":
      return `netfilter@${enc(h.netns ?? "host")}@${h.family}-${h.hook}@${h.priority}`;
    case "sk_lookup":
    case "flow_dissector":
      return `${h.type}@${enc(h.netns ?? "host")}`;
    case "uprobe":
    case "uretprobe":
      return `${h.type}@${enc(h.binary)}@${h.symbol ? enc(h.symbol) : ""}+${h.offset}${h.pid ? `@${h.pid}` : ""}`;
    case "sk_msg":
    case "sk_skb":
      return `${h.attachType}@${enc(h.map)}`;
    case "perf_event":
      return `perf_event@${h.event}@${h.frequency}@cpu${h.cpu}`;
  }
}

/**
 * Hooks where one program at a time can be attached: XDP, a namespace's flow dissector, a
 * sockmap's verdict or parser. Others stack (tcx, cgroup links, tracing, netfilter, sk_lookup).
 */
export function isExclusiveHook(h: ConcreteHook): boolean {
  return h.type === "xdp" || h.type === "flow_dissector" || h.type === "sk_msg" || h.type === "sk_skb";
}

/**
 * How an attached program is replaced on this hook: XDP, tcx, cgroup, netns (sk_lookup,
 * flow_dissector) and sockmap links are updated in place (BPF_LINK_UPDATE); tracepoint, raw
 * tracepoint, tracing (tp_btf), netfilter and uprobe links cannot be, so the new program is
 * attached before the old link goes (both run for that moment).
 */
export function swapStrategy(h: ConcreteHook): "link-update" | "make-before-break" {
  return ["xdp", "tcx", "cgroup", "sk_lookup", "flow_dissector", "sk_msg", "sk_skb"].includes(h.type) ? "link-update" : "make-before-break";
}

/** The interfaces a hook names, matched against those present: names exactly, globs by pattern. */
export function matchInterfaces(patterns: string[], present: string[]): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    if (!/[*?]/.test(p)) {
      out.add(p); // named exactly: kept even when absent, so that the plan can say it is missing
      continue;
    }
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    for (const i of present) if (re.test(i)) out.add(i);
  }
  return [...out].sort();
}

/** Every concrete hook of a manifest hook, given the interfaces present in its namespace. */
export function concreteHooks(hook: Hook, present: string[]): ConcreteHook[] {
  switch (hook.type) {
    case "xdp":
      return matchInterfaces(hook.interfaces, present).map((ifname) => ({ type: "xdp", netns: hook.netns ?? null, ifname, mode: hook.mode }));
    case "tcx":
      return matchInterfaces(hook.interfaces, present).map((ifname) => ({ type: "tcx", netns: hook.netns ?? null, ifname, direction: hook.direction }));
    case "cgroup":
      return [{ type: "cgroup", path: hook.path, attachType: hook.attachType }];
    case "tracepoint":
    case "raw_tracepoint":
    case "tp_btf":
      return [{ type: hook.type, name: hook.name }];
    case "fentry":
    case "fexit":
    case "kprobe":
    case "kretprobe":
      return [{ type: hook.type, function: hook.function }];
    case "lsm":
      return [{ type: "lsm", name: hook.name }];
    case "netfilter":
      return [{ type: "netfilter", netns: hook.netns ?? null, family: hook.family, hook: hook.hook, priority: hook.priority, defrag: hook.defrag }];
    case "sk_lookup":
    case "flow_dissector":
      return [{ type: hook.type, netns: hook.netns ?? null }];
    case "uprobe":
    case "uretprobe":
      return [{ type: hook.type, binary: hook.binary, symbol: hook.symbol ?? null, offset: hook.offset ?? 0, pid: hook.pid ?? null }];
    case "sk_msg":
      return [{ type: "sk_msg", map: hook.map, attachType: "sk_msg_verdict" }];
    case "sk_skb":
      return [{ type: "sk_skb", map: hook.map, attachType: `sk_skb_${hook.attachType}` }];
    case "perf_event":
      // One event (and link) per CPU: the manifest's CPUs, or those given as present (every online one).
      return (hook.cpus ?? present.map(Number)).map((cpu) => ({ type: "perf_event", event: hook.event, frequency: hook.frequency, cpu }));
  }
}

export function describeHook(h: ConcreteHook): string {
  switch (h.type) {
    case "xdp":
      return `xdp ${h.ifname}${h.netns ? ` in netns ${h.netns}` : ""}`;
    case "tcx":
      return `tcx ${h.direction} ${h.ifname}${h.netns ? ` in netns ${h.netns}` : ""}`;
    case "cgroup":
      return `cgroup ${h.attachType} ${h.path}`;
    case "tracepoint":
    case "raw_tracepoint":
    case "tp_btf":
      return `${h.type} ${h.name}`;
    case "fentry":
    case "fexit":
    case "kprobe":
    case "kretprobe":
      return `${h.type} ${h.function}`;
    case "lsm":
      return `lsm ${h.name}`;
    case "netfilter":
      return `netfilter ${h.family} ${h.hook} priority ${h.priority}${h.netns ? ` in netns ${h.netns}` : ""}`;
    case "sk_lookup":
    case "flow_dissector":
      return `${h.type}${h.netns ? ` in netns ${h.netns}` : " (host netns)"}`;
    case "uprobe":
    case "uretprobe":
      return `${h.type} ${h.binary}:${h.symbol ?? ""}+${h.offset}${h.pid ? ` pid ${h.pid}` : ""}`;
    case "sk_msg":
    case "sk_skb":
      return `${h.attachType} on Map/${h.map}`;
    case "perf_event":
      return `perf_event ${h.event} at ${h.frequency} Hz on cpu ${h.cpu}`;
  }
}

/**
 * A hook from its key (hookKey's inverse), for pins whose hook no manifest names any more. Loose
 * where the key keeps less than the hook: an XDP mode (auto), netfilter's defrag; a key hashed for
 * its length gives no hook at all (null).
 */
export function parseHookKey(key: string): ConcreteHook | null {
  if (key.includes("@%23")) return null;
  const [type, a, b] = key.split("@");
  const dec = (s: string | undefined) => decodeURIComponent(s ?? "");
  // The namespace, for the hook types whose key has it first ("host": the caller's).
  const netns = dec(a) === "host" ? null : dec(a);
  if (type === "xdp") return { type: "xdp", netns, ifname: dec(b), mode: "auto" };
  if (type?.startsWith("tcx-")) return { type: "tcx", netns, ifname: dec(b), direction: type === "tcx-egress" ? "egress" : "ingress" };
  if (type?.startsWith("cgroup-")) return { type: "cgroup", attachType: type.slice("cgroup-".length), path: dec(a) };
  if (type === "tracepoint" || type === "raw_tracepoint" || type === "tp_btf") return { type, name: dec(a) };
  if (type === "lsm") return { type, name: dec(a) };
  if (type === "kprobe" || type === "kretprobe") return { type, function: dec(a) };
  if (type === "netfilter") {
    const [family, hook] = dec(b).split("-") as ["ipv4", "input"];
    return { type, netns, family, hook, priority: Number(key.split("@")[3]), defrag: false };
  }
  if (type === "sk_lookup" || type === "flow_dissector") return { type, netns };
  if (type === "uprobe" || type === "uretprobe") {
    const [symbol, offset] = (b ?? "").split("+");
    return { type, binary: dec(a), symbol: symbol ? dec(symbol) : null, offset: Number(offset ?? 0), pid: null };
  }
  if (type === "sk_msg_verdict") return { type: "sk_msg", map: dec(a), attachType: type };
  if (type === "perf_event") return { type, event: dec(a) as "cpu-clock", frequency: Number(b), cpu: Number((key.split("@")[3] ?? "cpu0").slice(3)) };
  if (type?.startsWith("sk_skb_")) return { type: "sk_skb", map: dec(a), attachType: type as "sk_skb_verdict" };
  return { type: type === "fexit" ? "fexit" : "fentry", function: dec(a) };
}
