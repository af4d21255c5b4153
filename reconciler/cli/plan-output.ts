// Renders a plan for people (one line per object, a symbol per change, a summary line; colour
// only on a terminal) and for programs (JSON of schemas/plan.ts). Both are made from the actions'
// typed operands through one view, so text and JSON always say the same thing.
import type { Plan, PlanAction } from "../core/plan.ts";
import { describeDef } from "../core/plan.ts";
import { describeHook, DIGEST_CHARS } from "../core/layout.ts";
import type { VerifyResult } from "../host/verify.ts";
import { PlanJson, type PlanActionJson } from "../../schemas/plan.ts";
import { decodeTyped } from "../core/typed-values.ts";
import type { TypeDesc } from "../core/type-desc.ts";

const SYMBOL: Record<PlanAction["op"], string> = {
  create: "+", load: "+", attach: "+", swap: "~", "set-entries": "~", recreate: "~", migrate: "~", prune: "-", unchanged: "=", conflict: "!", blocked: "!", unowned: "?",
};
const COLOUR: Record<string, string> = { "+": "32", "~": "33", "-": "31", "=": "2", "!": "1;31", "?": "35" };

export interface PlanContext {
  source: string;
  revision?: string;
  bpffsRoot: string;
}

function paint(on: boolean, code: string, s: string): string {
  return on ? `\x1b[${code}m${s}\x1b[0m` : s;
}

const short = (d: string) => d.slice(0, DIGEST_CHARS);

const JSON_ENTRIES = 1000;
const TEXT_ENTRIES = 20;

/** Each entry a set-entries action adds (+), changes (~) or removes (-), the first `limit` of them. */
function entryChangeList(a: Extract<PlanAction, { op: "set-entries" }>, limit: number): NonNullable<PlanActionJson["entryChanges"]> {
  const previous = a.previous ?? {};
  const all: Array<{ change: "+" | "~" | "-"; key: string; value: string; from?: string }> = [
    ...a.entries.map((e) => (e.key in previous ? { change: "~" as const, key: e.key, value: e.value, from: previous[e.key]! } : { change: "+" as const, key: e.key, value: e.value })),
    ...(a.removes ?? []).map((e) => ({ change: "-" as const, key: e.key, value: e.value })),
  ];
  const changed = Object.keys(previous).length;
  const decode = (hex: string, t: TypeDesc | undefined) => (t ? decodeTyped(Buffer.from(hex, "hex"), t) : `hex:${hex}`);
  const list = all.slice(0, limit).map((e) =>
    a.types ? { ...e, decoded: { key: decode(e.key, a.types.key), value: decode(e.value, a.types.value), ...(e.from !== undefined ? { from: decode(e.from, a.types.value) } : {}) } } : e,
  );
  return { added: a.entries.length - changed, changed, removed: a.removes?.length ?? 0, list, truncated: all.length > limit };
}

