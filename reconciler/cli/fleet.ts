// `bpfops rollout start|status|pause|resume|abort|rollback` and `bpfops fleet status`: the fleet
// commands. The CLI talks to etcd only: a rollout request or command is a key the leading
// controller (cli/controller.ts) picks up, and status is read from what controller and agents wrote.
import { BpfopsError } from "../core/errors.ts";
import { openFleetStore, type EtcdFlags, type FleetStore, type HostStatus, type Target } from "../fleet/fleet-store.ts";
import { FINISHED, hostRows, newRolloutId, type RolloutCommand, type RolloutRequest, type RolloutState } from "../fleet/rollout-state.ts";

/** `rollout start`: asks the leading controller for a rollout; with --wait, follows it to its end. */
export async function runRolloutStart(o: EtcdFlags & { revision?: string; emergency?: boolean; wait?: boolean; output: "text" | "json"; timeout: number }): Promise<number> {
  const store = openFleetStore(o);
  try {
    const id = newRolloutId();
    const req: RolloutRequest = { ...(o.revision ? { revision: o.revision } : {}), ...(o.emergency ? { emergency: true } : {}), at: new Date().toISOString() };
    await store.putJson(store.key("requests", id), req);
    if (!o.wait) {
      console.log(o.output === "json" ? JSON.stringify({ id, requested: req }) : `rollout ${id} requested${o.emergency ? " (emergency)" : ""}; follow it with: bpfops rollout status ${id}`);
      return 0;
    }
    const end = Date.now() + o.timeout * 1000;
    for (;;) {
      const r = await store.getJson<RolloutState>(store.key("rollouts", id));
      if (r && FINISHED.includes(r.phase)) {
        console.log(o.output === "json" ? JSON.stringify(r) : `rollout ${id} ${r.phase}: ${r.message}`);
        return r.phase === "Succeeded" ? 0 : 1;
      }
      if (Date.now() > end) throw new BpfopsError("Timeout", `rollout ${id} not finished after ${o.timeout}s: ${r ? `${r.phase}, ${r.message}` : "no controller picked it up (is one running?)"}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    store.close();
  }
}

export async function runRolloutCommand(command: RolloutCommand, o: EtcdFlags & { id?: string }): Promise<number> {
  const store = openFleetStore(o);
  try {
    const id = o.id ?? (await store.getJson<string>(store.key("active")));
    const r = id ? await store.getJson<RolloutState>(store.key("rollouts", id)) : undefined;
    if (!r) throw new BpfopsError("NotFound", id ? `no rollout ${id} in fleet ${o.fleet}` : `fleet ${o.fleet} has had no rollout`);
    if (command !== "rollback" && FINISHED.includes(r.phase)) throw new BpfopsError("InvalidArgument", `rollout ${r.id} is ${r.phase}: nothing to ${command}`);
    await store.putJson(store.key("commands", r.id), { command, at: new Date().toISOString() });
    console.log(`${command} of rollout ${r.id} requested`);
    return 0;
  } finally {
    store.close();
  }
}

interface FleetView {
  rollout?: RolloutState;
  stable?: Target;
  hosts: ReturnType<typeof hostRows>;
}

async function readView(store: FleetStore, id?: string): Promise<FleetView> {
  const rid = id ?? (await store.getJson<string>(store.key("active")));
  const rollout = rid ? await store.getJson<RolloutState>(store.key("rollouts", rid)) : undefined;
  const [statuses, members, targets, stable] = await Promise.all([store.statuses(), store.members(), store.targets(), store.getJson<Target>(store.key("stable"))]);
  return { ...(rollout ? { rollout } : {}), ...(stable ? { stable } : {}), hosts: hostRows(rollout, statuses, new Set(members.keys()), targets) };
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** Per ring: hosts done of total, apply time p50 and p99, and the gates' figures. */
export function ringSummary(v: FleetView): Array<{ ring: string; done: number; total: number; blocked: number; failed: number; p50Ms?: number; p99Ms?: number; gates: string[] }> {
  const r = v.rollout;
  if (!r) return [];
  const status = new Map(v.hosts.map((h) => [h.host, h.status]));
  return r.rings.map((ring) => {
    const times = ring.hosts.map((h) => status.get(h)).filter((s): s is HostStatus => !!s && s.lastAppliedRevision === r.digest && s.applyMs !== undefined).map((s) => s.applyMs!);
    const p50 = pct(times, 50);
    const p99 = pct(times, 99);
    return {
      ring: ring.name,
      done: ring.hosts.filter((h) => status.get(h)?.lastAppliedRevision === r.digest && status.get(h)?.ready).length,
      total: ring.hosts.length,
      blocked: Object.keys(ring.blocked).length,
      failed: ring.failures.length,
      ...(p50 !== undefined ? { p50Ms: Math.round(p50) } : {}),
      ...(p99 !== undefined ? { p99Ms: Math.round(p99) } : {}),
      gates: ring.gates.map((g) => `${g.host} ${g.gate}: ${g.figure ?? "?"} (${g.bound}) ${g.ok ? "ok" : "FAILED"}`),
    };
  });
}

function renderText(v: FleetView): string {
  const out: string[] = [];
  const r = v.rollout;
  if (r) {
    out.push(`rollout ${r.id} ${r.phase}${r.emergency ? " (emergency)" : ""}: ${r.revision} ${r.digest.slice(0, 19)}  ${r.message}`);
    for (const s of ringSummary(v)) out.push(`  ring ${s.ring}: ${s.done}/${s.total} done${s.blocked ? `, ${s.blocked} blocked` : ""}${s.failed ? `, ${s.failed} failed` : ""}${s.p50Ms !== undefined ? `, apply p50 ${s.p50Ms} ms p99 ${s.p99Ms} ms` : ""}${s.gates.length ? `; gates: ${s.gates.join("; ")}` : ""}`);
  } else out.push("no rollout yet");
  const rows = v.hosts.map((h) => [h.host, h.ring, h.status?.lastAppliedRevision?.slice(0, 19) ?? "-", h.status ? (h.status.ready ? "True" : "False") : "Unknown", `${h.member ? "" : "(not registered) "}${h.status?.errorClass === "Blocked" ? "Blocked: " : ""}${h.status?.message ?? "no status"}`]);
  const header = ["HOST", "RING", "REVISION", "READY", "MESSAGE"];
  const widths = header.map((x, i) => Math.max(x.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  out.push(line(header), ...rows.map(line));
  return out.join("\n");
}

/**
 * `fleet status` (and `rollout status`): hosts by ring, with revision, Ready and message. With
 * --watch, a live view on a terminal (redrawn in place) and JSON lines otherwise, until the
 * rollout ends.
 */
export async function runFleetStatus(o: EtcdFlags & { id?: string; watch?: boolean; output: "text" | "json" }): Promise<number> {
  const store = openFleetStore(o);
  try {
    if (!o.watch) {
      const v = await readView(store, o.id);
      console.log(o.output === "json" ? JSON.stringify({ ...v, rings: ringSummary(v) }, null, 2) : renderText(v));
      return v.rollout && ["Failed", "RolledBack", "Aborted"].includes(v.rollout.phase) ? 1 : 0;
    }
    const tty = process.stdout.isTTY && o.output === "text";
    let last = "";
    let drawn = 0;
    for (;;) {
      const v = await readView(store, o.id);
      const text = tty ? renderText(v) : JSON.stringify({ at: new Date().toISOString(), phase: v.rollout?.phase, message: v.rollout?.message, rings: ringSummary(v) });
      if (text !== last) {
        if (tty) {
          // Redraw in place: up over what was drawn, clear to the end, draw.
          process.stdout.write(`${drawn ? `\x1b[${drawn}A\r\x1b[J` : ""}${text}\n`);
          drawn = text.split("\n").length;
        } else console.log(text);
        last = text;
      }
      if (!v.rollout || FINISHED.includes(v.rollout.phase)) return v.rollout && v.rollout.phase !== "Succeeded" ? 1 : 0;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    store.close();
  }
}
