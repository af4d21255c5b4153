// The kernel as execute() sees it: the few operations a plan's steps perform, in terms of pins,
// ids and held objects. realKernelPort() does them on the live kernel under one bpffs root; unit
// tests give execute() a fake with the same shape to check ordering and undo.
import { renameSync, readdirSync, rmdirSync } from "node:fs";
import { basename, dirname, relative } from "node:path";
import { LinkHandle, ProgramHandle, u32Key, type MapHandle } from "../kernel/handles.ts";
import { waitForReplacedPrograms } from "../kernel/attach.ts";
import { ensureBpffsDir, openPin, openPinnedLink, openPinnedMap, openPinnedProgram, pinExists, pinKind, pinnedId, unpin, listPinPaths } from "../kernel/pins.ts";
import { BpfopsError } from "../core/errors.ts";
import { describeHook, isProgramPart, layout, parseHookKey, PIN_SUFFIX, type ConcreteHook } from "../core/layout.ts";
import { LEGACY_PATH_TEXT, legacyAttach, legacyDetach, legacyPathOf, legacyReplace, recordedLegacyPath } from "./legacy-hooks.ts";
import type { MapDefinition } from "../core/desired.ts";
import type { HookAnchor, MapEntryHex, ProgramAction } from "../core/plan.ts";
import { attachToHook, carryOver, newMap, copyEntries, loadProgramVersion, removeEntries, writeInitialEntries } from "./kernel-steps.ts";
import { ProvenanceStore, type Provenance } from "./provenance.ts";
import type { MapTypes } from "../core/validate.ts";
import { kernelMapTypes } from "./map-reader.ts";
import type { LibbpfMessage } from "../kernel/object.ts";

/** A kernel object kept alive by the undo record that holds it. */
export interface Held {
  readonly id: number;
  close(): void;
}

export interface KernelPort {
  /** Creates a map and pins it at pin. */
  /**
   * Creates a map and pins it at pin; beforePin gets its id first, so that a record of it exists
   * before the pin does (a kill in between leaves a record of nothing, never a pin nobody owns).
   */
  createMap(def: MapDefinition, name: string, pin: string, types?: MapTypes, beforePin?: (id: number) => void): void;
  /** Writes initial entries (overwrite: git's values over what is there); onEntries reports a long write. */
  writeEntries(pin: string, entries: MapEntryHex[], overwrite: boolean, onEntries?: (done: number, total: number) => void): number;
  /** The key and value types the kernel's BTF gives the map pinned at pin (a replacement keeps them). */
  typesOf(pin: string): MapTypes | undefined;
  /** Removes entries by hex key (reset to zero in arrays); keys already gone are skipped. */
  removeEntries(pin: string, keys: string[]): number;
  /** Copies what fits from one pinned map into another; the snapshot is what was read (hex key -> value). */
  copyEntries(fromPin: string, toPin: string): { copied: number; dropped: number; snapshot: Map<string, Buffer> };
  /** Returns once no CPU runs a program a hook ran before this commit. */
  waitForReplacedPrograms(): void;
  /** Carries over what changed in fromPin since the snapshot: the latest value, or (sum) the difference added. */
  carryOver(fromPin: string, toPin: string, snapshot: Map<string, Buffer>, merge: "latest" | "sum"): number;
  /** Loads a program version (its object maps pin under objmaps/) and pins it at pin; returns what libbpf printed. */
  loadProgram(action: Extract<ProgramAction, { op: "load" }>, bytes: Buffer, pin: string): Promise<LibbpfMessage[] | void>;
  /** Opens what is pinned at pin, to keep it alive (and re-pin it) while an undo may need it. */
  holdPin(pin: string): Held;
  holdProgram(id: number): Held;
  pinHeld(h: Held, pin: string): void;
  pinExists(pin: string): boolean;
  rename(from: string, to: string): void;
  unpin(pin: string): void;
  /** The program id in a prog-array slot (0: empty). */
  slotProgram(progArrayPin: string, slot: number): number;
  setSlot(progArrayPin: string, slot: number, program: string | Held | null): void;
  /** attaches and pins the link; with an anchor, next to the link pinned at anchor.linkPin (tcx) */
  attach(hook: ConcreteHook, programPin: string, linkPin: string, anchor?: HookAnchor): void;
  /** BPF_LINK_UPDATE as a compare-and-swap: Conflict when the link no longer runs expectProgId. */
  updateLink(link: string | Held, program: string | Held, expectProgId: number): void;
  holdLink(id: number): Held;
  detachLink(pin: string): void;
  record(pin: string, p: Provenance): void;
  forget(pin: string): void;
  /** The ids of what is pinned at pin (for provenance records). */
  idOf(pin: string): number;
  /** Pins under dir (object maps a load made), for provenance. */
  pinsUnder(dir: string): string[];
  /** A collection version's parts pinned beside pin (layout.programPart), "~new" ones for a "~new" pin. */
  partsOf(pin: string): string[];
  removeEmptyDirs(pin: string): void;
  close(): void;
}

