// plan(desired, observed): the ordered actions that take this host from what it runs to what the
// manifests say, each with its reason and, for swaps, the strategy. Pure and deterministic: the
// same input always gives the same plan; maps first, then programs, chains, attachments, prunes.
import type { DesiredChain, DesiredState, MapDefinition } from "./desired.ts";
import type { ObservedState } from "./observed.ts";
import { observedHooksOf } from "./observed.ts";
import { DIGEST_CHARS, describeHook, hookKey, isExclusiveHook, swapStrategy, type ConcreteHook } from "./layout.ts";

export type ActionOp = "create" | "load" | "attach" | "swap" | "set-entries" | "recreate" | "migrate" | "prune" | "unchanged" | "conflict" | "blocked";
export type Strategy = "link-update" | "chain-slot" | "chain-rebuild" | "make-before-break" | "takeover";

export interface PlanAction {
  op: ActionOp;
  kind: "Map" | "Program" | "Attachment" | "Chain";
  name: string;
  /** the hook key, for attachment and chain actions */
  hook?: string;
  /** a person-readable hook description */
  where?: string;
  /** chain slot, for stage swaps */
  slot?: number;
  strategy?: Strategy;
  /** what is there now and what will be (digests, program names, sizes) */
  from?: string;
  to?: string;
  reason: string;
  /** the manifest file it comes from (none for prunes) */
  source?: string;
}

export interface Plan {
  actions: PlanAction[];
  summary: Record<ActionOp, number>;
  /** anything other than unchanged */
  changes: boolean;
}

const short = (d: string) => d.slice(0, DIGEST_CHARS);

