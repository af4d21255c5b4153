// Provenance kept in the kernel: a pinned hash map <root>/state from each owned pin (its path
// under the root) to a small JSON record of the manifest file, git revision, kernel id and time it
// came from. The records are the inventory of what bpfops owns: a pin without one is not ours.
// `bpftool map dump pinned <root>/state` prints it as text; `bpfops status` reads it.
import { createHash } from "node:crypto";
import { relative } from "node:path";
import { MapHandle } from "../kernel/handles.ts";
import { openPinnedMap, pinExists, unpin } from "../kernel/pins.ts";
import { listMaps } from "../kernel/observe.ts";
import type { ProgramSpecSummary } from "../core/desired.ts";

const KEY_SIZE = 64;
const VALUE_SIZE = 512;
// Allocated per record (BPF_F_NO_PREALLOC): the bound costs nothing until it is used.
const MAX_RECORDS = 65536;
export const STATE_MAP_NAME = "bpfops_state";
/** The record that names the root a state map belongs to (other roots read it for conflicts). */
const ROOT_KEY = "#root";

export interface Provenance {
  manifest?: string;
  revision?: string;
  digest?: string;
  /** kernel id of the program, map or link bpfops pinned there: a pin holding another id was replaced */
  id?: number;
  /** ISO time of the apply that made it */
  at?: string;
  /** a Map applied with prune: false */
  keep?: boolean;
  /** a map of records: the struct its records are (for `bpfops events`) */
  recordType?: string;
  /** a program version: what it was made from (dropped when the record would not fit) */
  spec?: ProgramSpecSummary;
  /** a link: its hook in full, for people (its pin name may be a hash of a long cgroup path) */
  hook?: string;
}

export const statePin = (root: string) => `${root}/state`;

function textKey(text: string): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k.write(text);
  return k;
}

/** Paths that fit are the key itself (readable in bpftool); longer ones are keyed by a hash, and the record keeps the path. */
function keyFor(rel: string): { key: Buffer; long: boolean } {
  if (Buffer.byteLength(rel) < KEY_SIZE) return { key: textKey(rel), long: false };
  return { key: textKey(`#${createHash("sha256").update(rel).digest("hex").slice(0, 62)}`), long: true };
}

function openState(root: string, create: boolean): MapHandle | null {
  if (pinExists(statePin(root))) return openPinnedMap(statePin(root));
  if (!create) return null;
  // Keys and values are char arrays in BTF, so `bpftool map dump` prints them as text.
  const m = MapHandle.createStringHash(KEY_SIZE, VALUE_SIZE, MAX_RECORDS, STATE_MAP_NAME);
  try {
    m.update(textKey(ROOT_KEY), value(JSON.stringify({ p: root })));
    m.pin(statePin(root));
  } catch (e) {
    m.close();
    throw e;
  }
  return m;
}

function value(json: string): Buffer {
  if (Buffer.byteLength(json) >= VALUE_SIZE) throw new RangeError(`provenance record of ${Buffer.byteLength(json)} bytes; at most ${VALUE_SIZE - 1}`);
  const v = Buffer.alloc(VALUE_SIZE);
  v.write(json);
  return v;
}

