// execute(plan, kernel): runs a plan's actions and nothing else, in three phases. Prepare creates
// maps and loads programs beside what runs (nothing traffic sees changes); commit makes each
// change atomically (map switch, prog-array slot, link update as a compare-and-swap against the
// program the plan observed, new links); prune removes what the revision no longer names. Every
// prepare and commit step returns an undo record that owns the handles its undo needs; a failure
// undoes them in reverse. A prune that fails is reported and the rest goes on.
import { BpfopsError } from "../core/errors.ts";
import { describeHook, layout, PIN_SUFFIX } from "../core/layout.ts";
import { summarizeProgram } from "../core/desired.ts";
import type { ChainRebuildAction, ChainSlotAction, HookAction, MapAction, Plan, PlanAction, ProgramAction } from "../core/plan.ts";
import type { Held, KernelPort } from "./kernel-port.ts";
import type { Provenance } from "./provenance.ts";
import type { OnProgress } from "../core/progress.ts";
import type { LibbpfMessage } from "../kernel/object.ts";

export interface UndoRecord {
  step: string;
  undo(): void;
  /** closes the handles the undo would have needed */
  release(): void;
}

export interface ExecuteOptions {
  revision?: string;
  /** object bytes by repository path, for program loads */
  objects: Map<string, Buffer>;
  /** checked between prepare steps: an aborted run unwinds what it prepared */
  signal?: AbortSignal;
  /** called before every step with its number: crash tests kill the process here */
  beforeStep?: (n: number, step: string) => void;
  /** each step as it starts, and the entries of a large map write */
  onProgress?: OnProgress;
}

export interface ExecuteReport {
  steps: string[];
  notes: string[];
  /** what libbpf printed loading each program (warnings and information; debug when asked for) */
  libbpf: Array<LibbpfMessage & { program: string }>;
  /** prunes that failed: the objects stay owned and the next run tries again */
  survivors: Array<{ pin: string; error: string }>;
  timings: { prepareMs: number; commitMs: number; pruneMs: number; kernelMs: number };
}

type Step = { name: string; run: () => Promise<UndoRecord | null> | UndoRecord | null };

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const nothingHeld = () => undefined;

/** Times every call into the port: the kernel's share of the run. */
function timedPort(port: KernelPort, acc: { ns: bigint }): KernelPort {
  return new Proxy(port, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        const t0 = process.hrtime.bigint();
        const done = () => (acc.ns += process.hrtime.bigint() - t0);
        const r = v.apply(target, args);
        if (r instanceof Promise) return r.finally(done);
        done();
        return r;
      };
    },
  });
}

/** Removes a pin bpfops owns: the pin, its provenance record, and the folders it leaves empty. */
function dropOwnedPin(k: KernelPort, pin: string): void {
  k.unpin(pin);
  k.forget(pin);
  k.removeEmptyDirs(pin);
}

/** Where an action's pins come from, for their provenance records (a Map's prune: false included). */
function origin(a: PlanAction, o: ExecuteOptions): Provenance {
  return { manifest: a.source, revision: o.revision, ...("keep" in a && a.keep ? { keep: true } : {}), ...("recordType" in a && a.recordType ? { recordType: a.recordType } : {}) };
}

function releaseAll(held: Array<Held | null | undefined>): () => void {
  return () => {
    for (const h of held) h?.close();
  };
}

// --- prepare ---------------------------------------------------------------------------------

/** Progress of a map write, entry by entry, when there are enough entries for it to take a while. */
function entriesProgress(a: MapAction, o: ExecuteOptions): ((done: number, total: number) => void) | undefined {
  const report = o.onProgress;
  if (!report || !("entries" in a) || a.entries.length < 10_000) return undefined;
  return (done, total) => report({ phase: "write", done, total, item: `Map/${a.name}` });
}