/** A decoded value as YAML flow text: { saddr: 10.0.0.1, dport: 80 }. */
export function flow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flow).join(", ")}]`;
  if (v && typeof v === "object") return `{ ${Object.entries(v).map(([k, x]) => `${k}: ${flow(x)}`).join(", ")} }`;
  return String(v);
}

function entryLines(a: PlanAction): string[] {
  if (a.op !== "set-entries" || a.kind !== "Map") return [];
  const c = entryChangeList(a, TEXT_ENTRIES);
  const lines = c.list.map((e) => {
    const [key, value, from] = e.decoded ? [flow(e.decoded.key), flow(e.decoded.value), flow(e.decoded.from)] : [e.key, e.value, e.from];
    return `      ${e.change} ${key} ${e.change === "~" ? `${from} -> ${value}` : e.change === "+" ? `-> ${value}` : `(was ${value})`}`;
  });
  const total = c.added + c.changed + c.removed;
  if (c.truncated) lines.push(`      ... and ${total - c.list.length} more`);
  return lines;
}

/** What an action changes, for people and for JSON: derived from its operands. */
export function actionView(a: PlanAction): PlanActionJson {
  const v: PlanActionJson = { op: a.op, kind: a.kind, name: a.name, reason: a.reason, ...(a.source ? { source: a.source } : {}) };
  if ("pin" in a) v.pin = a.pin;
  if ("hook" in a) Object.assign(v, { hook: a.hook.key, where: describeHook(a.hook.hook), linkPin: a.linkPin });
  if ("strategy" in a && a.strategy) v.strategy = a.strategy;
  if ("slot" in a) v.slot = a.slot;
  if ("linkId" in a) v.linkId = a.linkId;
  if ("expectProgId" in a) v.expectProgId = a.expectProgId;
  if ("progArrayPin" in a) v.pin = a.progArrayPin;
  switch (a.kind) {
    case "Map":
      if ("mapId" in a && a.mapId !== undefined) v.mapId = a.mapId;
      if ("def" in a && a.def) v.to = describeDef(a.def);
      if ("fromDef" in a && a.fromDef) v.from = describeDef(a.fromDef);
      if (a.op === "set-entries") {
        v.entries = a.entries.length;
        v.entryChanges = entryChangeList(a, JSON_ENTRIES);
      }
      if (a.op === "prune") v.from = `map id ${a.mapId}`;
      break;
    case "Program":
      if (a.op === "unowned") break;
      v.digest = a.digest;
      if (a.op === "load") {
        v.to = short(a.digest);
        if (a.fromDigests.length) v.from = a.fromDigests.join(",");
      } else if (a.op === "unchanged") {
        v.to = short(a.digest);
        v.progId = a.progId;
      } else if (a.op === "prune") {
        v.from = a.digest;
        v.progId = a.progId;
      } else if (a.op === "conflict") {
        v.from = `${a.map} ${describeDef(a.from)}`;
        v.to = `${a.map} ${describeDef(a.to)}`;
      }
      break;
    default:
      if ("stages" in a) v.to = a.stages.map((s) => s.stage).join(" -> ");
      else if ("stage" in a) {
        v.from = a.expectProgId ? `prog id ${a.expectProgId}` : "empty";
        v.to = a.stage ?? "empty";
      } else if ("program" in a) {
        v.to = a.program;
        if ("expectProgId" in a) v.from = `prog id ${a.expectProgId}`;
        if ("heldBy" in a && a.heldBy) v.from = `foreign prog id ${a.heldBy.join(",")}`;
      } else if (a.op === "prune" && "linkId" in a) v.from = `link id ${a.linkId}`;
  }
  return v;
}

function actionLine(a: PlanAction): string {
  const v = actionView(a);
  const id = `${a.kind}/${a.name}${v.slot !== undefined ? `[${v.slot}]` : ""}`;
  const change = v.from && v.to ? `${v.from} -> ${v.to}` : (v.to ?? v.from ?? "");
  const where = v.where ? ` ${v.where}` : "";
  const strategy = v.strategy ? ` (${v.strategy})` : "";
  const unowned = a.op === "unowned" ? ` ${v.pin}` : "";
  return `${id.padEnd(34)} ${a.op}${where}${unowned}${strategy}${change ? `: ${change}` : ""} - ${a.reason}`;
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  const parts = [
    [s.create + s.load + s.attach, "to create"],
    [s.swap + s["set-entries"] + s.recreate + s.migrate, "to change"],
    [s.prune, "to prune"],
    [s.unchanged, "unchanged"],
    [s.conflict + s.blocked, "conflicts"],
    ...(s.unowned ? [[s.unowned, "not bpfops's"] as const] : []),
  ].map(([n, w]) => `${n} ${w}`);
  return plan.changes ? `Plan: ${parts.join(", ")}.` : `No changes: ${s.unchanged} objects as the manifests say.${s.unowned ? ` ${s.unowned} pins under the root are not bpfops's.` : ""}`;
}

export function renderPlanText(plan: Plan, ctx: PlanContext, verify: VerifyResult[] | undefined, opts: { colour: boolean; showUnchanged: boolean }): string {
  const lines: string[] = [`plan for ${ctx.source}${ctx.revision ? ` at ${ctx.revision.slice(0, 12)}` : ""} on ${ctx.bpffsRoot}`];
  for (const a of plan.actions) {
    if (a.op === "unchanged" && !opts.showUnchanged) continue;
    const sym = SYMBOL[a.op];
    lines.push(paint(opts.colour, COLOUR[sym]!, `  ${sym} ${actionLine(a)}`));
    lines.push(...entryLines(a));
  }
  for (const w of plan.warnings) lines.push(paint(opts.colour, "33", `warning: ${w}`));
  lines.push(summaryLine(plan));
  if (verify) {
    lines.push(`verifier (${verify.length} new or changed program${verify.length === 1 ? "" : "s"}):`);
    for (const v of verify) {
      if (v.verdict === "accepted") lines.push(paint(opts.colour, "32", `  ok       Program/${v.program}: ${v.verifiedInstructions} instructions verified in ${v.loadMs!.toFixed(1)} ms`));
      else {
        lines.push(paint(opts.colour, "1;31", `  ${v.verdict.padEnd(8)} Program/${v.program} (${v.source}): ${v.error}`));
        if (v.logTail) lines.push(...v.logTail.split("\n").map((l) => `      | ${l}`));
      }
    }
  }
  return lines.join("\n");
}

export function planJson(plan: Plan, ctx: PlanContext, verify: VerifyResult[] | undefined): PlanJson {
  return PlanJson.parse({
    apiVersion: "bpfops.dev/v1alpha1",
    kind: "Plan",
    source: ctx.source,
    ...(ctx.revision ? { revision: ctx.revision } : {}),
    bpffsRoot: ctx.bpffsRoot,
    changes: plan.changes,
    summary: plan.summary,
    ...(plan.warnings.length ? { warnings: plan.warnings } : {}),
    actions: plan.actions.map(actionView),
    ...(verify ? { verify } : {}),
  });
}
