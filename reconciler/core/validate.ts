// Cross-document checks over parsed manifests and the facts read from their object files:
// duplicates, dangling references, hook/program type mismatches, chain cycles, object contents.
// Pure: returns every issue found.
import type { LocatedManifest } from "./parse-manifests.ts";
import { encodeGlobal, EncodeError } from "./typed-values.ts";
import { fieldPath, type ManifestIssue, type IssueCode } from "./manifest-issues.ts";
import type { ObjectSummary } from "./object-summary.ts";
import type { AttachmentManifest, ChainManifest, Hook, MapManifest, ProgramManifest } from "../../schemas/manifest.ts";
import { AttachType, attachTypeName, MapType, mapTypeName, progTypeName } from "../../schemas/kernel-names.ts";
import type { EntriesFile } from "./entries-file.ts";
import type { TypeDesc } from "./type-desc.ts";
import { validateMaps } from "./validate-maps.ts";
import { XDP_SHARE_GLOBAL, XDP_SHARE_MAP } from "./xdp-share.ts";
import { canonicalJson } from "./desired.ts";

/** The most memory one Map may ask for (maxEntries x (key + value)), unless the build says otherwise. */
export const DEFAULT_MAP_MEMORY_BUDGET = 1 << 30;

/** The object behind a Program manifest: its digest and summary, or why it could not be read. */
export type ObjectFacts =
  | {
      ok: true;
      path: string;
      digest: string;
      summary: ObjectSummary;
      /** the types of its global variables, from its BTF (where the encoders handle them) */
      globalTypes?: Record<string, TypeDesc>;
      /** key and value types of its maps, from its BTF */
      mapTypes?: Record<string, MapTypes>;
      /** the structs its BTF names (a record type must be one) */
      structs?: string[];
    }
  | { ok: false; path: string; code: IssueCode; message: string };

/** What inspecting an object's bytes found: its facts but where it is (a fleet bundle carries them). */
export type InspectedFacts = Omit<Extract<ObjectFacts, { ok: true }>, "ok" | "path">;

export interface MapTypes {
  key?: TypeDesc;
  value?: TypeDesc;
}

export interface Validated {
  programs: Map<string, LocatedManifest & { manifest: ProgramManifest }>;
  maps: Map<string, LocatedManifest & { manifest: MapManifest }>;
  attachments: Map<string, LocatedManifest & { manifest: AttachmentManifest }>;
  chains: Map<string, LocatedManifest & { manifest: ChainManifest }>;
  /** each Map's entries (from the manifest or its entries file), encoded as hex */
  entries: Map<string, Array<{ key: string; value: string }>>;
  /** each Map's key and value types: declared in the manifest, or from the object whose map it is bound to */
  types: Map<string, MapTypes>;
  /** each Map's flags as a number (a manifest may name them) */
  flags: Map<string, number>;
}

/** Program types a hook accepts. */
export function programTypesForHook(hook: Hook): string[] {
  switch (hook.type) {
    case "xdp":
      return ["xdp"];
    case "tcx":
      return ["sched_cls"];
    case "tracepoint":
      return ["tracepoint"];
    case "raw_tracepoint":
      return ["raw_tracepoint"];
    case "tp_btf":
      return ["tracing"];
    case "fentry":
    case "fexit":
      return ["tracing"];
    case "kprobe":
    case "kretprobe":
      return ["kprobe"];
    case "lsm":
      return ["lsm"];
    case "netfilter":
      return ["netfilter"];
    case "sk_lookup":
      return ["sk_lookup"];
    case "flow_dissector":
      return ["flow_dissector"];
    case "uprobe":
    case "uretprobe":
      return ["kprobe"];
    case "sk_msg":
      return ["sk_msg"];
    case "sk_skb":
      return ["sk_skb"];
    case "perf_event":
      return ["perf_event"];
    case "cgroup":
      if (hook.attachType === "cgroup_inet_ingress" || hook.attachType === "cgroup_inet_egress") return ["cgroup_skb"];
      if (hook.attachType === "cgroup_inet_sock_create" || hook.attachType === "cgroup_inet_sock_release" || hook.attachType.endsWith("_post_bind")) return ["cgroup_sock"];
      if (hook.attachType === "cgroup_device") return ["cgroup_device"];
      if (hook.attachType === "cgroup_sysctl") return ["cgroup_sysctl"];
      if (hook.attachType === "cgroup_getsockopt" || hook.attachType === "cgroup_setsockopt") return ["cgroup_sockopt"];
      if (hook.attachType === "cgroup_sock_ops") return ["sock_ops"];
      return ["cgroup_sock_addr"];
  }
}

