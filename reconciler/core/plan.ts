// plan(desired, observed): the ordered actions that take this host from what it runs to what the
// manifests say. Each action carries typed operands (pins, digests, hook identity, slot, the link
// and the observed program id a swap replaces), so execution never re-derives what the plan
// decided; text and JSON are rendered from them. Pure and deterministic: maps, programs, chains,
// attachments, then prunes, each sorted by name.
import type { DesiredAttachment, DesiredChain, DesiredMap, DesiredProgram, DesiredState, MapDefinition } from "./desired.ts";
import { describeProgramChange, summarizeProgram } from "./desired.ts";
import { LEGACY_PATH_TEXT, type ObservedHook, type ObservedLink, type ObservedMap, type ObservedProgram, type ObservedState } from "./observed.ts";
import { observedHooksOf } from "./observed.ts";
import { DIGEST_CHARS, describeHook, hookKey, isExclusiveHook, layout, parseHookKey, PIN_SUFFIX, swapStrategy, type ConcreteHook } from "./layout.ts";
import type { MapTypes } from "./validate.ts";
import { entryKind } from "./map-types.ts";
import { REF } from "./validate-maps.ts";

export type ActionOp = "create" | "load" | "attach" | "swap" | "set-entries" | "recreate" | "migrate" | "prune" | "unchanged" | "conflict" | "blocked" | "unowned";
export type Strategy = "link-update" | "chain-slot" | "chain-rebuild" | "make-before-break" | "takeover" | "re-place" | "replace";
export type ActionKind = "Map" | "Program" | "Attachment" | "Chain";
export const ACTION_OPS: readonly ActionOp[] = ["create", "load", "attach", "swap", "set-entries", "recreate", "migrate", "prune", "unchanged", "conflict", "blocked", "unowned"];

/** A hook's identity: its pin key and the concrete hook (type, netns, interface or cgroup, direction, attach type). */
export interface HookRef {
  key: string;
  hook: ConcreteHook;
}

interface Base {
  kind: ActionKind;
  name: string;
  reason: string;
  /** the manifest file it comes from (none for prunes) */
  source?: string;
}

export interface MapEntryHex {
  key: string;
  value: string;
  /** written from inside this network namespace: the value is an ifindex there (a devmap entry naming an interface) */
  netns?: string;
}

export type MapAction = Base & { kind: "Map"; pin: string; /** applied with prune: false */ keep?: boolean; /** recorded for `bpfops events` */ recordType?: string } & (
    | { op: "create"; def: MapDefinition; entries: MapEntryHex[]; overwrite: boolean; /** key and value types, given to the map as BTF */ types?: MapTypes; exact?: boolean }
    | {
        op: "recreate" | "migrate";
        def: MapDefinition;
        fromDef: MapDefinition;
        mapId: number;
        entries: MapEntryHex[];
        overwrite: boolean;
        merge?: "latest" | "sum";
        /** exact: the new map holds git's entries only (migrate copies values of git's keys alone) */
        exact?: boolean;
        types?: MapTypes;
      }
    | {
        op: "set-entries";
        mapId: number;
        /** entries to write: added, or changed (their old values in previous) */
        entries: MapEntryHex[];
        overwrite: boolean;
        /** the values the changed keys hold now, by key */
        previous?: Record<string, string>;
        /** exact: entries git no longer lists, with the values they hold now */
        removes?: MapEntryHex[];
        /** exact: a failed apply puts the entries back as they were */
        exact?: boolean;
        /** key and value types, to show the entries by field */
        types?: MapTypes;
      }
    | { op: "unchanged"; mapId: number }
    | { op: "conflict"; mapId?: number; def?: MapDefinition; fromDef?: MapDefinition }
    | { op: "blocked"; mapId?: number }
    | { op: "prune"; mapId: number }
  );

export type ProgramAction = Base & { kind: "Program"; pin: string; digest: string } & (
    | {
        op: "load";
        spec: DesiredProgram;
        /** Map manifest name -> the pin the load binds (a replaced map's "~next" pin) */
        mapPins: Record<string, string>;
        /** object map -> the pin of its replacement the load reuses (onChange recreate or migrate) */
        objectMapPins?: Record<string, string>;
        /** a stale version pinned at the same path is replaced (bound to old maps, or not the program bpfops pinned) */
        replacesPin: boolean;
        fromDigests: string[];
      }
    | { op: "unchanged"; progId: number; mapIds: number[] }
    | { op: "conflict"; map: string; from: MapDefinition; to: MapDefinition }
    | { op: "prune"; progId: number; /** the last version: the program's object maps go too */ objectMapsDir?: string; /** a collection's parts pinned beside it */ parts?: string[] }
  );

