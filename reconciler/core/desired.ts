// The desired state of one host: what the validated manifests ask for, with every program named
// by a content digest (object bytes, program, type, globals, map bindings), so that an unchanged
// program is recognized as unchanged. Deterministic: built from manifests and object bytes alone.
import { createHash } from "node:crypto";
import type { Hook } from "../../schemas/manifest.ts";
import type { ObjectFacts, Validated } from "./validate.ts";
import type { LocatedManifest } from "./parse-manifests.ts";
import { fieldPath, type ManifestIssue } from "./manifest-issues.ts";
import { effectiveProgramType, expectedAttachType, programNames, type MapTypes } from "./validate.ts";
import { encodeGlobal } from "./typed-values.ts";
import { mapFlags } from "./map-types.ts";
import { mapTypeName } from "../../schemas/kernel-names.ts";
import { shareXdpHooks } from "./xdp-share.ts";

export interface MapDefinition {
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** map-in-map: the definition of the maps it holds */
  inner?: Omit<MapDefinition, "inner">;
}

export interface DesiredMap {
  name: string;
  source: string;
  def: MapDefinition;
  onChange: "keep" | "recreate" | "migrate";
  merge: "latest" | "sum";
  /** initial entries as hex */
  entries: Array<{ key: string; value: string }>;
  overwriteEntries: boolean;
  /** seed: git's entries written when missing; exact: the map holds git's entries and nothing else */
  entryPolicy: "seed" | "exact";
  /** what the datapath writes (exact leaves it alone): none, or values (git owns the keys only) */
  datapathWrites?: "none" | "values" | "entries";
  /** false: the map stays pinned when its manifest leaves the repository */
  prune: boolean;
  /** key and value types, when known (declared, or from the BTF of the object map it is bound to) */
  types?: MapTypes;
  /** a map of records: the struct its records are, for `bpfops events` */
  recordType?: string;
  /** Prometheus metrics the agent reads from the map's entries */
  metrics?: MapMetricSpec[];
}

export interface MapMetricSpec {
  name: string;
  help?: string;
  type: "counter" | "gauge";
  key?: unknown;
  value?: string;
  labels?: Record<string, string>;
}

export interface DesiredProgram {
  name: string;
  source: string;
  objectPath: string;
  objectDigest: string;
  program: string;
  type: string;
  attachType?: string;
  /** initial values of globals (.rodata, .data, .bss) as hex, by variable */
  globals: Record<string, string>;
  /** object map name -> override; bound maps carry the bound Map's definition */
  maps: Record<string, { bind?: string; bindDef?: MapDefinition; maxEntries?: number; pin?: boolean; onChange?: "keep" | "recreate" | "migrate"; merge?: "latest" | "sum" }>;
  /** the object maps this version pins under objmaps/ (derived from the object; not part of the digest) */
  pinnedMaps?: Record<string, MapDefinition>;
  /**
   * a collection: the other programs loaded with `program` (its primary) in one load, sharing the
   * object's maps and globals; each pinned beside the primary's pin, at <pin>@<program>
   */
  members?: Array<{ program: string; type: string; attachType?: string }>;
  /** sha256 over everything above that changes the loaded program; 64 hex */
  digest: string;
}

/** What makes a program version what it is, compact enough to record beside its pin (provenance). */
export interface ProgramSpecSummary {
  /** object digest (16 hex) */
  o: string;
  /** program type and expected attach type */
  t: string;
  a?: string;
  /** globals, hex by name */
  g: Record<string, string>;
  /** object map overrides: "bind:<Map>", "pin", "max:<n>" by object map */
  m: Record<string, string>;
}

export function summarizeProgram(d: Pick<DesiredProgram, "objectDigest" | "type" | "attachType" | "globals" | "maps">): ProgramSpecSummary {
  const m: Record<string, string> = {};
  for (const [name, o] of Object.entries(d.maps)) {
    m[name] = o.bind ? `bind:${o.bind}${o.bindDef ? `(${o.bindDef.type} ${o.bindDef.keySize}/${o.bindDef.valueSize} x${o.bindDef.maxEntries})` : ""}` : [o.pin ? "pin" : "", o.maxEntries ? `max:${o.maxEntries}` : ""].filter(Boolean).join(",");
  }
  return { o: d.objectDigest.slice(0, 16), t: d.type, ...(d.attachType ? { a: d.attachType } : {}), g: { ...d.globals }, m };
}

/** Little-endian bytes of up to 8 as a number, for people; longer values stay hex. */
function showBytes(hex: string | undefined): string {
  if (hex === undefined) return "unset";
  if (hex.length > 16) return `hex:${hex}`;
  return BigInt.asUintN(64, Buffer.from(hex.padEnd(16, "0"), "hex").readBigUInt64LE(0)).toString();
}