/**
 * Sections newer than libbpf 1.1 (which leaves their programs untyped), read as newer libbpf reads
 * them: program type and expected attach type.
 */
const NEWER_SECTIONS: Record<string, [string, string]> = {
  netfilter: ["netfilter", "netfilter"],
  "tcx/ingress": ["sched_cls", "tcx_ingress"],
  "tcx/egress": ["sched_cls", "tcx_egress"],
};

/** Program types whose only attach type the kernel wants at load (libbpf sets it from the section). */
const ONLY_ATTACH_TYPE: Record<string, string> = { netfilter: "netfilter", sk_lookup: "sk_lookup", flow_dissector: "flow_dissector" };

/** The programs a Program manifest loads: its collection, or its one program. The first is its primary. */
export function programNames(spec: ProgramManifest["spec"]): string[] {
  return spec.programs ?? [spec.program!];
}

function objectProgram(p: ProgramManifest, facts: ObjectFacts | undefined, member?: string) {
  const name = member ?? programNames(p.spec)[0];
  return facts?.ok ? facts.summary.programs.find((x) => x.name === name) : undefined;
}

/**
 * The program type a program of a Program manifest loads as: spec.type when the manifest names one
 * program; in a collection, each program's section says it, and spec.type types those libbpf
 * leaves untyped.
 */
export function effectiveProgramType(p: ProgramManifest, facts: ObjectFacts | undefined, member?: string): string | undefined {
  const prog = objectProgram(p, facts, member);
  if (p.spec.type && (!p.spec.programs || !prog || (prog.type === 0 && !NEWER_SECTIONS[prog.section]))) return p.spec.type;
  if (!prog) return undefined;
  return prog.type !== 0 ? progTypeName(prog.type) : NEWER_SECTIONS[prog.section]?.[0];
}

/** The attach type a program is loaded for, when its manifest or its section says one (0 is "not said"). */
export function expectedAttachType(p: ProgramManifest, facts: ObjectFacts | undefined, member?: string): string | undefined {
  if (p.spec.attachType && !p.spec.programs) return p.spec.attachType;
  const prog = objectProgram(p, facts, member);
  if (prog?.type === 0 && NEWER_SECTIONS[prog.section]) return NEWER_SECTIONS[prog.section]![1];
  if (p.spec.attachType && prog?.type === 0) return p.spec.attachType;
  const only = ONLY_ATTACH_TYPE[effectiveProgramType(p, facts, member) ?? ""];
  if (!prog || prog.expectedAttachType === AttachType.cgroup_inet_ingress) return only;
  return attachTypeName(prog.expectedAttachType);
}

/**
 * What an Attachment or Chain names: a Program manifest, and the program of it ("name" is a
 * manifest's primary program, "name/program" one program of a collection). A string says why not.
 */
export function resolveProgramRef(validated: Pick<Validated, "programs">, ref: string): { program: LocatedManifest & { manifest: ProgramManifest }; member: string } | string {
  const [name, member] = ref.split("/") as [string, string | undefined];
  const p = validated.programs.get(name);
  if (!p) return `no Program "${name}" in the manifests`;
  const names = programNames(p.manifest.spec);
  if (member === undefined) return { program: p, member: names[0]! };
  if (!p.manifest.spec.programs) return `Program/${name} loads one program (${names[0]}), not a collection: name it ${name}`;
  if (!names.includes(member)) return `Program/${name} has no program ${member} in its collection (it has: ${names.join(", ")})`;
  return { program: p, member };
}