class HeldProgram implements Held {
  constructor(readonly handle: ProgramHandle) {}
  get id(): number {
    return this.handle.id;
  }
  close(): void {
    this.handle.close();
  }
}
class HeldAny implements Held {
  constructor(
    readonly handle: ProgramHandle | MapHandle | LinkHandle,
    readonly id: number,
  ) {}
  close(): void {
    this.handle.close();
  }
}

function conflict(what: string, cause?: unknown): BpfopsError {
  return new BpfopsError("Conflict", `${what}; another tool changed it after the plan was made: nothing more was changed, and what this run changed was rolled back`, { cause });
}

/** The hook a link pin (or a legacy attachment's program pin) is for, from its key. */
function hookOfPin(pin: string): ConcreteHook {
  const h = parseHookKey(basename(pin).replace(/~.*$/, ""));
  if (!h) throw new BpfopsError("UnknownHook", `${pin}: the hook's key is hashed (too long to name it), so the legacy attachment cannot be found from it`);
  return h;
}

/**
 * A hook of the legacy path (no BPF link on this kernel): attached by netlink or BPF_PROG_ATTACH,
 * and recorded as the program pinned at the link's path, which says what bpfops attached there
 * after a restart as a link pin would.
 */
function attachLegacy(hook: ConcreteHook, programPin: string, linkPin: string, anchor?: HookAnchor): void {
  if (anchor) throw new BpfopsError("NotSupported", `${describeHook(hook)}: order needs tcx links, and this kernel attaches through ${LEGACY_PATH_TEXT[recordedLegacyPath(hook)]}`);
  const prog = openPinnedProgram(programPin);
  try {
    legacyAttach(hook, linkPin, prog);
    try {
      prog.pin(linkPin);
    } catch (e) {
      legacyDetach(hook, linkPin, prog);
      throw e;
    }
  } finally {
    prog.close();
  }
}

/** The legacy path's compare-and-swap, then the program pinned at the link's path follows (by rename: never no pin). */
function replaceLegacy(linkPin: string, program: string | Held, expectProgId: number): void {
  const hook = hookOfPin(linkPin);
  const next = typeof program === "string" ? openPinnedProgram(program) : ((program as HeldAny).handle as ProgramHandle);
  let expected: ProgramHandle | null = null;
  try {
    try {
      expected = ProgramHandle.fromId(expectProgId);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") throw conflict(`${describeHook(hook)} was to run prog id ${expectProgId}, which is gone`, e);
      throw e;
    }
    try {
      legacyReplace(hook, linkPin, next, expected);
    } catch (e) {
      // XDP_FLAGS_REPLACE answers EEXIST, BPF_F_REPLACE ENOENT, the tc check EPERM: someone swapped it.
      if (["EPERM", "EEXIST", "ENOENT"].includes((e as { code?: string }).code ?? "")) throw conflict(`${describeHook(hook)} no longer runs prog id ${expectProgId}`, e);
      throw e;
    }
    unpin(linkPin + PIN_SUFFIX.next);
    next.pin(linkPin + PIN_SUFFIX.next);
    renameSync(linkPin + PIN_SUFFIX.next, linkPin);
  } finally {
    expected?.close();
    if (typeof program === "string") next.close();
  }
}

