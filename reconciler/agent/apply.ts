// Applies a revision in three phases. Prepare: create maps, load and verify every new program,
// pin them; nothing traffic sees changes, and a failure unpins what prepare made. Commit: each
// step atomic (link updates, prog-array slot updates, new links), logged so that a failure rolls
// the committed steps back to the old programs. Prune: what bpfops owns and the revision no longer
// names. Every result is pinned as it is made, so a killed run is finished by the next one.
import { readdirSync, renameSync, rmdirSync } from "node:fs";
import { dirname } from "node:path";
import { plan as makePlan, type Plan, type PlanAction } from "../core/plan.ts";
import { hookKey, layout, type ConcreteHook } from "../core/layout.ts";
import { observedHooksOf } from "../core/observed.ts";
import { BpfopsError } from "../core/errors.ts";
import type { DesiredMap } from "../core/desired.ts";
import type { Build } from "./build.ts";
import { observeState } from "../kernel/observe-state.ts";
import { attachPinned, createPinnedMap, linkPin, loadPinnedProgram, writeInitialEntries } from "../kernel/apply-steps.ts";
import { ensureBpffsDir, openPinnedLink, openPinnedMap, openPinnedProgram, unpin, removePinTree, pinExists } from "../kernel/pins.ts";
import { LinkHandle, ProgramHandle, u32Key, type MapHandle } from "../kernel/handles.ts";
import { listLinks } from "../kernel/observe.ts";
import { recordProvenance, forgetProvenance } from "../kernel/provenance.ts";

export interface ApplyOptions {
  revision?: string;
  /** test hook: SIGKILL this process just before step number N (0-based) of prepare, commit or prune */
  killBeforeStep?: number;
}

/** Wall time of a whole apply, from its phase timings. */
export function appliedMs(t: ApplyReport["timings"]): number {
  return t.observeMs + t.prepareMs + t.commitMs + t.pruneMs;
}

export interface ApplyReport {
  plan: Plan;
  /** wall time of each phase, and the part of it spent in kernel calls (load/verify, swaps) */
  timings: { observeMs: number; prepareMs: number; commitMs: number; pruneMs: number; kernelMs: number };
  steps: number;
  /** what the operator should know: entries a migration could not carry over */
  notes: string[];
}

