// The pure parts of a rollout: which hosts go in which ring, what a ring's hosts report adds up
// to (done, blocked, failed), and health gates against the figures hosts report. Plain data in
// and out; the controller (controller.ts) does the waiting and the writing.
import type { RolloutManifest } from "../../schemas/manifest.ts";

export type RolloutSpec = RolloutManifest["spec"];
export type Gate = RolloutSpec["gates"][number];

/** One figure a host reports: a declared metric's sample, or a program's run statistics. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The program statistics hosts report (with --bpf-stats), read by program run-time gates. */
export const RUN_TIME = "bpfops_program_run_time_ns";
export const RUN_COUNT = "bpfops_program_run_count";

/** The default when a revision has no Rollout manifest: one canary, then 10%, 50%, all. */
export const DEFAULT_SPEC: RolloutSpec = {
  rings: [
    { name: "canary", hosts: 1 },
    { name: "ten", percent: 10 },
    { name: "half", percent: 50 },
    { name: "all", percent: 100 },
  ],
  bake: "60s",
  readyTimeout: "120s",
  failureBudget: 0,
  gates: [],
  emergency: false,
};

/**
 * Hosts by ring, in ring order. Hosts are taken in name order, each once: a ring's hostSelector
 * takes the remaining hosts it matches; `hosts: n` the next n; `percent: p` the next ones up to
 * p% of the fleet counted over all rings so far (rounded up); a ring with none takes the rest.
 * The last ring takes whatever is left, so every host is in a ring.
 */
export function assignRings(members: Array<{ host: string; labels: Record<string, string> }>, rings: RolloutSpec["rings"]): string[][] {
  const left = [...members].sort((a, b) => a.host.localeCompare(b.host));
  const total = left.length;
  let assigned = 0;
  const out: string[][] = [];
  for (const [i, r] of rings.entries()) {
    let take: typeof left;
    if (i === rings.length - 1) take = left.slice();
    else if (r.hostSelector) take = left.filter((m) => Object.entries(r.hostSelector!.matchLabels).every(([k, v]) => m.labels[k] === v));
    else if (r.hosts !== undefined) take = left.slice(0, r.hosts);
    else if (r.percent !== undefined) take = left.slice(0, Math.max(0, Math.ceil((r.percent * total) / 100) - assigned));
    else take = left.slice();
    for (const m of take) left.splice(left.indexOf(m), 1);
    assigned += take.length;
    out.push(take.map((m) => m.host));
  }
  return out;
}

/** What one host says of the revision it was targeted with. */
export interface HostReport {
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  ready: boolean;
  reason: string;
  message: string;
  errorClass?: string;
  failedRevision?: string;
}

export type HostVerdict = { state: "done" } | { state: "blocked"; why: string } | { state: "failed"; why: string } | { state: "waiting" };

/**
 * A host targeted with digest since targetedAt: done when Ready on it; blocked when its kernel
 * lacks what the revision needs (reported, not a failure); failed when it refused the revision
 * (Stalled) or is not Ready within the timeout; waiting otherwise.
 */
export function hostVerdict(digest: string, r: HostReport | undefined, targetedAt: number, now: number, readyTimeoutMs: number): HostVerdict {
  if (r?.lastAppliedRevision === digest && r.ready) return { state: "done" };
  if (r?.failedRevision === digest && r.errorClass === "Blocked") return { state: "blocked", why: r.message };
  if (r?.lastAttemptedRevision === digest && r.errorClass === "Stalled") return { state: "failed", why: `refused the revision: ${r.message}` };
  if (now - targetedAt > readyTimeoutMs) return { state: "failed", why: `not Ready on the revision within ${Math.round(readyTimeoutMs / 1000)}s${r ? ` (${r.reason}: ${r.message})` : " (no status)"}` };
  return { state: "waiting" };
}

/** The sum of the samples of name whose labels include these. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length ? hits.reduce((a, s) => a + s.value, 0) : undefined;
}

export interface GateResult {
  gate: string;
  ok: boolean;
  /** the figure the bound was checked against, or null when the host did not report it */
  figure: number | null;
  bound: string;
  detail: string;
}

/**
 * A gate on one host, from the samples it reported when Ready on the new revision (before) and at
 * the end of the bake (after). A missing figure fails the gate: a gate nobody can read is not a pass.
 */
export function checkGate(g: Gate, before: Sample[], after: Sample[]): GateResult {
  const bound = [g.min !== undefined ? `>= ${g.min}` : "", g.max !== undefined ? `<= ${g.max}` : ""].filter(Boolean).join(" and ");
  const increase = (name: string, labels?: Record<string, string>) => {
    const a = total(after, name, labels);
    if (a === undefined) return undefined;
    return a - (total(before, name, labels) ?? 0);
  };
  let figure: number | undefined;
  let detail: string;
  if (g.program) {
    const t = increase(RUN_TIME, { program: g.program });
    const n = increase(RUN_COUNT, { program: g.program });
    figure = t === undefined || n === undefined ? undefined : n === 0 ? 0 : t / n;
    detail = `Program/${g.program}: ${figure === undefined ? "no run statistics (is the agent run with --bpf-stats?)" : `${n} runs, ${figure.toFixed(1)} ns per run`}`;
  } else {
    const inc = increase(g.metric!, g.labels);
    const of = g.of ? increase(g.of.metric, g.of.labels) : undefined;
    // A share of nothing: none of nothing is 0%, some of nothing is unbounded.
    figure = inc === undefined ? undefined : g.of ? (of === undefined ? undefined : of === 0 ? (inc === 0 ? 0 : Infinity) : inc / of) : inc;
    const what = `${g.metric}${g.labels ? JSON.stringify(g.labels) : ""}`;
    detail = figure === undefined ? `${what}: not reported` : g.of ? `${what} rose by ${inc}, ${(figure * 100).toFixed(2)}% of ${g.of.metric}'s ${of}` : `${what} rose by ${figure}`;
  }
  const ok = figure !== undefined && (g.min === undefined || figure >= g.min) && (g.max === undefined || figure <= g.max);
  return { gate: g.name, ok, figure: figure ?? null, bound, detail };
}

/** "500ms", "30s", "5m", "1h" in milliseconds. */
export function durationMs(d: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d)!;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}
