// Provenance kept in the kernel: a pinned hash map <root>/state from each owned pin (its path
// under the root) to a small JSON record of the manifest file, git revision and time it came from.
// `bpftool map dump pinned <root>/state` prints it as text; `bpfops status` reads it.
import { createHash } from "node:crypto";
import { relative } from "node:path";
import { MapHandle } from "./handles.ts";
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import { openPinnedMap, pinExists } from "./pins.ts";

const KEY_SIZE = 64;
const VALUE_SIZE = 256;
const MAX_RECORDS = 65536;

export interface Provenance {
  manifest?: string;
  revision?: string;
  digest?: string;
  /** ISO time of the apply that made it */
  at?: string;
}

const statePin = (root: string) => `${root}/state`;

function keyFor(root: string, pin: string): Buffer {
  const rel = relative(root, pin);
  // Paths that do not fit are keyed by their hash: unreadable in bpftool, but unique.
  const text = Buffer.byteLength(rel) <= KEY_SIZE ? rel : `#${createHash("sha256").update(rel).digest("hex").slice(0, 62)}`;
  const k = Buffer.alloc(KEY_SIZE);
  k.write(text);
  return k;
}

function openState(root: string, create: boolean): MapHandle | null {
  if (pinExists(statePin(root))) return openPinnedMap(statePin(root));
  if (!create) return null;
  // Keys and values are char arrays in BTF, so `bpftool map dump` prints them as text.
  const m = MapHandle.fromFd(kernelCall(() => native.mapCreateStringHash(KEY_SIZE, VALUE_SIZE, MAX_RECORDS, "bpfops_state")), "bpfops_state");
  m.pin(statePin(root));
  return m;
}

export function recordProvenance(root: string, pin: string, p: Provenance): void {
  const m = openState(root, true)!;
  try {
    const json = JSON.stringify({ m: p.manifest, r: p.revision, d: p.digest?.slice(0, 16), t: p.at ?? new Date().toISOString() });
    const v = Buffer.alloc(VALUE_SIZE);
    v.write(json.length < VALUE_SIZE ? json : json.slice(0, VALUE_SIZE - 1));
    m.update(keyFor(root, pin), v);
  } finally {
    m.close();
  }
}

export function forgetProvenance(root: string, pin: string): void {
  const m = openState(root, false);
  if (!m) return;
  try {
    m.delete(keyFor(root, pin));
  } finally {
    m.close();
  }
}

/** Every record, by pin path under the root. */
export function readProvenance(root: string): Map<string, Provenance> {
  const out = new Map<string, Provenance>();
  const m = openState(root, false);
  if (!m) return out;
  try {
    for (const e of m.entries()) {
      const key = e.key.toString("utf8").replace(/\0+$/, "");
      try {
        const j = JSON.parse(e.value.toString("utf8").replace(/\0+$/, "")) as { m?: string; r?: string; d?: string; t?: string };
        out.set(key, { ...(j.m ? { manifest: j.m } : {}), ...(j.r ? { revision: j.r } : {}), ...(j.d ? { digest: j.d } : {}), ...(j.t ? { at: j.t } : {}) });
      } catch {
        // A record this version cannot read: leave it out rather than fail the status.
      }
    }
  } finally {
    m.close();
  }
  return out;
}
