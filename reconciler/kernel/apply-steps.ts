// The kernel steps a plan is applied with, each leaving its result pinned under the bpffs root
// in the layout of core/layout.ts: create a Map, write its initial entries, load and pin a program
// version, attach a program to a concrete hook and pin the link.
import { MapHandle, type LinkHandle, type ProgramHandle } from "./handles.ts";
import { ensureBpffsDir } from "./pins.ts";
import { MapType, MapUpdateFlags, type MapTypeName } from "./constants.ts";
import { loadDesiredProgram } from "./load-program.ts";
import { attachCgroupLink, attachRawTracepointLink, attachTcxLink, attachTracepointLink, attachXdpLink, type CgroupAttachName } from "./attach.ts";
import { hookKey, layout, type ConcreteHook } from "../core/layout.ts";
import type { DesiredMap, DesiredProgram } from "../core/desired.ts";
import { NotSupportedError } from "../core/errors.ts";
import { dirname } from "node:path";

/** Creates the Map and pins it at maps/<name> (or at `at`, for a replacement being prepared). */
export function createPinnedMap(root: string, d: DesiredMap, at = layout.map(root, d.name)): MapHandle {
  ensureBpffsDir(layout.mapsDir(root));
  return pinOrClose(MapHandle.create({ ...d.def, type: MapType[d.def.type as MapTypeName] }, d.name), at);
}

/** Pins a fresh handle at path; if the pin fails, the handle is closed (the object goes away). */
function pinOrClose<T extends { pin(path: string): void; close(): void }>(h: T, path: string): T {
  try {
    h.pin(path);
  } catch (e) {
    h.close();
    throw e;
  }
  return h;
}

/** Array maps always hold every key: an all-zero value there is an entry nobody has written. */
export function isUnwrittenArrayValue(mapType: string, value: Buffer | null): boolean {
  return (mapType === "array" || mapType === "percpu_array") && value !== null && value.every((b) => b === 0);
}

/**
 * Writes the Map's initial entries; entries already present stay as the datapath or an operator
 * left them unless the manifest says overwriteEntries. Returns how many were written.
 */
export function writeInitialEntries(m: MapHandle, d: DesiredMap): number {
  let written = 0;
  for (const e of d.entries) {
    const key = Buffer.from(e.key, "hex");
    if (!d.overwriteEntries && d.def.type.endsWith("array")) {
      if (!isUnwrittenArrayValue(d.def.type, m.lookup(key))) continue;
      m.update(key, Buffer.from(e.value, "hex"));
      written++;
      continue;
    }
    try {
      m.update(key, Buffer.from(e.value, "hex"), d.overwriteEntries ? MapUpdateFlags.any : MapUpdateFlags.noExist);
      written++;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
  }
  return written;
}

/** Loads a program version and pins it at programs/<name>/<digest>; its own maps pin under objmaps/. */
export async function loadPinnedProgram(root: string, d: DesiredProgram, bytes: Buffer, mapPin?: (name: string) => string): Promise<ProgramHandle> {
  ensureBpffsDir(layout.objectMapsDir(root, d.name));
  ensureBpffsDir(layout.programDir(root, d.name));
  const loaded = await loadDesiredProgram(d, bytes, { root, mode: "apply", ...(mapPin ? { mapPin } : {}) });
  for (const m of loaded.maps.values()) m.close();
  return pinOrClose(loaded.program, layout.program(root, d.name, d.digest));
}

/** Attaches a program to one concrete hook as a link (not pinned). */
export function attachToHook(program: ProgramHandle, h: ConcreteHook): LinkHandle {
  switch (h.type) {
    case "xdp":
      return attachXdpLink(program, { ifname: h.ifname, netns: h.netns, mode: h.mode });
    case "tcx":
      return attachTcxLink(program, { ifname: h.ifname, netns: h.netns, direction: h.direction });
    case "cgroup":
      return attachCgroupLink(program, h.path, h.attachType as CgroupAttachName);
    case "tracepoint":
      return attachTracepointLink(program, h.name);
    case "raw_tracepoint":
      return attachRawTracepointLink(program, h.name);
    case "fentry":
    case "fexit":
      throw new NotSupportedError(h.type, "attaching fentry/fexit programs is not implemented yet");
  }
}

export function linkPin(root: string, owner: { kind: "Attachment" | "Chain"; name: string }, h: ConcreteHook): string {
  return owner.kind === "Attachment" ? layout.link(root, owner.name, hookKey(h)) : layout.chainLink(root, owner.name, hookKey(h));
}

/** Attaches and pins the link at links/<attachment>/<hook key> (or chains/<chain>/<hook key>, or at). */
export function attachPinned(root: string, owner: { kind: "Attachment" | "Chain"; name: string }, program: ProgramHandle, h: ConcreteHook, at?: string): LinkHandle {
  const path = at ?? linkPin(root, owner, h);
  ensureBpffsDir(dirname(path));
  return pinOrClose(attachToHook(program, h), path);
}