/** The live kernel under one bpffs root. */
export function realKernelPort(root: string): KernelPort {
  const provenance = new ProvenanceStore(root);
  const programOf = (p: string | Held): { h: ProgramHandle; owned: boolean } =>
    typeof p === "string" ? { h: openPinnedProgram(p), owned: true } : { h: (p as HeldProgram | HeldAny).handle as ProgramHandle, owned: false };
  /** Opens a pinned map for fn and closes it after, whatever happens. */
  const withMap = <T>(pin: string, fn: (m: MapHandle) => T): T => {
    const m = openPinnedMap(pin);
    try {
      return fn(m);
    } finally {
      m.close();
    }
  };
  /** Opens two pinned maps for fn and closes them after, whatever happens. */
  const withMaps = <T>(fromPin: string, toPin: string, fn: (from: MapHandle, to: MapHandle) => T): T => withMap(fromPin, (from) => withMap(toPin, (to) => fn(from, to)));
  return {
    createMap(def, name, pin, types, beforePin) {
      ensureBpffsDir(dirname(pin));
      const m = newMap(def, name, types);
      try {
        beforePin?.(m.id);
        m.pin(pin);
      } finally {
        m.close();
      }
    },
    writeEntries: (pin, entries, overwrite, onEntries) => (entries.length ? withMap(pin, (m) => writeInitialEntries(m, entries, overwrite, onEntries, (name) => layout.map(root, name))) : 0),
    typesOf: (pin) => {
      const t = withMap(pin, kernelMapTypes);
      return t.key || t.value ? t : undefined;
    },
    removeEntries: (pin, keys) => (keys.length ? withMap(pin, (m) => removeEntries(m, keys)) : 0),
    copyEntries: (fromPin, toPin) => withMaps(fromPin, toPin, copyEntries),
    waitForReplacedPrograms,
    carryOver: (fromPin, toPin, snapshot, merge) => withMaps(fromPin, toPin, (from, to) => carryOver(from, to, snapshot, merge)),
    async loadProgram(action, bytes, pin) {
      ensureBpffsDir(layout.objectMapsDir(root, action.name));
      ensureBpffsDir(dirname(pin));
      return loadProgramVersion(root, action.spec, bytes, action.mapPins, pin, action.objectMapPins);
    },
    holdPin(pin) {
      // What the pin holds decides the handle (openPin asks the kernel), not where the pin sits.
      const h = openPin(pin);
      return new HeldAny(h, h instanceof LinkHandle ? h.info().id : h.id);
    },
    holdProgram(id) {
      try {
        return new HeldProgram(ProgramHandle.fromId(id));
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") throw conflict(`prog id ${id} is gone`, e);
        throw e;
      }
    },
    holdLink(id) {
      try {
        const l = LinkHandle.fromId(id);
        return new HeldAny(l, id);
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") throw conflict(`link id ${id} is gone`, e);
        throw e;
      }
    },
    pinHeld(h, pin) {
      ensureBpffsDir(dirname(pin));
      (h as HeldAny).handle.pin(pin);
    },
    pinExists,
    rename(from, to) {
      renameSync(from, to);
    },
    unpin(pin) {
      unpin(pin);
    },
    slotProgram(progArrayPin, slot) {
      const m = openPinnedMap(progArrayPin);
      try {
        return m.lookup(u32Key(slot))?.readUInt32LE(0) ?? 0;
      } finally {
        m.close();
      }
    },
    setSlot(progArrayPin, slot, program) {
      const m = openPinnedMap(progArrayPin);
      const p = program === null ? null : programOf(program);
      try {
        m.setProgramSlot(slot, p?.h ?? null);
      } finally {
        m.close();
        if (p?.owned) p.h.close();
      }
    },
    attach(hook, programPin, linkPin, anchor) {
      ensureBpffsDir(dirname(linkPin));
      if (legacyPathOf(hook)) return attachLegacy(hook, programPin, linkPin, anchor);
      const prog = openPinnedProgram(programPin);
      const next = anchor ? { position: anchor.position, link: openPinnedLink(anchor.linkPin) } : undefined;
      try {
        const link = attachToHook(prog, hook, { root, ...(next ? { next } : {}) });
        try {
          link.pin(linkPin);
        } catch (e) {
          link.close(); // the link detaches with its last fd
          throw e;
        }
        link.close();
      } finally {
        prog.close();
        next?.link.close();
      }
    },
    updateLink(link, program, expectProgId) {
      if (typeof link === "string" && pinKind(link) === "prog") return replaceLegacy(link, program, expectProgId);
      const l = typeof link === "string" ? openPinnedLink(link) : ((link as HeldAny).handle as LinkHandle);
      const p = programOf(program);
      let expected: ProgramHandle | null = null;
      try {
        try {
          expected = ProgramHandle.fromId(expectProgId);
        } catch (e) {
          if ((e as { code?: string }).code === "ENOENT") throw conflict(`link ${typeof link === "string" ? relative(root, link) : `id ${link.id}`} was to run prog id ${expectProgId}, which is gone`, e);
          throw e;
        }
        try {
          l.update(p.h, expected);
        } catch (e) {
          if ((e as { code?: string }).code === "EPERM") throw conflict(`link ${typeof link === "string" ? relative(root, link) : `id ${link.id}`} no longer runs prog id ${expectProgId}`, e);
          throw e;
        }
      } finally {
        expected?.close();
        if (p.owned) p.h.close();
        if (typeof link === "string") l.close();
      }
    },
    detachLink(pin) {
      if (pinKind(pin) === "prog") {
        const prog = openPinnedProgram(pin);
        try {
          legacyDetach(hookOfPin(pin), pin, prog);
        } finally {
          prog.close();
        }
        return;
      }
      const l = openPinnedLink(pin);
      try {
        l.detach();
      } catch (e) {
        // Perf-event links (tracepoints) cannot detach: they go when their last reference does.
        if ((e as { code?: string }).code !== "EOPNOTSUPP") throw e;
      } finally {
        l.close();
      }
    },
    record(pin, p) {
      provenance.record(pin, p);
    },
    forget(pin) {
      provenance.forget(pin);
    },
    idOf(pin) {
      return pinnedId(pin);
    },
    pinsUnder(dir) {
      return listPinPaths(dir);
    },
    partsOf(pin) {
      const fresh = pin.endsWith(PIN_SUFFIX.new);
      const base = basename(fresh ? pin.slice(0, -PIN_SUFFIX.new.length) : pin);
      return readdirSync(dirname(pin))
        .filter((n) => isProgramPart(n, base) && n.endsWith(PIN_SUFFIX.new) === fresh)
        .map((n) => `${dirname(pin)}/${n}`);
    },
    removeEmptyDirs(pin) {
      // Up from the pin's folder to the root: folders a prune or a failed apply left empty.
      for (let dir = dirname(pin); dir.startsWith(root + "/"); dir = dirname(dir)) {
        try {
          if (readdirSync(dir).length) return;
          rmdirSync(dir);
        } catch {
          return;
        }
      }
    },
    close() {
      // Pruning the last object leaves the root clean: the state map goes with the last record.
      provenance.removeIfEmpty();
      provenance.close();
    },
  };
}