function defDiff(a: MapDefinition, b: MapDefinition): string[] {
  return (["type", "keySize", "valueSize", "maxEntries", "flags"] as const).filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k]} -> ${b[k]}`);
}

function planMaps(desired: DesiredState, observed: ObservedState, out: PlanAction[]): Set<string> {
  const replaced = new Set<string>();
  for (const d of desired.maps) {
    const o = observed.maps.find((m) => m.name === d.name);
    const base = { kind: "Map" as const, name: d.name, source: d.source };
    if (!o) {
      out.push({ ...base, op: "create", to: describeDef(d.def), reason: d.entries.length ? `new map with ${d.entries.length} initial entries` : "new map" });
      continue;
    }
    const diff = defDiff(o.def, d.def);
    if (diff.length) {
      replaced.add(d.name);
      if (d.onChange === "keep") out.push({ ...base, op: "conflict", from: describeDef(o.def), to: describeDef(d.def), reason: `definition changed (${diff.join(", ")}) and onChange is keep: refusing to lose its contents` });
      else if (d.onChange === "recreate") out.push({ ...base, op: "recreate", from: describeDef(o.def), to: describeDef(d.def), reason: `definition changed (${diff.join(", ")}); onChange recreate starts it empty` });
      else out.push({ ...base, op: "migrate", from: describeDef(o.def), to: describeDef(d.def), reason: `definition changed (${diff.join(", ")}); onChange migrate copies the entries that fit` });
      continue;
    }
    const pending = d.entries.filter((e) => {
      const cur = o.entries[e.key];
      return cur === null || cur === undefined || (d.overwriteEntries && cur !== e.value);
    });
    if (pending.length) out.push({ ...base, op: "set-entries", reason: `${pending.length} of ${d.entries.length} initial entries ${d.overwriteEntries ? "missing or different" : "missing"}` });
    else out.push({ ...base, op: "unchanged", reason: "definition and initial entries in place" });
  }
  return replaced;
}

function describeDef(d: MapDefinition): string {
  return `${d.type} ${d.keySize}/${d.valueSize} x${d.maxEntries}`;
}

/** Programs: the id of the loaded version matching the desired digest, if one is loaded. */
function planPrograms(desired: DesiredState, observed: ObservedState, out: PlanAction[]): Map<string, number | null> {
  const current = new Map<string, number | null>();
  for (const d of desired.programs) {
    const versions = observed.programs.filter((p) => p.name === d.name);
    const same = versions.find((p) => p.digest === short(d.digest));
    const base = { kind: "Program" as const, name: d.name, source: d.source };
    if (same) {
      current.set(d.name, same.id);
      out.push({ ...base, op: "unchanged", to: short(d.digest), reason: `digest ${short(d.digest)} loaded as prog id ${same.id}` });
    } else {
      current.set(d.name, null);
      const from = versions.map((v) => v.digest).join(",");
      out.push({ ...base, op: "load", ...(from ? { from } : {}), to: short(d.digest), reason: from ? `changed: ${from} -> ${short(d.digest)} (object ${d.objectPath})` : `new program ${d.program} from ${d.objectPath}` });
    }
  }
  return current;
}

interface HookTarget {
  kind: "Attachment" | "Chain";
  name: string;
  source: string;
  program: string;
  takeover: boolean;
}

/** One hook of an Attachment or a Chain's root: attach, swap, unchanged, conflict or blocked. */
function planHook(t: HookTarget, h: ConcreteHook, observed: ObservedState, current: Map<string, number | null>, ownedIds: Set<number>, out: PlanAction[]): void {
  const key = hookKey(h);
  const base = { kind: t.kind, name: t.name, hook: key, where: describeHook(h), source: t.source };
  const link = observed.links.find((l) => l.owner === t.kind && l.name === t.name && l.hookKey === key && l.attached);
  const state = observed.hooks[key];
  const want = current.get(t.program) ?? null;
  if (state && !state.present) {
    out.push({ ...base, op: "blocked", to: t.program, reason: state.error ?? `${describeHook(h)}: ${h.type === "cgroup" ? "cgroup" : "interface"} not found (will retry)` });
    return;
  }
  const foreign = (state?.progIds ?? []).filter((id) => !ownedIds.has(id));
  if (!link) {
    if (isExclusiveHook(h) && foreign.length) {
      if (t.takeover) out.push({ ...base, op: "swap", strategy: "takeover", from: `foreign prog id ${foreign.join(",")}`, to: t.program, reason: "takeover: replace the program another tool attached, atomically" });
      else out.push({ ...base, op: "conflict", from: `foreign prog id ${foreign.join(",")}`, to: t.program, reason: `held by prog id ${foreign.join(",")}, which bpfops does not own (set takeover: true to replace it)` });
      return;
    }
    out.push({ ...base, op: "attach", to: t.program, reason: "not attached" });
    return;
  }
  if (want !== null && link.progId === want) {
    out.push({ ...base, op: "unchanged", to: t.program, reason: `runs prog id ${want}` });
    return;
  }
  const strategy = swapStrategy(h);
  out.push({ ...base, op: "swap", strategy, from: `prog id ${link.progId}`, to: t.program, reason: strategy === "link-update" ? "new program version: BPF_LINK_UPDATE against the old program" : "this hook's links cannot be updated: attach new, then detach old" });
}

function planChain(c: DesiredChain, observed: ObservedState, current: Map<string, number | null>, replacedMaps: Set<string>, ownedIds: Set<number>, out: PlanAction[]): void {
  const base = { kind: "Chain" as const, name: c.name, source: c.source };
  const pa = observed.maps.find((m) => m.name === c.progArray);
  if (!pa || replacedMaps.has(c.progArray)) {
    // A new prog-array: the chain is built beside the old one and switched with one root update.
    out.push({ ...base, op: pa ? "swap" : "create", strategy: "chain-rebuild", to: c.stages.join(" -> "), reason: pa ? `prog-array ${c.progArray} is replaced: build the chain beside the old one, then update the root` : `new chain of ${c.stages.length} stages` });
  } else {
    c.stages.forEach((stage, slot) => {
      const want = current.get(stage) ?? null;
      const have = pa.slots?.[slot] ?? 0;
      if (want !== null && have === want) out.push({ ...base, op: "unchanged", slot, to: stage, reason: `slot ${slot} runs prog id ${want}` });
      else out.push({ ...base, op: "swap", slot, strategy: "chain-slot", from: have ? `prog id ${have}` : "empty", to: stage, reason: `slot ${slot}: one prog-array update` });
    });
    for (let slot = c.stages.length; slot < (pa.slots?.length ?? 0); slot++) {
      if (pa.slots![slot]) out.push({ ...base, op: "swap", slot, strategy: "chain-slot", from: `prog id ${pa.slots![slot]}`, to: "empty", reason: `slot ${slot} is past the last stage: clear it` });
    }
  }
  for (const h of observedHooksOf(c.hook, observed.interfaces)) planHook({ kind: "Chain", name: c.name, source: c.source, program: c.root, takeover: c.takeover }, h, observed, current, ownedIds, out);
}

export function plan(desired: DesiredState, observed: ObservedState): Plan {
  const out: PlanAction[] = [];
  const replacedMaps = planMaps(desired, observed, out);
  const current = planPrograms(desired, observed, out);
  const ownedIds = new Set(observed.programs.map((p) => p.id));
  for (const c of desired.chains) planChain(c, observed, current, replacedMaps, ownedIds, out);
  const wantedHooks = new Set<string>();
  for (const a of desired.attachments) {
    for (const h of observedHooksOf(a.hook, observed.interfaces)) {
      wantedHooks.add(`Attachment/${a.name}/${hookKey(h)}`);
      planHook({ kind: "Attachment", name: a.name, source: a.source, program: a.program, takeover: a.takeover }, h, observed, current, ownedIds, out);
    }
  }
  for (const c of desired.chains) for (const h of observedHooksOf(c.hook, observed.interfaces)) wantedHooks.add(`Chain/${c.name}/${hookKey(h)}`);

  // Prune, last: links first (they hold programs), then program versions, then maps.
  for (const l of observed.links) {
    if (!wantedHooks.has(`${l.owner}/${l.name}/${l.hookKey}`)) out.push({ op: "prune", kind: l.owner, name: l.name, hook: l.hookKey, from: `link id ${l.id}`, reason: l.attached ? "no longer in the manifests" : "its hook is gone" });
  }
  const desiredPrograms = new Map(desired.programs.map((p) => [p.name, short(p.digest)]));
  for (const p of observed.programs) {
    const d = desiredPrograms.get(p.name);
    if (d !== p.digest) out.push({ op: "prune", kind: "Program", name: p.name, from: p.digest, reason: d ? `old version, replaced by ${d}` : "no longer in the manifests" });
  }
  const desiredMaps = new Set(desired.maps.map((m) => m.name));
  for (const m of observed.maps) if (!desiredMaps.has(m.name)) out.push({ op: "prune", kind: "Map", name: m.name, from: `map id ${m.id}`, reason: "no longer in the manifests" });

  const summary = Object.fromEntries((["create", "load", "attach", "swap", "set-entries", "recreate", "migrate", "prune", "unchanged", "conflict", "blocked"] as const).map((k) => [k, 0])) as Record<ActionOp, number>;
  for (const a of out) summary[a.op]++;
  return { actions: out, summary, changes: out.some((a) => a.op !== "unchanged") };
}
