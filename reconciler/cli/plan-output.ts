// Renders a plan for people (one line per object, a symbol per change, a summary line; colour
// only on a terminal) and for programs (JSON of schemas/plan.ts).
import type { Plan, PlanAction } from "../core/plan.ts";
import type { VerifyResult } from "../kernel/verify.ts";
import { PlanJson } from "../../schemas/plan.ts";

const SYMBOL: Record<PlanAction["op"], string> = {
  create: "+", load: "+", attach: "+", swap: "~", "set-entries": "~", recreate: "~", migrate: "~", prune: "-", unchanged: "=", conflict: "!", blocked: "!",
};
const COLOUR: Record<string, string> = { "+": "32", "~": "33", "-": "31", "=": "2", "!": "1;31" };

export interface PlanContext {
  source: string;
  revision?: string;
  bpffsRoot: string;
}

function paint(on: boolean, code: string, s: string): string {
  return on ? `\x1b[${code}m${s}\x1b[0m` : s;
}

function actionLine(a: PlanAction): string {
  const id = `${a.kind}/${a.name}${a.slot !== undefined ? `[${a.slot}]` : ""}`;
  const change = a.from && a.to ? `${a.from} -> ${a.to}` : (a.to ?? a.from ?? "");
  const where = a.where ? ` ${a.where}` : a.hook ? ` ${a.hook}` : "";
  const strategy = a.strategy ? ` (${a.strategy})` : "";
  return `${id.padEnd(34)} ${a.op}${where}${strategy}${change ? `: ${change}` : ""} - ${a.reason}`;
}

export function renderPlanText(plan: Plan, ctx: PlanContext, verify: VerifyResult[] | undefined, opts: { colour: boolean; showUnchanged: boolean }): string {
  const lines: string[] = [`plan for ${ctx.source}${ctx.revision ? ` at ${ctx.revision.slice(0, 12)}` : ""} on ${ctx.bpffsRoot}`];
  for (const a of plan.actions) {
    if (a.op === "unchanged" && !opts.showUnchanged) continue;
    const sym = SYMBOL[a.op];
    lines.push(paint(opts.colour, COLOUR[sym]!, `  ${sym} ${actionLine(a)}`));
  }
  const s = plan.summary;
  const parts = [
    [s.create + s.load + s.attach, "to create"],
    [s.swap + s["set-entries"] + s.recreate + s.migrate, "to change"],
    [s.prune, "to prune"],
    [s.unchanged, "unchanged"],
    [s.conflict + s.blocked, "conflicts"],
  ].map(([n, w]) => `${n} ${w}`);
  lines.push(plan.changes ? `Plan: ${parts.join(", ")}.` : `No changes: ${s.unchanged} objects as the manifests say.`);
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
    actions: plan.actions,
    ...(verify ? { verify } : {}),
  });
}