function prepareMap(a: MapAction, k: KernelPort, o: ExecuteOptions): Step | null {
  if (a.op === "create") {
    return {
      name: `create ${a.pin}`,
      run() {
        k.createMap(a.def, a.name, a.pin, a.types, (id) => k.record(a.pin, { ...origin(a, o), id }));
        // A new map holds nothing to overwrite: one batch write (the kernel's batches take no BPF_NOEXIST).
        k.writeEntries(a.pin, a.entries, true, entriesProgress(a, o));
        return {
          step: `create ${a.pin}`,
          undo: () => dropOwnedPin(k, a.pin),
          release: nothingHeld,
        };
      },
    };
  }
  if (a.op === "recreate" || a.op === "migrate") {
    const next = a.pin + PIN_SUFFIX.next;
    return {
      name: `create ${next}`,
      run() {
        k.unpin(next); // a leftover of a killed run
        // The replacement has the types git says, or else the ones the kernel knows for the old map.
        k.createMap(a.def, a.name, next, a.types ?? k.typesOf(a.pin));
        const copied = a.op === "migrate" ? k.copyEntries(a.pin, next) : null;
        // recreate starts empty; migrate keeps what it copied unless git owns the values.
        k.writeEntries(next, a.entries, a.op === "recreate" || a.overwrite || !!a.exact, entriesProgress(a, o));
        if (copied && a.exact) {
          // exact: of what was copied, only the values of git's keys stay.
          const listed = new Set(a.entries.map((e) => e.key));
          k.removeEntries(next, [...copied.snapshot.keys()].filter((key) => !listed.has(key)));
        }
        return { step: `create ${next}`, undo: () => k.unpin(next), release: nothingHeld };
      },
    };
  }
  return null;
}

function prepareProgram(a: ProgramAction, k: KernelPort, o: ExecuteOptions, root: string, printedBy: ExecuteReport["libbpf"]): Step | null {
  if (a.op !== "load") return null;
  return {
    name: `load ${a.pin}`,
    async run() {
      const bytes = o.objects.get(a.spec.objectPath);
      if (!bytes) throw new Error(`execute: no object bytes for ${a.spec.objectPath}`);
      const at = a.replacesPin ? a.pin + PIN_SUFFIX.new : a.pin;
      k.unpin(at); // a leftover of a killed run
      const printed = await k.loadProgram(a, bytes, at);
      for (const m of printed ?? []) printedBy.push({ ...m, program: a.name });
      // The object's own maps that the load pinned (or reused) are bpfops's too.
      for (const m of k.pinsUnder(layout.objectMapsDir(root, a.name))) k.record(m, { ...origin(a, o), id: k.idOf(m) });
      // A collection's other programs and own maps, pinned beside it ("~new" ones follow its rename).
      const parts = k.partsOf(at).map((p) => ({ at: p, final: p.endsWith(PIN_SUFFIX.new) ? p.slice(0, -PIN_SUFFIX.new.length) : p }));
      let stale: Held | null = null;
      if (a.replacesPin) {
        // A stale version sits at the digest's pin: keep it alive for the undo, then replace the pin atomically.
        stale = k.holdPin(a.pin);
        k.rename(at, a.pin);
        for (const p of parts) k.rename(p.at, p.final);
      }
      for (const p of parts) k.record(p.final, { ...origin(a, o), digest: a.digest, id: k.idOf(p.final) });
      k.record(a.pin, { ...origin(a, o), digest: a.digest, id: k.idOf(a.pin), spec: summarizeProgram(a.spec) });
      return {
        step: `load ${a.pin}`,
        undo: () => {
          if (stale) {
            k.unpin(a.pin);
            k.pinHeld(stale, a.pin);
            k.record(a.pin, { ...origin(a, o), digest: a.digest, id: stale.id, spec: summarizeProgram(a.spec) });
          } else {
            dropOwnedPin(k, a.pin);
            for (const p of parts) dropOwnedPin(k, p.final);
          }
        },
        release: releaseAll([stale]),
      };
    },
  };
}

// --- commit ----------------------------------------------------------------------------------

