// bpffs pins: making directories safely under a bpffs root, pinning, opening a pin as the right
// typed handle, removing pins, and walking a tree of pins to learn what each one holds.
import { mkdirSync, readdirSync, rmdirSync, unlinkSync, lstatSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { native } from "./native.ts";
import { kernelCall, KernelError } from "./errors.ts";
import { LinkHandle, MapHandle, ProgramHandle } from "./handles.ts";
import { OwnedFd } from "./fd.ts";
import { BpfopsError } from "../core/errors.ts";

export type PinKind = "prog" | "map" | "link";

export function isBpffs(path: string): boolean {
  return kernelCall(() => native.isBpffs(path));
}

/**
 * Creates dir and its missing parents, but only on bpffs: Node's recursive mkdir spins forever
 * when a parent lies on sysfs with no bpffs mounted, so each existing ancestor is checked first.
 */
export function ensureBpffsDir(dir: string): void {
  const abs = resolve(dir);
  const missing: string[] = [];
  let cur = abs;
  while (!exists(cur)) {
    missing.push(cur);
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  if (!isBpffs(cur)) {
    throw new BpfopsError("BpffsNotMounted", `bpffs root ${abs}: ${cur} is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)`);
  }
  for (const d of missing.reverse()) mkdirSync(d);
}

export function pinExists(path: string): boolean {
  return exists(path);
}

export function pinKind(path: string): PinKind | "other" {
  const fd = kernelCall(() => native.objGet(path));
  try {
    const k = native.fdKind(fd);
    return k === "prog" || k === "map" || k === "link" ? k : "other";
  } finally {
    native.closeFd(fd);
  }
}

export function openPinnedProgram(path: string): ProgramHandle {
  return new ProgramHandle(openPinned(path, "prog"), path);
}
export function openPinnedMap(path: string): MapHandle {
  return new MapHandle(openPinned(path, "map"), path);
}
export function openPinnedLink(path: string): LinkHandle {
  return new LinkHandle(openPinned(path, "link"), path);
}

/** Opens whatever is pinned at path as the matching handle. */
export function openPin(path: string): ProgramHandle | MapHandle | LinkHandle {
  const fd = kernelCall(() => native.objGet(path));
  const kind = native.fdKind(fd);
  const owned = new OwnedFd(fd, `pin ${path}`);
  if (kind === "prog") return new ProgramHandle(owned, path);
  if (kind === "map") return new MapHandle(owned, path);
  if (kind === "link") return new LinkHandle(owned, path);
  owned.close();
  throw new KernelError(`open pin ${path}: holds a ${kind}, not a program, map or link`, "EINVAL", 22, "BPF_OBJ_GET");
}

/** The kernel id of whatever is pinned at path (a link's, a program's or a map's). */
export function pinnedId(path: string): number {
  const h = openPin(path);
  try {
    return h instanceof LinkHandle ? h.info().id : h.id;
  } finally {
    h.close();
  }
}

/**
 * Opens a pin with open(); null when the pin vanished meanwhile (a concurrent reconcile renamed or
 * removed it), which readers of another process's pins must expect.
 */
export function openIfPresent<T>(open: () => T): T | null {
  try {
    return open();
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
}

/** Removes a pin; the object lives on while other pins or fds hold it. Missing pins are fine. */
export function unpin(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

export interface PinEntry {
  path: string;
  kind: PinKind | "other";
}

// bpffs keeps these at its mount root; they are iterators, not pins.
const BPFFS_OWN = new Set(["progs.debug", "maps.debug"]);

/** Every pin under root (depth first, sorted), with what it holds. */
export function listPins(root: string): PinEntry[] {
  return listPinPaths(root).map((path) => ({ path, kind: pinKind(path) }));
}

/** What a pin holds, or null when it vanished meanwhile. */
export function pinKindIfPresent(path: string): PinKind | "other" | null {
  return openIfPresent(() => pinKind(path));
}

/** Every pin path under root (depth first, sorted), without opening any: names alone. */
export function listPinPaths(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const name of names) {
      if (BPFFS_OWN.has(name)) continue;
      const p = join(dir, name);
      // A name renamed away since the directory was read (a concurrent reconcile) is not listed.
      const st = openIfPresent(() => lstatSync(p));
      if (st?.isDirectory()) walk(p);
      else if (st) out.push(p);
    }
  };
  walk(resolve(root));
  return out;
}

/** Removes root and every pin and directory under it. */
export function removePinTree(root: string): void {
  const abs = resolve(root);
  if (!exists(abs)) return;
  for (const p of listPins(abs)) unpin(p.path);
  const rmDirs = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (lstatSync(p).isDirectory()) rmDirs(p);
    }
    rmdirSync(dir);
  };
  rmDirs(abs);
}

function openPinned(path: string, want: PinKind): OwnedFd {
  const fd = kernelCall(() => native.objGet(path));
  const kind = native.fdKind(fd);
  const owned = new OwnedFd(fd, `pin ${path}`);
  if (kind !== want) {
    owned.close();
    throw new KernelError(`open pin ${path}: holds a ${kind}, expected a ${want}`, "EINVAL", 22, "BPF_OBJ_GET");
  }
  return owned;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