interface HookBase extends Base {
  kind: "Attachment" | "Chain";
  hook: HookRef;
  linkPin: string;
}

/** A new link's place among the others on its hook (tcx): before or after another Attachment's link. */
export interface HookAnchor {
  position: "before" | "after";
  attachment: string;
  linkPin: string;
}

export type HookAction =
  | (HookBase & { op: "attach"; program: string; programPin: string; anchor?: HookAnchor })
  | (HookBase & { op: "swap"; strategy: "link-update" | "make-before-break" | "takeover" | "re-place" | "replace"; program: string; programPin: string; linkId: number; expectProgId: number; anchor?: HookAnchor })
  | (HookBase & { op: "unchanged"; program: string; linkId: number; progId: number })
  | (HookBase & { op: "conflict" | "blocked"; program: string; heldBy?: number[] })
  | (HookBase & { op: "prune"; linkId: number });

export interface ChainSlotAction extends Base {
  kind: "Chain";
  op: "swap" | "unchanged";
  strategy?: "chain-slot";
  progArrayPin: string;
  slot: number;
  /** the program in the slot when observed (0: empty); the update expects it still there */
  expectProgId: number;
  stage: string | null;
  /** the stage's program version pin; null empties the slot */
  programPin: string | null;
}

export interface ChainRebuildAction extends Base {
  kind: "Chain";
  op: "create" | "swap";
  strategy: "chain-rebuild";
  progArrayPin: string;
  stages: Array<{ slot: number; stage: string; programPin: string }>;
}

/** A pin under the root that bpfops did not make: reported, never pruned or overwritten. */
export interface UnownedAction extends Base {
  op: "unowned";
  pin: string;
}

export type PlanAction = MapAction | ProgramAction | HookAction | ChainSlotAction | ChainRebuildAction | UnownedAction;

export interface Plan {
  root: string;
  actions: PlanAction[];
  warnings: string[];
  summary: Record<ActionOp, number>;
  /** anything other than unchanged (or unowned, which bpfops leaves alone) */
  changes: boolean;
}

const short = (d: string) => d.slice(0, DIGEST_CHARS);