/** The provenance store of one root: records are written as pins are made and removed with them. */
export class ProvenanceStore {
  readonly root: string;
  #map: MapHandle | null = null;
  constructor(root: string) {
    this.root = root;
  }
  private open(create: boolean): MapHandle | null {
    if (this.#map && !this.#map.closed) return this.#map;
    this.#map = openState(this.root, create);
    return this.#map;
  }
  record(pin: string, p: Provenance): void {
    const rel = relative(this.root, pin);
    const { key, long } = keyFor(rel);
    const base = { m: p.manifest, r: p.revision, d: p.digest?.slice(0, 16), i: p.id, ...(p.keep ? { k: 1 } : {}), ...(p.recordType ? { y: p.recordType } : {}), t: p.at ?? new Date().toISOString(), ...(long ? { p: rel } : {}) };
    // The spec and the hook only explain things to people: a record too long for them keeps the rest.
    const fits = (o: object) => Buffer.byteLength(JSON.stringify(o)) < VALUE_SIZE;
    const full = { ...base, ...(p.spec ? { s: p.spec } : {}), ...(p.hook ? { h: p.hook } : {}) };
    const json = JSON.stringify(fits(full) ? full : p.hook && fits({ ...base, h: p.hook }) ? { ...base, h: p.hook } : base);
    this.open(true)!.update(key, value(json));
  }
  forget(pin: string): void {
    this.open(false)?.delete(keyFor(relative(this.root, pin)).key);
  }
  /** Removes the state map itself: the root owns nothing any more. */
  removeIfEmpty(): boolean {
    const m = this.open(false);
    if (!m) return false;
    const left = [...m.keys()].filter((k) => decodeText(k) !== ROOT_KEY && !decodeText(k).startsWith(NOTE_PREFIX)).length;
    if (left) return false;
    this.close();
    unpin(statePin(this.root));
    return true;
  }
  close(): void {
    this.#map?.close();
    this.#map = null;
  }
}

function decodeText(b: Buffer): string {
  return b.toString("utf8").replace(/\0+$/, "");
}

function readRecords(m: MapHandle): Map<string, Provenance> {
  const out = new Map<string, Provenance>();
  for (const e of m.entries()) {
    const key = decodeText(e.key);
    if (key === ROOT_KEY || key.startsWith(NOTE_PREFIX)) continue;
    try {
      const j = JSON.parse(decodeText(e.value)) as { m?: string; r?: string; d?: string; i?: number; t?: string; p?: string; k?: number; y?: string; s?: ProgramSpecSummary; h?: string };
      out.set(j.p ?? key, { ...(j.m ? { manifest: j.m } : {}), ...(j.r ? { revision: j.r } : {}), ...(j.d ? { digest: j.d } : {}), ...(j.i ? { id: j.i } : {}), ...(j.t ? { at: j.t } : {}), ...(j.k ? { keep: true } : {}), ...(j.y ? { recordType: j.y } : {}), ...(j.s ? { spec: j.s } : {}), ...(j.h ? { hook: j.h } : {}) });
    } catch {
      // A record this version cannot read: leave it out rather than fail the status.
    }
  }
  return out;
}

/**
 * Notes beside the provenance records: small JSON documents that are not about a pin (the agent's
 * status and its history of applied revisions), kept in the kernel so that they outlive the agent
 * and `bpfops status` reads them without it. Keys start with "@", which no pin path does.
 */
const NOTE_PREFIX = "@";

export function writeNote(root: string, name: string, note: object): void {
  const m = openState(root, true)!;
  try {
    m.update(textKey(`${NOTE_PREFIX}${name}`), value(JSON.stringify(note)));
  } finally {
    m.close();
  }
}

export function readNote<T>(root: string, name: string): T | null {
  const m = openState(root, false);
  if (!m) return null;
  try {
    const v = m.lookup(textKey(`${NOTE_PREFIX}${name}`));
    return v ? (JSON.parse(decodeText(v)) as T) : null;
  } catch {
    return null;
  } finally {
    m.close();
  }
}

/** Every record, by pin path under the root. */
export function readProvenance(root: string): Map<string, Provenance> {
  const m = openState(root, false);
  if (!m) return new Map();
  try {
    return readRecords(m);
  } finally {
    m.close();
  }
}

/**
 * Programs other bpfops roots own, found through their state maps (every root's map is
 * named bpfops_state, whatever mount namespace it is pinned in): program id -> root.
 */
export function idsOwnedByOtherRoots(root: string): Map<number, string> {
  const out = new Map<number, string>();
  const own = openState(root, false);
  const ownId = own?.id;
  own?.close();
  for (const info of listMaps()) {
    if (info.name !== STATE_MAP_NAME || info.id === ownId) continue;
    let m: MapHandle;
    try {
      m = MapHandle.fromId(info.id);
    } catch {
      continue; // gone since the listing
    }
    try {
      const rootRecord = m.lookup(textKey(ROOT_KEY));
      const other = rootRecord ? ((JSON.parse(decodeText(rootRecord)) as { p?: string }).p ?? "another root") : "another root";
      for (const [path, p] of readRecords(m)) if (p.id && path.startsWith("programs/")) out.set(p.id, other);
    } catch {
      // Not a state map of a version we can read: it cannot tell us anything.
    } finally {
      m.close();
    }
  }
  return out;
}