export class ApplyRefusedError extends BpfopsError {
  readonly actions: PlanAction[];
  constructor(actions: PlanAction[]) {
    super(
      actions.some((a) => a.op === "conflict") ? "Conflict" : "Blocked",
      `the revision cannot be applied; nothing was changed:\n${actions.map((a) => `  ${a.kind}/${a.name}${a.where ? ` (${a.where})` : ""}: ${a.reason}${a.source ? ` [${a.source}]` : ""}`).join("\n")}`,
      { errorClass: actions.every((a) => a.op === "blocked") ? "Waiting" : "Stalled" },
    );
    this.actions = actions;
  }
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

class StepCounter {
  n = 0;
  constructor(private readonly killAt: number | undefined) {}
  next(): void {
    if (this.killAt !== undefined && this.n === this.killAt) process.kill(process.pid, "SIGKILL");
    this.n++;
  }
}

export async function applyRevision(build: Build, root: string, opts: ApplyOptions = {}): Promise<ApplyReport> {
  const desired = build.desired;
  let kernelNs = 0n;
  const timed = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    const t0 = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      kernelNs += process.hrtime.bigint() - t0;
    }
  };
  ensureBpffsDir(root);
  recoverInterruptedSwitches(root);
  let t0 = process.hrtime.bigint();
  const observed = observeState(root, desired);
  const plan = makePlan(desired, observed);
  const observeMs = ms(t0);

  const refused = plan.actions.filter((a) => a.op === "conflict" || a.op === "blocked");
  if (refused.length) throw new ApplyRefusedError(refused);
  // Takeover swaps the other tool's link in place; a program attached without a link (netlink)
  // has no link to update, and replacing it would not be atomic in the same way.
  const foreignLinks = new Map<string, number>();
  for (const a of plan.actions.filter((x) => x.strategy === "takeover")) {
    const ownedIds = new Set(observed.programs.map((p) => p.id));
    const foreign = (observed.hooks[a.hook!]?.progIds ?? []).filter((id) => !ownedIds.has(id));
    const link = listLinks().find((l) => l.typeName === "xdp" && foreign.includes(l.progId));
    if (!link) throw new BpfopsError("NotSupported", `${a.kind}/${a.name}: takeover of ${a.where}: prog id ${foreign.join(",")} is attached without a BPF link (netlink), which bpfops cannot take over atomically; nothing was changed`);
    foreignLinks.set(a.hook!, link.id);
  }

  // --- prepare ---------------------------------------------------------------------------
  t0 = process.hrtime.bigint();
  const madePins: string[] = []; // undone if prepare or commit fails
  const programs = new Map<string, ProgramHandle>();
  // Handles the undo log may need (old programs, a taken-over link): closed when the run ends.
  const held: Array<{ close(): void }> = [];
  const hold = <T extends { close(): void }>(h: T): T => (held.push(h), h);
  const replacements = new Map<string, { next: string; def: DesiredMap; migrate: boolean }>();
  const steps = new StepCounter(opts.killBeforeStep);
  const notes: string[] = [];
  try {
    for (const a of plan.actions.filter((x) => x.kind === "Map")) {
      const d = desired.maps.find((m) => m.name === a.name);
      if (!d || (a.op !== "create" && a.op !== "recreate" && a.op !== "migrate")) continue;
      steps.next();
      if (a.op === "create") {
        const m = createPinnedMap(root, d);
        madePins.push(layout.map(root, d.name));
        writeInitialEntries(m, d);
        m.close();
        recordProvenance(root, layout.map(root, d.name), { manifest: d.source, revision: opts.revision });
      } else if (a.op === "recreate" || a.op === "migrate") {
        const next = `${layout.map(root, d.name)}~next`;
        unpin(next); // a leftover of a killed run
        const m = createPinnedMap(root, d, next);
        madePins.push(next);
        if (a.op === "migrate") {
          const r = migrateEntries(openPinnedMap(layout.map(root, d.name)), m);
          notes.push(`Map/${d.name}: migrated ${r.copied} entries${r.dropped ? `, ${r.dropped} did not fit and were left behind` : ""}`);
        }
        writeInitialEntries(m, d);
        m.close();
        replacements.set(d.name, { next, def: d, migrate: a.op === "migrate" });
      }
    }
    const mapPin = (name: string) => replacements.get(name)?.next ?? layout.map(root, name);
    for (const d of desired.programs) {
      const pin = layout.program(root, d.name, d.digest);
      if (pinExists(pin)) {
        programs.set(d.name, openPinnedProgram(pin));
        continue;
      }
      steps.next();
      const p = await timed(() => loadPinnedProgram(root, d, build.objects.get(d.objectPath)!, mapPin));
      madePins.push(pin);
      programs.set(d.name, p);
      recordProvenance(root, pin, { manifest: d.source, revision: opts.revision, digest: d.digest });
    }
  } catch (e) {
    for (const h of programs.values()) h.close();
    for (const p of madePins.reverse()) unpin(p);
    throw e;
  }
  const prepareMs = ms(t0);

  // --- commit ----------------------------------------------------------------------------
  t0 = process.hrtime.bigint();
  const undo: Array<() => void> = [];
  const deferredDetach: Array<{ oldPin: string; newPin: string }> = [];
  try {
    for (const [name, r] of replacements) {
      steps.next();
      const final = layout.map(root, name);
      // What the datapath wrote to the old map since prepare goes over too, just before the switch.
      if (r.migrate) {
        const next = openPinnedMap(r.next);
        migrateEntries(openPinnedMap(final), next);
        next.close();
      }
      renameSync(final, `${final}~prev`);
      renameSync(r.next, final);
      recordProvenance(root, final, { manifest: r.def.source, revision: opts.revision });
      undo.push(() => {
        renameSync(final, r.next);
        renameSync(`${final}~prev`, final);
      });
    }
    for (const a of plan.actions.filter((x) => x.op === "set-entries")) {
      steps.next();
      const m = openPinnedMap(layout.map(root, a.name));
      writeInitialEntries(m, desired.maps.find((d) => d.name === a.name)!);
      m.close();
    }
    for (const c of desired.chains) {
      const chainActions = plan.actions.filter((a) => a.kind === "Chain" && a.name === c.name);
      const pa = openPinnedMap(layout.map(root, c.progArray));
      try {
        for (const a of chainActions.filter((x) => x.op === "swap" || x.op === "create")) {
          const slots = a.slot !== undefined ? [a.slot] : c.stages.map((_, i) => i);
          for (const slot of slots) {
            steps.next();
            const stage = c.stages[slot];
            const old = pa.lookup(u32Key(slot))?.readUInt32LE(0) ?? 0;
            const oldProg = old ? hold(ProgramHandle.fromId(old)) : null;
            await timed(() => pa.setProgramSlot(slot, stage ? programs.get(stage)! : null));
            const paPin = layout.map(root, c.progArray);
            undo.push(() => {
              const m = openPinnedMap(paPin);
              m.setProgramSlot(slot, oldProg);
              m.close();
            });
          }
        }
      } finally {
        pa.close();
      }
      for (const a of chainActions.filter((x) => x.hook)) await commitHook(a, { kind: "Chain", name: c.name }, c.root, observedHooksOf(c.hook, observed.interfaces));
    }
    for (const a of plan.actions.filter((x) => x.kind === "Attachment" && x.hook && x.op !== "prune")) {
      const d = desired.attachments.find((x) => x.name === a.name)!;
      await commitHook(a, { kind: "Attachment", name: d.name }, d.program, observedHooksOf(d.hook, observed.interfaces));
    }
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        // Best effort: the next reconcile converges what could not be undone here.
      }
    }
    for (const h of [...programs.values(), ...held]) h.close();
    for (const p of madePins.reverse()) unpin(p);
    throw e;
  }
  const commitMs = ms(t0);

  async function commitHook(a: PlanAction, owner: { kind: "Attachment" | "Chain"; name: string }, program: string, hooks: ConcreteHook[]): Promise<void> {
    const h = hooks.find((x) => hookKey(x) === a.hook);
    if (!h || a.op === "unchanged") return;
    const prog = programs.get(program)!;
    const pin = linkPin(root, owner, h);
    if (a.op === "attach") {
      steps.next();
      unpin(pin); // a link whose hook went away
      const link = await timed(() => attachPinned(root, owner, prog, h));
      madePins.push(pin);
      undo.push(() => link.detach());
      link.close();
      recordProvenance(root, pin, { manifest: a.source, revision: opts.revision });
      return;
    }
    if (a.op === "swap" && a.strategy === "link-update") {
      steps.next();
      const link = openPinnedLink(pin);
      const old = hold(ProgramHandle.fromId(link.info().progId));
      await timed(() => link.update(prog, old));
      undo.push(() => {
        const l = openPinnedLink(pin);
        l.update(old, prog);
        l.close();
      });
      link.close();
      return;
    }
    if (a.op === "swap" && a.strategy === "takeover") {
      steps.next();
      const link = hold(LinkHandle.fromId(foreignLinks.get(a.hook!)!));
      const old = hold(ProgramHandle.fromId(link.info().progId));
      await timed(() => link.update(prog, old));
      undo.push(() => link.update(old, prog));
      ensureBpffsDir(dirname(pin));
      link.pin(pin); // from here on the link is bpfops's: pinned in its layout
      madePins.push(pin);
      recordProvenance(root, pin, { manifest: a.source, revision: opts.revision });
      return;
    }
    if (a.op === "swap" && a.strategy === "make-before-break") {
      steps.next();
      // Make before break: the new link goes beside the old one; prune detaches the old.
      const newPin = `${pin}~new`;
      unpin(newPin);
      const link = await timed(() => attachPinned(root, owner, prog, h, newPin));
      madePins.push(newPin);
      undo.push(() => link.detach());
      deferredDetach.push({ oldPin: pin, newPin });
      return;
    }
  }

  // --- prune -----------------------------------------------------------------------------
  t0 = process.hrtime.bigint();
  for (const { oldPin, newPin } of deferredDetach) {
    steps.next();
    const old = openPinnedLink(oldPin);
    await timed(() => detachIfSupported(old));
    old.close();
    renameSync(newPin, oldPin); // atomically replaces the old link's pin, releasing the old link
  }
  for (const a of plan.actions.filter((x) => x.op === "prune")) {
    steps.next();
    if (a.kind === "Attachment" || a.kind === "Chain") {
      const pin = a.kind === "Attachment" ? layout.link(root, a.name, a.hook!) : layout.chainLink(root, a.name, a.hook!);
      const link = openPinnedLink(pin);
      await timed(() => detachIfSupported(link));
      link.close();
      unpin(pin);
      forgetProvenance(root, pin);
      removeIfEmpty(dirname(pin));
    } else if (a.kind === "Program") {
      const pin = layout.program(root, a.name, a.from!);
      unpin(pin);
      forgetProvenance(root, pin);
      if (removeIfEmpty(layout.programDir(root, a.name))) removePinTree(layout.objectMapsDir(root, a.name));
    } else if (a.kind === "Map") {
      unpin(layout.map(root, a.name));
      forgetProvenance(root, layout.map(root, a.name));
    }
  }
  for (const name of replacements.keys()) unpin(`${layout.map(root, name)}~prev`);
  for (const h of [...programs.values(), ...held]) h.close();
  const pruneMs = ms(t0);
  return { plan, notes, timings: { observeMs, prepareMs, commitMs, pruneMs, kernelMs: Number(kernelNs) / 1e6 }, steps: steps.n };
}