/** What differs between two versions of a program, for the plan: object bytes, type, globals, maps. */
export function describeProgramChange(from: ProgramSpecSummary, to: ProgramSpecSummary): string[] {
  const out: string[] = [];
  if (from.o !== to.o) out.push(`object ${from.o} -> ${to.o}`);
  if (from.t !== to.t) out.push(`type ${from.t} -> ${to.t}`);
  if ((from.a ?? "") !== (to.a ?? "")) out.push(`attachType ${from.a ?? "unset"} -> ${to.a ?? "unset"}`);
  for (const g of [...new Set([...Object.keys(from.g), ...Object.keys(to.g)])].sort()) {
    if (from.g[g] !== to.g[g]) out.push(`global ${g} ${showBytes(from.g[g])} -> ${showBytes(to.g[g])}`);
  }
  for (const m of [...new Set([...Object.keys(from.m), ...Object.keys(to.m)])].sort()) {
    if ((from.m[m] ?? "") !== (to.m[m] ?? "")) out.push(`map ${m} ${from.m[m] || "default"} -> ${to.m[m] || "default"}`);
  }
  return out;
}

export interface DesiredAttachment {
  name: string;
  source: string;
  program: string;
  hook: Hook;
  takeover: boolean;
  /** placed before or after another Attachment's link on each shared hook (tcx) */
  order?: { position: "before" | "after"; attachment: string };
}

export interface DesiredChain {
  name: string;
  source: string;
  root: string;
  progArray: string;
  stages: string[];
  hook: Extract<Hook, { type: "xdp" | "tcx" }>;
  takeover: boolean;
}

export interface DesiredState {
  maps: DesiredMap[];
  programs: DesiredProgram[];
  attachments: DesiredAttachment[];
  chains: DesiredChain[];
}

/** Canonical JSON (sorted keys) so that digests do not depend on field order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function selects(selector: { matchLabels: Record<string, string> } | undefined, labels: Record<string, string>): boolean {
  return !selector || Object.entries(selector.matchLabels).every(([k, v]) => labels[k] === v);
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);

/**
 * Manifests this host selects that depend on manifests it does not select (an Attachment whose
 * Program's hostSelector leaves this host out): the revision cannot be applied here as written.
 */
export function checkSelection(v: Validated, labels: Record<string, string>): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const on = (m: { manifest: { spec: { hostSelector?: { matchLabels: Record<string, string> } } } } | undefined) => !!m && selects(m.manifest.spec.hostSelector, labels);
  const need = (from: LocatedManifest, path: Array<string | number>, kind: "Program" | "Map", name: string) => {
    const target = kind === "Program" ? v.programs.get(name) : v.maps.get(name);
    if (target && !on(target)) {
      issues.push({ code: "NotSelected", file: from.file, ...from.locate(path), manifest: from.id, field: fieldPath(path), message: `${from.id} runs on this host, but ${kind}/${name} does not (its hostSelector leaves this host out)` });
    }
  };
  // A reference to a program of a collection ("name/program") needs its Program manifest.
  const manifestOf = (ref: string) => ref.split("/")[0]!;
  for (const a of v.attachments.values()) if (on(a)) need(a, ["spec", "program"], "Program", manifestOf(a.manifest.spec.program));
  for (const c of v.chains.values()) {
    if (!on(c)) continue;
    need(c, ["spec", "root"], "Program", manifestOf(c.manifest.spec.root));
    need(c, ["spec", "progArray"], "Map", c.manifest.spec.progArray);
    c.manifest.spec.stages.forEach((st, i) => need(c, ["spec", "stages", i], "Program", manifestOf(st)));
  }
  for (const p of v.programs.values()) {
    if (!on(p)) continue;
    for (const [om, o] of Object.entries(p.manifest.spec.maps ?? {})) if (o.bind) need(p, ["spec", "maps", om, "bind"], "Map", o.bind);
  }
  return issues;
}

/** A program version's digest: over everything that changes the loaded program. */
export function programDigest(p: Omit<DesiredProgram, "name" | "source" | "objectPath" | "pinnedMaps" | "digest">): string {
  return sha256(canonicalJson(p));
}

/**
 * Builds the desired state for a host with these labels. Expects manifests that passed
 * validateManifests (every reference resolves, every object fact is ok). Ordered XDP Attachments
 * share their hook through bpfops's dispatcher, whose object's facts `xdpDispatcher` gives.
 */