function commitMap(a: MapAction, k: KernelPort, o: ExecuteOptions, notes: string[], carryOvers: Finish[]): Step | null {
  if (a.op === "recreate" || a.op === "migrate") {
    const next = a.pin + PIN_SUFFIX.next;
    const prev = a.pin + PIN_SUFFIX.prev;
    return {
      name: `switch ${a.pin}`,
      run() {
        // What the datapath wrote to the old map since prepare goes over too, just before the switch.
        if (a.op === "migrate") {
          const r = k.copyEntries(a.pin, next);
          notes.push(`Map/${a.name}: migrated ${r.copied} entries${r.dropped ? `, ${r.dropped} did not fit and were left behind` : ""}`);
          // Until every hook runs programs bound to the new map, the datapath still writes to the old one.
          carryOvers.push({
            name: `carry over ${prev}`,
            run() {
              // A tcx link update does not wait for packets in flight on the old program: wait for them here.
              k.waitForReplacedPrograms();
              const n = k.carryOver(prev, a.pin, r.snapshot, a.merge ?? "latest");
              if (n) notes.push(`Map/${a.name}: carried over ${n} entries the datapath wrote during the switch${a.merge === "sum" ? " (summed)" : ""}`);
            },
          });
        }
        const old = k.holdPin(a.pin);
        k.rename(a.pin, prev);
        k.rename(next, a.pin);
        k.record(a.pin, { ...origin(a, o), id: k.idOf(a.pin) });
        return {
          step: `switch ${a.pin}`,
          undo: () => {
            k.rename(a.pin, next);
            k.rename(prev, a.pin);
            k.record(a.pin, { ...origin(a, o), id: old.id });
          },
          release: releaseAll([old]),
        };
      },
    };
  }
  if (a.op === "set-entries") {
    return {
      name: `entries ${a.pin}`,
      run() {
        // Git's entries are written before any is removed: a policy map is never emptier than
        // both the old and the new policy on the way.
        k.writeEntries(a.pin, a.entries, a.overwrite, entriesProgress(a, o));
        if (a.removes?.length) k.removeEntries(a.pin, a.removes.map((e) => e.key));
        k.record(a.pin, { ...origin(a, o), id: a.mapId });
        // Seed only fills what is missing (or puts git's values back): nothing to undo. Exact
        // owns the contents: a failed apply puts them back as they were.
        if (!a.exact) return null;
        const added = a.entries.filter((e) => !(e.key in (a.previous ?? {}))).map((e) => e.key);
        const restore = [...Object.entries(a.previous ?? {}).map(([key, value]) => ({ key, value })), ...(a.removes ?? [])];
        return {
          step: `entries ${a.pin}`,
          undo: () => {
            k.writeEntries(a.pin, restore, true);
            k.removeEntries(a.pin, added);
          },
          release: nothingHeld,
        };
      },
    };
  }
  return null;
}

function commitChainSlot(a: ChainSlotAction, k: KernelPort): Step | null {
  if (a.op !== "swap") return null;
  return {
    name: `slot ${a.slot} of ${a.progArrayPin}`,
    run() {
      const have = k.slotProgram(a.progArrayPin, a.slot);
      if (have !== a.expectProgId) {
        throw new BpfopsError("Conflict", `Chain/${a.name}: slot ${a.slot} of ${a.progArrayPin} runs prog id ${have || "none"}, the plan saw ${a.expectProgId || "none"}; another tool changed it: nothing more was changed`);
      }
      const old = have ? k.holdProgram(have) : null;
      k.setSlot(a.progArrayPin, a.slot, a.programPin);
      return { step: `slot ${a.slot}`, undo: () => k.setSlot(a.progArrayPin, a.slot, old), release: releaseAll([old]) };
    },
  };
}

function commitChainRebuild(a: ChainRebuildAction, k: KernelPort): Step {
  return {
    name: `fill ${a.progArrayPin}`,
    run() {
      // The prog-array is new (created, or switched in this commit): the old chain still runs the old one.
      for (const s of a.stages) k.setSlot(a.progArrayPin, s.slot, s.programPin);
      return null;
    },
  };
}

interface Finish {
  name: string;
  run(): void;
}