/**
 * Detaches a link from its hook at once. Links without BPF_LINK_DETACH (perf-event links of
 * tracepoints) detach when their last reference goes: unpinning, right after, does that.
 */
function detachIfSupported(link: LinkHandle): void {
  try {
    link.detach();
  } catch (e) {
    if ((e as { code?: string }).code !== "EOPNOTSUPP") throw e;
  }
}

/** Copies every entry of from into to that fits (same key and value size, room left). */
function migrateEntries(from: MapHandle, to: MapHandle): { copied: number; dropped: number } {
  let copied = 0;
  let dropped = 0;
  try {
    if (from.keySize !== to.keySize || from.valueSize !== to.valueSize) return { copied, dropped: from.entries().length };
    for (const e of from.entries()) {
      try {
        to.update(e.key, e.value);
        copied++;
      } catch {
        dropped++;
      }
    }
    return { copied, dropped };
  } finally {
    from.close();
  }
}

/**
 * A run killed between the two renames of a map switch leaves maps/<name>~prev and no
 * maps/<name>: put the old map back, so that the next plan sees it (and its data) again.
 */
function recoverInterruptedSwitches(root: string): void {
  let names: string[];
  try {
    names = readdirSync(layout.mapsDir(root));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.endsWith("~prev")) continue;
    const final = layout.map(root, n.slice(0, -"~prev".length));
    if (!pinExists(final)) renameSync(`${layout.mapsDir(root)}/${n}`, final);
    else unpin(`${layout.mapsDir(root)}/${n}`);
  }
}

function removeIfEmpty(dir: string): boolean {
  try {
    if (readdirSync(dir).length) return false;
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}