function defDiff(a: MapDefinition, b: MapDefinition): string[] {
  return (["type", "keySize", "valueSize", "maxEntries", "flags"] as const).filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k]} -> ${b[k]}`);
}

export function describeDef(d: MapDefinition): string {
  return `${d.type} ${d.keySize}/${d.valueSize} x${d.maxEntries}`;
}

/** What writing git's entries changes: seed adds what is missing (and with overwrite rewrites); exact also removes. */
export function entryChanges(d: DesiredMap, o: ObservedMap, mapIdOf: (name: string) => number | undefined = () => undefined): { entries: MapEntryHex[]; previous: Record<string, string>; removes: MapEntryHex[] } {
  // Values pushed when the map was made (queue, stack, bloom filter) cannot be read back to compare.
  if (entryKind(d.def.type) === "pushed") return { entries: [], previous: {}, removes: [] };
  // A map-in-map entry names a Map; the kernel reads back the id of the map it holds.
  const refs = entryKind(d.def.type) === "maps";
  const same = (cur: string, want: string) => {
    if (!refs || !want.startsWith(REF.map)) return cur === want;
    const id = mapIdOf(want.slice(REF.map.length));
    return id !== undefined && cur.length === 8 && Buffer.from(cur, "hex").readUInt32LE(0) === id;
  };
  const rewrite = d.entryPolicy === "exact" ? d.datapathWrites === "none" : d.overwriteEntries || refs;
  const entries: MapEntryHex[] = [];
  const previous: Record<string, string> = {};
  const held = new Map(o.entries);
  for (const e of d.entries) {
    const cur = held.get(e.key);
    if (cur === null || cur === undefined) entries.push(e);
    else if (rewrite && !same(cur, e.value)) {
      entries.push(e);
      previous[e.key] = cur;
    }
  }
  const removes: MapEntryHex[] = [];
  if (d.entryPolicy === "exact") {
    for (const e of d.entries) held.delete(e.key);
    for (const [key, value] of held) if (value !== null) removes.push({ key, value });
  }
  return { entries, previous, removes };
}

/**
 * An exact change this large is built as a new map beside the old one, which the programs switch
 * to in one commit, rather than written into the map the datapath reads: it never sees a set that
 * is half old and half new. Only when git owns the values too (a new map starts without the
 * datapath's).
 */
export const MAP_SWITCH_MIN_CHANGES = 1024;
function switchesMap(d: DesiredMap, changes: { entries: MapEntryHex[]; previous: Record<string, string>; removes: MapEntryHex[] }, held: number): boolean {
  const replaced = Object.keys(changes.previous).length + changes.removes.length;
  const total = changes.entries.length + changes.removes.length;
  return d.entryPolicy === "exact" && d.datapathWrites === "none" && total >= MAP_SWITCH_MIN_CHANGES && replaced * 2 > held;
}

/** "3 added, 1 changed, 2 removed" */
export function describeEntryChanges(a: { entries: MapEntryHex[]; previous?: Record<string, string>; removes?: MapEntryHex[] }): string {
  const changed = Object.keys(a.previous ?? {}).length;
  const parts = [`${a.entries.length - changed} added`, `${changed} changed`, `${a.removes?.length ?? 0} removed`];
  return parts.filter((p) => !p.startsWith("0 ")).join(", ") || "nothing";
}

/** Maps: create, keep, replace (by policy) or repair. Returns the maps replaced in this plan. */
function planMaps(desired: DesiredState, observed: ObservedState, unownedPins: Set<string>, out: PlanAction[]): Set<string> {
  const replaced = new Set<string>();
  const root = observed.root;
  for (const d of desired.maps) {
    const pin = layout.map(root, d.name);
    const o = observed.maps.find((m) => m.name === d.name);
    const base = { kind: "Map" as const, name: d.name, source: d.source, pin, keep: !d.prune, ...(d.recordType ? { recordType: d.recordType } : {}) };
    const entries = { entries: d.entries, overwrite: d.overwriteEntries, ...(d.entryPolicy === "exact" ? { exact: true } : {}), ...(d.types ? { types: d.types } : {}) };
    // An entry naming an interface this host does not have (yet): the map waits for it.
    const unresolved = d.entries.find((e) => e.value.startsWith(REF.ifindex));
    if (unresolved) {
      const r = unresolved.value.slice(REF.ifindex.length).split("/");
      out.push({ ...base, op: "blocked", ...(o ? { mapId: o.id } : {}), reason: `entry ${unresolved.key}: interface ${r[1]}${r[0] ? ` in netns ${r[0]}` : ""} does not exist (will retry)` });
      continue;
    }
    if (!o) {
      if (unownedPins.has(pin)) {
        out.push({ ...base, op: "conflict", def: d.def, reason: `${pin} is pinned by someone else (bpfops has no record of it): remove it, or rename the Map` });
        continue;
      }
      out.push({ ...base, op: "create", def: d.def, ...entries, reason: d.entries.length ? `new map with ${d.entries.length} initial entries` : "new map" });
      continue;
    }
    if (o.recordedId !== undefined && o.recordedId !== o.id) {
      // Someone pinned another map over ours: its contents are not ours to keep.
      replaced.add(d.name);
      out.push({ ...base, op: "recreate", def: d.def, fromDef: o.def, mapId: o.id, ...entries, reason: `drift: the pin holds map id ${o.id}, bpfops pinned map id ${o.recordedId}; a fresh map replaces it` });
      continue;
    }
    const diff = defDiff(o.def, d.def);
    if (diff.length) {
      if (d.onChange === "keep") {
        out.push({ ...base, op: "conflict", mapId: o.id, def: d.def, fromDef: o.def, reason: `definition changed (${diff.join(", ")}) and onChange is keep: refusing to lose its contents` });
        continue;
      }
      replaced.add(d.name);
      if (d.onChange === "recreate") out.push({ ...base, op: "recreate", def: d.def, fromDef: o.def, mapId: o.id, ...entries, reason: `definition changed (${diff.join(", ")}); onChange recreate starts it empty` });
      else out.push({ ...base, op: "migrate", def: d.def, fromDef: o.def, mapId: o.id, ...entries, merge: d.merge, reason: `definition changed (${diff.join(", ")}); onChange migrate copies the entries that fit${d.merge === "sum" ? ", summing what is counted meanwhile" : ""}` });
      continue;
    }
    const changes = entryChanges(d, o, (name) => observed.maps.find((x) => x.name === name)?.id);
    let held = 0;
    for (const v of o.entries.values()) if (v !== null) held++;
    if (switchesMap(d, changes, held)) {
      replaced.add(d.name);
      out.push({ ...base, op: "recreate", def: d.def, fromDef: o.def, mapId: o.id, ...entries, reason: `entries: ${describeEntryChanges(changes)} of ${held}; a new map is filled beside this one and the programs switch to it in one commit` });
      continue;
    }
    if (changes.entries.length || changes.removes.length) {
      const what = d.entryPolicy === "exact" ? `entries: ${describeEntryChanges(changes)} (exact)` : `${changes.entries.length} of ${d.entries.length} initial entries ${d.overwriteEntries ? "missing or different" : "missing"}`;
      out.push({
        ...base,
        op: "set-entries",
        mapId: o.id,
        entries: changes.entries,
        overwrite: d.entryPolicy === "exact" ? true : d.overwriteEntries,
        ...(Object.keys(changes.previous).length ? { previous: changes.previous } : {}),
        ...(changes.removes.length ? { removes: changes.removes } : {}),
        ...(d.entryPolicy === "exact" ? { exact: true } : {}),
        ...(d.types ? { types: d.types } : {}),
        reason: what,
      });
    }
    else if (!!o.keep !== !d.prune) out.push({ ...base, op: "set-entries", mapId: o.id, entries: [], overwrite: false, reason: `prune: ${d.prune} is recorded` });
    else if ((o.recordType ?? "") !== (d.recordType ?? "")) out.push({ ...base, op: "set-entries", mapId: o.id, entries: [], overwrite: false, reason: `recordType ${d.recordType ?? "(none)"} is recorded` });
    else out.push({ ...base, op: "unchanged", mapId: o.id, reason: "definition and initial entries in place" });
  }
  return replaced;
}

/** Why a pinned program version cannot be used as it is, or null when it can. */
function whyStale(d: DesiredProgram, v: ObservedProgram, observed: ObservedState, replacedMaps: Set<string>): string | null {
  if (v.recordedId !== undefined && v.recordedId !== v.id) return `drift: the pin holds prog id ${v.id}, bpfops pinned prog id ${v.recordedId}`;
  const lost = (d.members ?? []).find((m) => !v.members?.[m.program]);
  if (lost) return `drift: ${lost.program} of the collection is not pinned beside it`;
  for (const [objMap, o] of Object.entries(d.maps)) {
    if (o.bind) {
      if (replacedMaps.has(o.bind)) return `Map/${o.bind} is replaced: the program must be bound to the new map`;
      const m = observed.maps.find((x) => x.name === o.bind);
      if (!m) return `Map/${o.bind} is not pinned: the program must be bound to the map created now`;
      if (!v.mapIds.includes(m.id)) return `drift: bound to map ids ${v.mapIds.join(",") || "none"}, but Map/${o.bind} is map id ${m.id}`;
    } else if (o.pin) {
      const m = observed.objectMaps.find((x) => x.program === d.name && x.map === objMap);
      if (m && !v.mapIds.includes(m.id)) return `drift: bound to map ids ${v.mapIds.join(",") || "none"}, but its pinned map ${objMap} is map id ${m.id}`;
    }
  }
  return null;
}

/**
 * Programs: the pin of the version each Program manifest will run, loading it when needed. A
 * collection's programs are there by <Program>/<program> too, each at its pin beside the primary.
 */
function planPrograms(desired: DesiredState, observed: ObservedState, replacedMaps: Set<string>, out: PlanAction[]): Map<string, { pin: string; id: number | null }> {
  const programs = new Map<string, { pin: string; id: number | null }>();
  const root = observed.root;
  const current = {
    set(name: string, v: { pin: string; id: number | null }, d: DesiredProgram, same?: ObservedProgram) {
      programs.set(name, v);
      if (!d.members) return;
      programs.set(`${name}/${d.program}`, v);
      for (const m of d.members) programs.set(`${name}/${m.program}`, { pin: layout.programPart(v.pin, "program", m.program), id: v.id === null ? null : (same?.members?.[m.program] ?? null) });
    },
  };
  for (const d of desired.programs) {
    const pin = layout.program(root, d.name, d.digest);
    const versions = observed.programs.filter((p) => p.name === d.name);
    const same = versions.find((p) => p.digest === short(d.digest));
    const base = { kind: "Program" as const, name: d.name, source: d.source, pin, digest: d.digest };
    // A pinned object map keeps its contents across versions: one this version declares differently
    // (resized, retyped) cannot be reused, and is refused here rather than by libbpf at load.
    const resized = Object.entries(d.pinnedMaps ?? {})
      .map(([map, def]) => ({ map, def, have: observed.objectMaps.find((x) => x.program === d.name && x.map === map) }))
      .find((x) => x.have && defDiff(x.have.def, x.def).length);
    const onChange = resized ? (d.maps[resized.map]?.onChange ?? "keep") : "keep";
    if (resized?.have && onChange === "keep") {
      current.set(d.name, { pin, id: same?.id ?? null }, d, same);
      out.push({ ...base, op: "conflict", map: resized.map, from: resized.have.def, to: resized.def, reason: `its pinned map ${resized.map} (${resized.have.pin}) is ${describeDef(resized.have.def)}, this version declares ${describeDef(resized.def)} (${defDiff(resized.have.def, resized.def).join(", ")}) and onChange is keep: a pinned object map keeps its contents, so bpfops refuses (onChange: recreate or migrate under maps.${resized.map} says otherwise)` });
      continue;
    }
    // A resized pinned object map under recreate or migrate: a new map beside it, which the new
    // version loads with and which takes the pin when the hooks move, as a Map manifest's does.
    const objectMapPins: Record<string, string> = {};
    if (resized?.have) {
      const diff = defDiff(resized.have.def, resized.def).join(", ");
      const merge = d.maps[resized.map]?.merge ?? "latest";
      out.push({
        kind: "Map",
        name: `${d.name}/${resized.map}`,
        source: d.source,
        pin: resized.have.pin,
        op: onChange === "recreate" ? "recreate" : "migrate",
        def: resized.def,
        fromDef: resized.have.def,
        mapId: resized.have.id,
        entries: [],
        overwrite: false,
        ...(onChange === "migrate" ? { merge } : {}),
        reason: onChange === "recreate" ? `object map definition changed (${diff}); onChange recreate starts it empty` : `object map definition changed (${diff}); onChange migrate copies the entries that fit${merge === "sum" ? ", summing what is counted meanwhile" : ""}`,
      });
      objectMapPins[resized.map] = resized.have.pin + PIN_SUFFIX.next;
    }
    const stale = same ? whyStale(d, same, observed, replacedMaps) : null;
    if (same && !stale) {
      current.set(d.name, { pin, id: same.id }, d, same);
      out.push({ ...base, op: "unchanged", progId: same.id, mapIds: same.mapIds, reason: `digest ${short(d.digest)} loaded as prog id ${same.id}` });
      continue;
    }
    current.set(d.name, { pin, id: null }, d);
    const mapPins: Record<string, string> = {};
    for (const o of Object.values(d.maps)) {
      if (o.bind) mapPins[o.bind] = replacedMaps.has(o.bind) ? `${layout.map(root, o.bind)}~next` : layout.map(root, o.bind);
    }
    const fromDigests = versions.map((v) => v.digest).filter((x) => x !== short(d.digest));
    const previous = versions.find((v) => v.digest !== short(d.digest) && v.spec);
    const changes = previous?.spec ? describeProgramChange(previous.spec, summarizeProgram(d)) : [];
    const reason = stale
      ? `reload ${short(d.digest)}: ${stale}`
      : fromDigests.length
        ? `changed: ${changes.length ? changes.join("; ") : `${fromDigests.join(",")} -> ${short(d.digest)}`} (object ${d.objectPath})`
        : d.members
          ? `new collection of ${d.members.length + 1} programs (${[d.program, ...d.members.map((m) => m.program)].join(", ")}) from ${d.objectPath}`
          : `new program ${d.program} from ${d.objectPath}`;
    const pins = Object.entries(d.maps).filter(([m, o]) => o.pin && !observed.objectMaps.some((x) => x.program === d.name && x.map === m)).map(([m]) => m);
    out.push({ ...base, op: "load", spec: d, mapPins, ...(Object.keys(objectMapPins).length ? { objectMapPins } : {}), replacesPin: !!same, fromDigests, reason: pins.length ? `${reason}; pins its map${pins.length > 1 ? "s" : ""} ${pins.join(", ")} under objmaps/${d.name}` : reason });
  }
  return programs;
}

interface HookTarget {
  kind: "Attachment" | "Chain";
  name: string;
  source: string;
  program: string;
  takeover: boolean;
  order?: DesiredAttachment["order"];
}

function linkPinOf(root: string, kind: "Attachment" | "Chain", name: string, key: string): string {
  return kind === "Attachment" ? layout.link(root, name, key) : layout.chainLink(root, name, key);
}

function blockedReason(h: ConcreteHook, state: ObservedHook | undefined): string | null {
  if (!state) return null;
  if (state.unsupported) return state.error ?? `${h.type} hooks cannot be attached on this kernel`;
  if (!state.present) return state.error ?? `${describeHook(h)}: ${h.type === "cgroup" ? "cgroup" : "interface"} not found (will retry)`;
  return null;
}

/** One hook of an Attachment or a Chain's root: attach, swap, unchanged, conflict or blocked. */
function planHook(t: HookTarget, h: ConcreteHook, observed: ObservedState, current: Map<string, { pin: string; id: number | null }>, ownedIds: Set<number>, out: PlanAction[]): void {
  const key = hookKey(h);
  const linkPin = linkPinOf(observed.root, t.kind, t.name, key);
  const base = { kind: t.kind, name: t.name, source: t.source, hook: { key, hook: h }, linkPin, program: t.program };
  const link = observed.links.find((l) => l.owner === t.kind && l.name === t.name && l.hookKey === key && l.attached);
  const state = observed.hooks[key];
  const want = current.get(t.program);
  const blocked = blockedReason(h, state);
  if (blocked) {
    out.push({ ...base, op: "blocked", reason: blocked });
    return;
  }
  if (!want) throw new Error(`plan: ${t.kind}/${t.name} names Program/${t.program}, which the desired state lacks`);
  const foreign = (state?.progIds ?? []).filter((id) => !ownedIds.has(id));
  if (t.order && (state?.legacy || link?.legacy)) {
    out.push({ ...base, op: "blocked", reason: `order needs tcx links; this kernel attaches tc programs through ${LEGACY_PATH_TEXT.tc}` });
    return;
  }
  const placed = t.order && h.type === "tcx" ? placement(t.order, key, link, observed, out) : undefined;
  if (placed && "blocked" in placed) {
    out.push({ ...base, op: "blocked", reason: placed.blocked });
    return;
  }
  const anchor = placed?.anchor;
  if (placed?.misplaced) {
    // tcx keeps a link where it was made: a new place is a new link. A new program version goes
    // there before the old link goes; the same program cannot be on one hook twice (EEXIST), so
    // it leaves its old place first.
    const where = `${anchor!.position} Attachment/${anchor!.attachment}`;
    if (want.id !== null && want.id === link!.progId) out.push({ ...base, op: "swap", strategy: "re-place", programPin: want.pin, linkId: link!.id, expectProgId: link!.progId, anchor: anchor!, reason: `${placed.misplaced}: detach, then attach ${where} (tcx holds a program once per hook: it misses the packets between the two calls)` });
    else out.push({ ...base, op: "swap", strategy: "make-before-break", programPin: want.pin, linkId: link!.id, expectProgId: link!.progId, anchor: anchor!, reason: `${placed.misplaced}: attach the new version ${where}, then detach the old link` });
    return;
  }
  if (!link) {
    if (isExclusiveHook(h) && foreign.length) {
      const otherRoot = foreign.map((id) => state?.otherRoots?.[id]).find((r) => r);
      const foreignLink = state?.foreignLinks?.[foreign[0]!];
      if (otherRoot) out.push({ ...base, op: "conflict", heldBy: foreign, reason: `held by prog id ${foreign.join(",")} of another bpfops root (${otherRoot}): two roots cannot own one hook` });
      else if (!t.takeover) out.push({ ...base, op: "conflict", heldBy: foreign, reason: `held by prog id ${foreign.join(",")}, which bpfops does not own (set takeover: true to replace it)` });
      else if (!foreignLink) out.push({ ...base, op: "conflict", heldBy: foreign, reason: `prog id ${foreign.join(",")} is attached without a BPF link (netlink), which bpfops cannot take over atomically` });
      else out.push({ ...base, op: "swap", strategy: "takeover", programPin: want.pin, linkId: foreignLink, expectProgId: foreign[0]!, reason: `takeover: replace prog id ${foreign[0]} in link id ${foreignLink}, atomically` });
      return;
    }
    const through = state?.legacy ? `; through ${LEGACY_PATH_TEXT[state.legacy]} (this kernel has no ${h.type} links)` : "";
    out.push({ ...base, op: "attach", programPin: want.pin, ...(anchor ? { anchor, reason: `not attached; goes ${anchor.position} Attachment/${anchor.attachment}` } : { reason: `not attached${through}` }) });
    return;
  }
  if (want.id !== null && link.progId === want.id) {
    out.push({ ...base, op: "unchanged", linkId: link.id, progId: want.id, reason: `runs prog id ${want.id}` });
    return;
  }
  if (link.legacy) {
    const how = { tc: "NLM_F_REPLACE of its cls_bpf filter", "xdp-netlink": "XDP_FLAGS_REPLACE", "cgroup-attach": "BPF_PROG_ATTACH with BPF_F_REPLACE" }[link.legacy];
    out.push({ ...base, op: "swap", strategy: "replace", programPin: want.pin, linkId: link.id, expectProgId: link.progId, reason: `${LEGACY_PATH_TEXT[link.legacy]}: ${how}, expecting prog id ${link.progId}` });
    return;
  }
  const strategy = swapStrategy(h);
  out.push({
    ...base,
    op: "swap",
    strategy,
    programPin: want.pin,
    linkId: link.id,
    expectProgId: link.progId,
    reason: strategy === "link-update" ? `BPF_LINK_UPDATE of link id ${link.id}, expecting prog id ${link.progId}` : "this hook's links cannot be updated: attach new, then detach old",
  });
}

/**
 * Where an ordered Attachment's link goes on one tcx hook: next to its anchor's link, which must be
 * there or attached earlier in this plan (anchors are planned first). An existing link in the
 * wrong place, or one whose anchor is attached only now, is misplaced and is made again.
 */
function placement(order: NonNullable<HookTarget["order"]>, key: string, link: ObservedLink | undefined, observed: ObservedState, out: PlanAction[]): { anchor: HookAnchor; misplaced?: string } | { blocked: string } {
  const theirs = observed.links.find((l) => l.owner === "Attachment" && l.name === order.attachment && l.hookKey === key && l.attached);
  const planned = out.find((a) => a.kind === "Attachment" && a.name === order.attachment && "hook" in a && a.hook.key === key);
  const replanned = planned && (planned.op === "attach" || (planned.op === "swap" && (planned.strategy === "make-before-break" || planned.strategy === "re-place")));
  // An anchor made again before its old link goes sits at its "~new" pin until the commit's end.
  const anchorPin = layout.link(observed.root, order.attachment, key) + (planned?.op === "swap" && planned.strategy === "make-before-break" ? PIN_SUFFIX.new : "");
  const anchor: HookAnchor = { position: order.position, attachment: order.attachment, linkPin: anchorPin };
  if (!theirs && !replanned) return { blocked: `goes ${order.position} Attachment/${order.attachment}, which is not attached on ${key}` };
  if (!link) return { anchor };
  if (replanned) return { anchor, misplaced: `Attachment/${order.attachment} is attached anew` };
  const ids = observed.hooks[key]?.linkIds ?? [];
  const mine = ids.indexOf(link.id);
  const other = ids.indexOf(theirs!.id);
  if (mine < 0 || other < 0) return { anchor };
  if (order.position === "before" ? mine < other : mine > other) return { anchor };
  return { anchor, misplaced: `runs ${order.position === "before" ? "after" : "before"} Attachment/${order.attachment}` };
}

/** Attachments with the ones others are placed next to first, then by name. */
function anchorsFirst(attachments: DesiredAttachment[]): DesiredAttachment[] {
  const byName = new Map(attachments.map((a) => [a.name, a]));
  const done = new Set<string>();
  const out: DesiredAttachment[] = [];
  const visit = (a: DesiredAttachment, depth: number) => {
    if (done.has(a.name) || depth > attachments.length) return; // a cycle was refused by validation
    const anchor = a.order && byName.get(a.order.attachment);
    if (anchor) visit(anchor, depth + 1);
    if (!done.has(a.name)) (done.add(a.name), out.push(a));
  };
  for (const a of attachments) visit(a, 0);
  return out;
}

function planChain(c: DesiredChain, observed: ObservedState, current: Map<string, { pin: string; id: number | null }>, replacedMaps: Set<string>, ownedIds: Set<number>, out: PlanAction[]): void {
  const base = { kind: "Chain" as const, name: c.name, source: c.source, progArrayPin: layout.map(observed.root, c.progArray) };
  const pa = observed.maps.find((m) => m.name === c.progArray);
  const pinOf = (stage: string) => current.get(stage)!.pin;
  if (!pa || replacedMaps.has(c.progArray)) {
    // A new prog-array: the chain is built beside the old one and switched with one root update.
    out.push({
      ...base,
      op: pa ? "swap" : "create",
      strategy: "chain-rebuild",
      stages: c.stages.map((stage, slot) => ({ slot, stage, programPin: pinOf(stage) })),
      reason: pa ? `prog-array ${c.progArray} is replaced: build the chain beside the old one, then update the root` : `new chain of ${c.stages.length} stages`,
    });
  } else {
    c.stages.forEach((stage, slot) => {
      const want = current.get(stage)!;
      const have = pa.slots?.[slot] ?? 0;
      if (want.id !== null && have === want.id) out.push({ ...base, op: "unchanged", slot, expectProgId: have, stage, programPin: want.pin, reason: `slot ${slot} runs prog id ${want.id}` });
      else out.push({ ...base, op: "swap", strategy: "chain-slot", slot, expectProgId: have, stage, programPin: want.pin, reason: `slot ${slot}: one prog-array update` });
    });
    for (let slot = c.stages.length; slot < (pa.slots?.length ?? 0); slot++) {
      const have = pa.slots![slot]!;
      if (have) out.push({ ...base, op: "swap", strategy: "chain-slot", slot, expectProgId: have, stage: null, programPin: null, reason: `slot ${slot} is past the last stage: clear it` });
    }
  }
  for (const h of observedHooksOf(c.hook, observed.interfaces)) planHook({ kind: "Chain", name: c.name, source: c.source, program: c.root, takeover: c.takeover }, h, observed, current, ownedIds, out);
}

export function plan(desired: DesiredState, observed: ObservedState): Plan {
  const out: PlanAction[] = [];
  const root = observed.root;
  const unownedPins = new Set(observed.unowned.map((u) => u.pin));
  const replacedMaps = planMaps(desired, observed, unownedPins, out);
  const current = planPrograms(desired, observed, replacedMaps, out);
  const ownedIds = new Set(observed.programs.map((p) => p.id));
  for (const c of desired.chains) planChain(c, observed, current, replacedMaps, ownedIds, out);
  const wantedHooks = new Set<string>();
  for (const a of anchorsFirst(desired.attachments)) {
    for (const h of observedHooksOf(a.hook, observed.interfaces)) {
      wantedHooks.add(`Attachment/${a.name}/${hookKey(h)}`);
      planHook({ kind: "Attachment", name: a.name, source: a.source, program: a.program, takeover: a.takeover, order: a.order }, h, observed, current, ownedIds, out);
    }
  }
  for (const c of desired.chains) for (const h of observedHooksOf(c.hook, observed.interfaces)) wantedHooks.add(`Chain/${c.name}/${hookKey(h)}`);

  // Prune, last: links first (they hold programs), then program versions, then maps.
  for (const l of observed.links) {
    if (wantedHooks.has(`${l.owner}/${l.name}/${l.hookKey}`)) continue;
    const h = Object.values(observed.hooks).find((x) => hookKey(x.hook) === l.hookKey)?.hook;
    out.push({ kind: l.owner, op: "prune", name: l.name, hook: { key: l.hookKey, hook: h ?? parseHookKey(l.hookKey) ?? { type: "fentry", function: l.hookKey } }, linkPin: l.pin, linkId: l.id, reason: l.attached ? "no longer in the manifests" : "its hook is gone" });
  }
  const desiredPrograms = new Map(desired.programs.map((p) => [p.name, short(p.digest)]));
  for (const p of observed.programs) {
    const d = desiredPrograms.get(p.name);
    if (d === p.digest) continue;
    const versions = observed.programs.filter((x) => x.name === p.name);
    const last = !d && versions[versions.length - 1] === p;
    out.push({
      kind: "Program",
      op: "prune",
      name: p.name,
      pin: p.pin,
      digest: p.digest,
      progId: p.id,
      ...(last ? { objectMapsDir: layout.objectMapsDir(root, p.name) } : {}),
      ...(p.parts?.length ? { parts: p.parts } : {}),
      reason: d
        ? `old version, replaced by ${d}`
        : `no longer in the manifests${last && observed.objectMaps.some((x) => x.program === p.name) ? `; its pinned maps ${observed.objectMaps.filter((x) => x.program === p.name).map((x) => x.map).join(", ")} go with it` : ""}`,
    });
  }
  const desiredMaps = new Set(desired.maps.map((m) => m.name));
  for (const m of observed.maps) {
    if (desiredMaps.has(m.name)) continue;
    if (m.keep) {
      // Its manifest said prune: false when it was applied: it stays (and stays ours) until removed by hand.
      out.push({ kind: "Map", op: "unchanged", name: m.name, pin: m.pin, mapId: m.id, reason: "no longer in the manifests; kept because it was applied with prune: false" });
      continue;
    }
    out.push({ kind: "Map", op: "prune", name: m.name, pin: m.pin, mapId: m.id, reason: "no longer in the manifests" });
  }
  for (const u of observed.unowned) {
    if (u.kind === "Other") continue;
    out.push({ kind: u.kind, op: "unowned", name: u.name, pin: u.pin, reason: "pinned under the root, but bpfops has no record of making it: left alone" });
  }
  return finishPlan(root, out, observed.warnings);
}

export function finishPlan(root: string, actions: PlanAction[], warnings: string[] = []): Plan {
  const summary = Object.fromEntries(ACTION_OPS.map((k) => [k, 0])) as Record<ActionOp, number>;
  for (const a of actions) summary[a.op]++;
  return { root, actions, warnings, summary, changes: actions.some((a) => a.op !== "unchanged" && a.op !== "unowned") };
}

/** Actions that make a plan impossible to apply as a whole. */
export function refusals(p: Plan): PlanAction[] {
  return p.actions.filter((a) => a.op === "conflict" || a.op === "blocked");
}

/** Owned objects that would remain after the plan: zero means the revision prunes everything. */
export function survivors(p: Plan): number {
  return p.actions.filter((a) => a.op !== "prune" && a.op !== "unowned" && a.op !== "conflict" && a.op !== "blocked").length;
}