function commitHook(a: HookAction, k: KernelPort, o: ExecuteOptions, finishes: Finish[]): Step | null {
  const prov = () => ({ ...origin(a, o), id: k.idOf(a.linkPin), hook: describeHook(a.hook.hook) });
  if (a.op === "attach") {
    return {
      name: `attach ${a.linkPin}`,
      run() {
        if (k.pinExists(a.linkPin)) {
          // A link whose hook went away (the interface was deleted and made again).
          k.unpin(a.linkPin);
          k.forget(a.linkPin);
        }
        k.attach(a.hook.hook, a.programPin, a.linkPin, a.anchor);
        k.record(a.linkPin, prov());
        return {
          step: `attach ${a.linkPin}`,
          undo: () => {
            k.detachLink(a.linkPin);
            dropOwnedPin(k, a.linkPin);
          },
          release: nothingHeld,
        };
      },
    };
  }
  if (a.op !== "swap") return null;
  // A link update, or a legacy path's atomic replace (the kernel port tells them apart by the pin).
  if (a.strategy === "link-update" || a.strategy === "replace") {
    return {
      name: `update ${a.linkPin}`,
      run() {
        const old = k.holdProgram(a.expectProgId);
        const next = k.holdPin(a.programPin);
        try {
          k.updateLink(a.linkPin, next, a.expectProgId);
        } catch (e) {
          old.close();
          next.close();
          throw e;
        }
        return { step: `update ${a.linkPin}`, undo: () => k.updateLink(a.linkPin, old, next.id), release: releaseAll([old, next]) };
      },
    };
  }
  if (a.strategy === "takeover") {
    return {
      name: `take over link id ${a.linkId}`,
      run() {
        const link = k.holdLink(a.linkId);
        const old = k.holdProgram(a.expectProgId);
        const next = k.holdPin(a.programPin);
        try {
          k.updateLink(link, next, a.expectProgId);
        } catch (e) {
          releaseAll([link, old, next])();
          throw e;
        }
        // From here on the link is bpfops's: pinned in its layout, with a record.
        k.pinHeld(link, a.linkPin);
        k.record(a.linkPin, prov());
        return {
          step: `take over link id ${a.linkId}`,
          undo: () => {
            k.updateLink(link, old, next.id);
            dropOwnedPin(k, a.linkPin);
          },
          release: releaseAll([link, old, next]),
        };
      },
    };
  }
  if (a.strategy === "re-place") {
    const anchor = a.anchor!;
    return {
      name: `re-place ${a.linkPin}`,
      run() {
        k.detachLink(a.linkPin);
        k.unpin(a.linkPin);
        k.attach(a.hook.hook, a.programPin, a.linkPin, anchor);
        k.record(a.linkPin, prov());
        return {
          step: `re-place ${a.linkPin}`,
          // Back where it was: on the other side of the same anchor.
          undo: () => {
            k.detachLink(a.linkPin);
            k.unpin(a.linkPin);
            k.attach(a.hook.hook, a.programPin, a.linkPin, { ...anchor, position: anchor.position === "before" ? "after" : "before" });
          },
          release: nothingHeld,
        };
      },
    };
  }
  // make-before-break: the new link goes beside the old one; the old goes once the commit holds.
  const newPin = a.linkPin + PIN_SUFFIX.new;
  return {
    name: `attach ${newPin}`,
    run() {
      k.unpin(newPin);
      k.attach(a.hook.hook, a.programPin, newPin, a.anchor);
      finishes.push({
        name: `detach ${a.linkPin}`,
        run() {
          k.detachLink(a.linkPin);
          // The rename replaces the old link's pin: its last reference goes, and with it the old program's attachment.
          k.rename(newPin, a.linkPin);
          k.record(a.linkPin, prov());
        },
      });
      return {
        step: `attach ${newPin}`,
        undo: () => {
          k.detachLink(newPin);
          k.unpin(newPin);
        },
        release: nothingHeld,
      };
    },
  };
}

// --- prune -----------------------------------------------------------------------------------

function pruneStep(a: PlanAction, k: KernelPort): Finish | null {
  if (a.op !== "prune") return null;
  if (a.kind === "Attachment" || (a.kind === "Chain" && "linkPin" in a)) {
    const h = a as Extract<HookAction, { op: "prune" }>;
    return {
      name: `prune ${h.linkPin}`,
      run() {
        k.detachLink(h.linkPin);
        dropOwnedPin(k, h.linkPin);
      },
    };
  }
  if (a.kind === "Program") {
    return {
      name: `prune ${a.pin}`,
      run() {
        dropOwnedPin(k, a.pin);
        for (const p of a.parts ?? []) dropOwnedPin(k, p);
        if (a.objectMapsDir) for (const p of k.pinsUnder(a.objectMapsDir)) dropOwnedPin(k, p);
      },
    };
  }
  if (a.kind === "Map") {
    return {
      name: `prune ${a.pin}`,
      run: () => dropOwnedPin(k, a.pin),
    };
  }
  return null;
}