export function buildDesired(v: Validated, objects: Map<string, ObjectFacts>, labels: Record<string, string> = {}, xdpDispatcher?: Extract<ObjectFacts, { ok: true }>): DesiredState {
  const maps: DesiredMap[] = [];
  const mapDefs = new Map<string, MapDefinition>();
  for (const [name, m] of v.maps) {
    const s = m.manifest.spec;
    const inner = s.innerMap ? { type: s.innerMap.type, keySize: s.innerMap.keySize, valueSize: s.innerMap.valueSize, maxEntries: s.innerMap.maxEntries, flags: mapFlags(s.innerMap.flags) as number } : undefined;
    const def: MapDefinition = { type: s.type, keySize: s.keySize, valueSize: s.valueSize, maxEntries: s.maxEntries, flags: v.flags.get(name) ?? 0, ...(inner ? { inner } : {}) };
    mapDefs.set(name, def);
    if (!selects(s.hostSelector, labels)) continue;
    maps.push({
      name,
      source: m.file,
      def,
      onChange: s.onChange,
      merge: s.merge,
      entries: v.entries.get(name) ?? [],
      ...(v.types.get(name)?.key || v.types.get(name)?.value ? { types: v.types.get(name)! } : {}),
      overwriteEntries: s.overwriteEntries,
      entryPolicy: s.entryPolicy,
      ...(s.datapathWrites ? { datapathWrites: s.datapathWrites } : {}),
      prune: s.prune,
      ...(s.recordType ? { recordType: s.recordType } : {}),
      ...(s.metrics?.length ? { metrics: s.metrics } : {}),
    });
  }
  const programs: DesiredProgram[] = [];
  for (const [name, p] of v.programs) {
    const s = p.manifest.spec;
    if (!selects(s.hostSelector, labels)) continue;
    const facts = objects.get(p.id);
    if (!facts?.ok) throw new Error(`buildDesired: ${p.id} has no object facts; validate first`);
    const globals: Record<string, string> = {};
    for (const [g, value] of Object.entries(s.globals ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      const size = facts.summary.globals.find((x) => x.name === g)!.size;
      globals[g] = encodeGlobal(value, size, facts.globalTypes?.[g], `globals.${g}`).toString("hex");
    }
    const mapsOut: DesiredProgram["maps"] = {};
    for (const [om, o] of Object.entries(s.maps ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      mapsOut[om] = { ...o, ...(o.bind ? { bindDef: mapDefs.get(o.bind)! } : {}) };
    }
    // The loader sets the attach type the manifest gives, or the one a section libbpf 1.1 does not know implies.
    const typed = (program: string) => {
      const attachType = expectedAttachType(p.manifest, facts, program);
      const untyped = !facts.summary.programs.find((x) => x.name === program)?.type;
      return { program, type: effectiveProgramType(p.manifest, facts, program)!, ...(attachType && (s.attachType || untyped) ? { attachType } : {}) };
    };
    const [primary, ...others] = programNames(s);
    const base = {
      objectDigest: facts.digest,
      ...typed(primary!),
      globals,
      maps: mapsOut,
      ...(s.programs ? { members: others.map(typed) } : {}),
    };
    // The object's own maps it pins under objmaps/ (pin: true, or pinned by name), as this version declares them.
    const pinnedMaps: Record<string, MapDefinition> = {};
    for (const m of facts.summary.maps) {
      const ov = mapsOut[m.name];
      if (m.internal || ov?.bind || ov?.pin === false || !(ov?.pin || m.pinned)) continue;
      pinnedMaps[m.name] = { type: mapTypeName(m.type), keySize: m.keySize, valueSize: m.valueSize, maxEntries: ov?.maxEntries ?? m.maxEntries, flags: m.flags };
    }
    programs.push({ name, source: p.file, objectPath: facts.path, ...base, pinnedMaps, digest: programDigest(base) });
  }
  const attachments: DesiredAttachment[] = [];
  for (const [name, a] of v.attachments) {
    const s = a.manifest.spec;
    const order = s.order ? { position: s.order.before ? ("before" as const) : ("after" as const), attachment: (s.order.before ?? s.order.after)! } : undefined;
    if (selects(s.hostSelector, labels)) attachments.push({ name, source: a.file, program: s.program, hook: s.hook, takeover: s.takeover, ...(order ? { order } : {}) });
  }
  const chains: DesiredChain[] = [];
  for (const [name, c] of v.chains) {
    const s = c.manifest.spec;
    if (selects(s.hostSelector, labels)) chains.push({ name, source: c.file, root: s.root, progArray: s.progArray, stages: s.stages, hook: s.hook, takeover: s.takeover });
  }
  return shareXdpHooks({ maps: maps.sort(byName), programs: programs.sort(byName), attachments: attachments.sort(byName), chains: chains.sort(byName) }, xdpDispatcher, programDigest);
}