export function validateManifests(manifests: LocatedManifest[], objects: Map<string, ObjectFacts>, opts: { mapMemoryBudget?: number; entryFiles?: Map<string, EntriesFile> } = {}): { validated: Validated; issues: ManifestIssue[] } {
  const budget = opts.mapMemoryBudget ?? DEFAULT_MAP_MEMORY_BUDGET;
  const issues: ManifestIssue[] = [];
  const at = (m: LocatedManifest, path: Array<string | number>, code: IssueCode, message: string) =>
    issues.push({ code, file: m.file, ...m.locate(path), manifest: m.id, field: fieldPath(path), message });

  const validated: Validated = { programs: new Map(), maps: new Map(), attachments: new Map(), chains: new Map(), entries: new Map(), types: new Map(), flags: new Map() };
  const seen = new Map<string, LocatedManifest>();
  for (const m of manifests) {
    const prior = seen.get(m.id);
    if (prior) {
      at(m, ["metadata", "name"], "DuplicateName", `${m.id} is also defined at ${prior.file}:${prior.locate(["metadata", "name"]).line}`);
      continue;
    }
    seen.set(m.id, m);
    const k = m.manifest.kind;
    if (k === "Program") validated.programs.set(m.manifest.metadata.name, m as never);
    else if (k === "Map") validated.maps.set(m.manifest.metadata.name, m as never);
    else if (k === "Attachment") validated.attachments.set(m.manifest.metadata.name, m as never);
    else if (k === "Chain") validated.chains.set(m.manifest.metadata.name, m as never);
  }

  validateMaps(validated, objects, { budget, ...(opts.entryFiles ? { entryFiles: opts.entryFiles } : {}) }, at, issues);

  // Programs: the object, the program in it, its globals and map overrides.
  for (const p of validated.programs.values()) {
    const s = p.manifest.spec;
    const facts = objects.get(p.id);
    if (!facts) continue;
    if (!facts.ok) {
      at(p, ["spec", "object"], facts.code, facts.message);
      continue;
    }
    const sum = facts.summary;
    programNames(s).forEach((name, i) => {
      const field = s.programs ? ["spec", "programs", i] : ["spec", "program"];
      if (!sum.programs.some((x) => x.name === name)) {
        at(p, field, "ProgramNotInObject", `no program "${name}" in ${facts.path} (it has: ${sum.programs.map((x) => x.name).join(", ") || "none"})`);
      } else if (!effectiveProgramType(p.manifest, facts, name)) {
        at(p, ["spec", "type"], "WrongProgramType", `libbpf does not know section "${sum.programs.find((x) => x.name === name)!.section}" of ${name}: set spec.type`);
      }
    });
    for (const [name, value] of Object.entries(s.globals ?? {})) {
      const g = sum.globals.find((x) => x.name === name);
      if (!g) {
        at(p, ["spec", "globals", name], "GlobalNotInObject", `no global "${name}" in .rodata, .data or .bss of ${facts.path} (it has: ${sum.globals.map((x) => x.name).join(", ") || "none"})`);
        continue;
      }
      try {
        encodeGlobal(value, g.size, facts.globalTypes?.[name], `globals.${name}`);
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        // A number or bytes of the wrong size is a size problem; a structure that does not encode, a value problem.
        const scalar = typeof value === "number" || typeof value === "boolean" || (typeof value === "string" && value.startsWith("hex:"));
        at(p, ["spec", "globals", name], scalar ? "GlobalSize" : "GlobalValue", e.message);
      }
    }
    for (const [name, o] of Object.entries(s.maps ?? {})) {
      // A data section's own map (.data, .bss, .rodata) may be pinned, and nothing else.
      if (name.startsWith(".")) {
        if (!sum.maps.some((x) => x.internal && x.name.endsWith(name))) at(p, ["spec", "maps", name], "MapNotInObject", `no ${name} section in ${facts.path}`);
        else if (o.bind || o.maxEntries !== undefined || o.onChange) at(p, ["spec", "maps", name], "MapDefinition", `${name} is the object's data section: it can be pinned (pin: true), not bound, sized or migrated`);
        continue;
      }
      const om = sum.maps.find((x) => x.name === name && !x.internal);
      if (!om) {
        at(p, ["spec", "maps", name], "MapNotInObject", `no map "${name}" in ${facts.path} (it has: ${sum.maps.filter((x) => !x.internal).map((x) => x.name).join(", ") || "none"})`);
        continue;
      }
      if (!o.bind) continue;
      const bound = validated.maps.get(o.bind);
      if (!bound) {
        at(p, ["spec", "maps", name, "bind"], "UnknownReference", `no Map "${o.bind}" in the manifests`);
        continue;
      }
      const b = bound.manifest.spec;
      const diffs: string[] = [];
      if (MapType[b.type] !== om.type) diffs.push(`type ${b.type} vs ${mapTypeName(om.type)}`);
      if (b.keySize !== om.keySize) diffs.push(`keySize ${b.keySize} vs ${om.keySize}`);
      if (b.valueSize !== om.valueSize) diffs.push(`valueSize ${b.valueSize} vs ${om.valueSize}`);
      if (diffs.length) at(p, ["spec", "maps", name, "bind"], "MapBindingMismatch", `Map/${o.bind} does not match the object's map "${name}": ${diffs.join(", ")}`);
    }
  }

  const programType = (r: Exclude<ReturnType<typeof resolveProgramRef>, string>) => effectiveProgramType(r.program.manifest, objects.get(r.program.id), r.member);

  for (const a of validated.attachments.values()) {
    const s = a.manifest.spec;
    const ref = resolveProgramRef(validated, s.program);
    if (typeof ref === "string") {
      at(a, ["spec", "program"], "UnknownReference", ref);
      continue;
    }
    const t = programType(ref);
    const want = programTypesForHook(s.hook);
    if (t && !want.includes(t)) at(a, ["spec", "hook", "type"], "WrongProgramType", `Program/${s.program} is a ${t} program; a ${s.hook.type} hook takes ${want.join(" or ")}`);
    else if (s.hook.type === "cgroup") {
      // The kernel refuses (EINVAL) a cgroup attach type other than the one the program was loaded for.
      const expected = expectedAttachType(ref.program.manifest, objects.get(ref.program.id), ref.member);
      if (expected && expected !== s.hook.attachType) at(a, ["spec", "hook", "attachType"], "WrongAttachType", `Program/${s.program} is loaded for ${expected} (its section or spec.attachType), not ${s.hook.attachType}`);
    } else if (s.hook.type === "sk_msg" || s.hook.type === "sk_skb") {
      const m = validated.maps.get(s.hook.map);
      if (!m) at(a, ["spec", "hook", "map"], "UnknownReference", `no Map "${s.hook.map}" in the manifests`);
      else if (m.manifest.spec.type !== "sockmap" && m.manifest.spec.type !== "sockhash") at(a, ["spec", "hook", "map"], "WrongMapType", `Map/${s.hook.map} is a ${m.manifest.spec.type}; ${s.hook.type} programs attach to a sockmap or sockhash`);
    } else if (s.hook.type === "tp_btf") {
      // The kernel fixes a tp_btf program's tracepoint at load, from its section: the hook must name that one.
      const facts = objects.get(ref.program.id);
      const section = facts?.ok ? facts.summary.programs.find((x) => x.name === ref.member)?.section : undefined;
      if (section && section !== `tp_btf/${s.hook.name}`) at(a, ["spec", "hook", "name"], "WrongAttachType", `Program/${s.program} is built for ${section.startsWith("tp_btf/") ? `tracepoint ${section.slice(7)}` : `section ${section}`} (SEC("${section}")), not tp_btf ${s.hook.name}`);
    }
  }

  /** Whether a program's object is written to share an XDP hook (bpfops_xdp.h): the map and the global bpfops sets. */
  const sharesXdp = (ref: string) => {
    const r = resolveProgramRef(validated, ref);
    const facts = typeof r === "string" ? undefined : objects.get(r.program.id);
    if (!facts?.ok) return true; // reported elsewhere
    return facts.summary.maps.some((m) => m.name === XDP_SHARE_MAP) && facts.summary.globals.some((g) => g.name === XDP_SHARE_GLOBAL);
  };
  for (const a of validated.attachments.values()) {
    const order = a.manifest.spec.order;
    if (!order) continue;
    const field = ["spec", "order", order.before ? "before" : "after"];
    const hook = a.manifest.spec.hook;
    const anchor = (order.before ?? order.after)!;
    const other = validated.attachments.get(anchor);
    const otherHook = other?.manifest.spec.hook;
    const unshareable = hook.type === "xdp" && other ? [a, other].find((x) => !sharesXdp(x.manifest.spec.program)) : undefined;
    if (hook.type !== "tcx" && hook.type !== "xdp") at(a, ["spec", "order"], "OrderNotSupported", `order places programs on tcx and XDP hooks, not on ${hook.type} hooks`);
    else if (anchor === a.manifest.metadata.name) at(a, field, "OrderCycle", "an Attachment cannot be placed relative to itself");
    else if (!other) at(a, field, "UnknownReference", `no Attachment "${anchor}" in the manifests`);
    else if (hook.type === "tcx" && (otherHook!.type !== "tcx" || otherHook!.direction !== hook.direction)) at(a, field, "OrderMismatch", `Attachment/${anchor} is not on tcx ${hook.direction}: order relates Attachments on the same hooks`);
    else if (hook.type === "xdp" && (otherHook!.type !== "xdp" || canonicalJson({ ...otherHook, type: "xdp" }) !== canonicalJson(hook))) at(a, field, "OrderMismatch", `Attachment/${anchor} is not on the same XDP hook (the same interfaces, netns and mode): programs share an XDP hook only where both name it alike`);
    else if (unshareable) at(a, field, "OrderNotSupported", `Program/${unshareable.manifest.spec.program} cannot share an XDP hook: its object has no ${XDP_SHARE_MAP} map or ${XDP_SHARE_GLOBAL} global (include bpfops_xdp.h and return bpfops_xdp_pass(ctx) where it passes a packet)`);
    else {
      // Follow the anchors: coming back here is a cycle, which no placement satisfies.
      const seen = new Set([a.manifest.metadata.name]);
      for (let next: string | undefined = anchor; next; ) {
        if (seen.has(next)) {
          at(a, field, "OrderCycle", `the order of ${[...seen].map((n) => `Attachment/${n}`).join(" -> ")} -> Attachment/${next} is a cycle`);
          break;
        }
        seen.add(next);
        const o: { before?: string; after?: string } | undefined = validated.attachments.get(next)?.manifest.spec.order;
        next = o ? (o.before ?? o.after) : undefined;
      }
    }
  }

  for (const c of validated.chains.values()) {
    const s = c.manifest.spec;
    const want = programTypesForHook(s.hook);
    const rootRef = resolveProgramRef(validated, s.root);
    if (typeof rootRef === "string") at(c, ["spec", "root"], "UnknownReference", rootRef);
    else {
      const t = programType(rootRef);
      if (t && !want.includes(t)) at(c, ["spec", "root"], "WrongProgramType", `Program/${s.root} is a ${t} program; a ${s.hook.type} hook takes ${want.join(" or ")}`);
    }
    const pa = validated.maps.get(s.progArray);
    if (!pa) at(c, ["spec", "progArray"], "UnknownReference", `no Map "${s.progArray}" in the manifests`);
    else if (pa.manifest.spec.type !== "prog_array") at(c, ["spec", "progArray"], "ChainStageType", `Map/${s.progArray} is a ${pa.manifest.spec.type}, not a prog_array`);
    else if (pa.manifest.spec.maxEntries < s.stages.length) at(c, ["spec", "stages"], "ChainStageType", `${s.stages.length} stages do not fit Map/${s.progArray} (maxEntries ${pa.manifest.spec.maxEntries})`);
    const seenStages = new Map<string, number>();
    s.stages.forEach((st, i) => {
      if (st === s.root || seenStages.has(st)) {
        at(c, ["spec", "stages", i], "ChainCycle", `Program/${st} already runs in this chain (${st === s.root ? "as its root" : `at slot ${seenStages.get(st)}`}): the tail calls would loop`);
        return;
      }
      seenStages.set(st, i);
      const stageRef = resolveProgramRef(validated, st);
      if (typeof stageRef === "string") return at(c, ["spec", "stages", i], "UnknownReference", stageRef);
      const t = programType(stageRef);
      if (t && !want.includes(t)) at(c, ["spec", "stages", i], "ChainStageType", `Program/${st} is a ${t} program; stages of a ${s.hook.type} chain must be ${want.join(" or ")}`);
    });
  }
  return { validated, issues };
}