/** An error of a step says which manifest's action failed (the kernel error alone names no manifest). */
function namedAfter(e: unknown, a: PlanAction): unknown {
  if (!(e instanceof Error)) return e;
  const who = `${a.kind}/${a.name}`;
  if (!e.message.startsWith(who)) e.message = `${who}${a.source ? ` (${a.source})` : ""}: ${e.message}`;
  return e;
}

export async function execute(plan: Plan, port: KernelPort, opts: ExecuteOptions): Promise<ExecuteReport> {
  const acc = { ns: 0n };
  const k = timedPort(port, acc);
  const report: ExecuteReport = { steps: [], notes: [], libbpf: [], survivors: [], timings: { prepareMs: 0, commitMs: 0, pruneMs: 0, kernelMs: 0 } };
  const undo: UndoRecord[] = [];
  const finishes: Finish[] = [];
  const carryOvers: Finish[] = [];
  let n = 0;
  const before = (name: string) => {
    opts.onProgress?.({ phase: "apply", done: n, item: name });
    opts.beforeStep?.(n++, name);
    report.steps.push(name);
  };
  const run = async (step: Step | null, a: PlanAction) => {
    if (!step) return;
    before(step.name);
    try {
      const u = await step.run();
      if (u) undo.push(u);
    } catch (e) {
      throw namedAfter(e, a);
    }
  };

  let t0 = process.hrtime.bigint();
  try {
    for (const a of plan.actions) {
      opts.signal?.throwIfAborted();
      if (a.kind === "Map" && a.op !== "unowned") await run(prepareMap(a, k, opts), a);
      else if (a.kind === "Program" && a.op !== "unowned") await run(prepareProgram(a, k, opts, plan.root, report.libbpf), a);
    }
    opts.signal?.throwIfAborted();
    report.timings.prepareMs = ms(t0);
    t0 = process.hrtime.bigint();
    // Maps switch first, then chains fill, then hooks move: a hook never runs a program whose maps are not in place.
    for (const a of plan.actions) if (a.kind === "Map" && a.op !== "unowned") await run(commitMap(a, k, opts, report.notes, carryOvers), a);
    for (const a of plan.actions) {
      if (a.kind !== "Chain" || a.op === "unowned") continue;
      if ("slot" in a) await run(commitChainSlot(a, k), a);
      else if ("strategy" in a && a.strategy === "chain-rebuild") await run(commitChainRebuild(a, k), a);
    }
    for (const a of plan.actions) {
      if ((a.kind === "Chain" || a.kind === "Attachment") && "linkPin" in a && a.op !== "prune") await run(commitHook(a, k, opts, finishes), a);
    }
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        u.undo();
      } catch (err) {
        report.notes.push(`undo of ${u.step} failed: ${(err as Error).message}; the next reconcile converges it`);
      }
    }
    for (const u of undo) u.release();
    port.close();
    if (e instanceof Error && report.notes.length) e.message += `\n${report.notes.join("\n")}`;
    throw e;
  }
  for (const u of undo) u.release();
  report.timings.commitMs = ms(t0);

  t0 = process.hrtime.bigint();
  // Hooks first let go of the old programs, then what those wrote to replaced maps is carried over.
  const prunes: Finish[] = [...finishes, ...carryOvers];
  // Replaced maps (this run's, or a killed run's whose switch completed) go once no hook runs a program bound to them.
  for (const p of k.pinsUnder(layout.mapsDir(plan.root)).filter((x) => x.endsWith(PIN_SUFFIX.prev))) {
    prunes.push({ name: `prune ${p}`, run: () => k.unpin(p) });
  }
  for (const a of plan.actions) {
    const p = pruneStep(a, k);
    if (p) prunes.push(p);
  }
  for (const p of prunes) {
    before(p.name);
    try {
      p.run();
    } catch (e) {
      report.survivors.push({ pin: p.name.replace(/^\w+ /, ""), error: (e as Error).message });
    }
  }
  report.timings.pruneMs = ms(t0);
  report.timings.kernelMs = Number(acc.ns) / 1e6;
  port.close();
  return report;
}
