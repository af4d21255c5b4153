// Loads one desired program from its object bytes, configured as its manifest says (type,
// globals, map sizes, bindings to pinned Maps, pins of its own maps). In "verify" mode nothing is
// pinned or created under the bpffs root: existing pinned Maps are reused read-only, others are
// stand-ins that go away with the object.
import { existsSync } from "node:fs";
import { posix } from "node:path";
import { loadObject, type LibbpfMessage, type ObjectFile } from "../kernel/object.ts";
import { openPinnedMap } from "../kernel/pins.ts";
import { MapType, ProgType, AttachType, type ProgTypeName, type AttachTypeName, progTypeName } from "../../schemas/kernel-names.ts";
import type { ProgramHandle, MapHandle } from "../kernel/handles.ts";
import type { DesiredProgram } from "../core/desired.ts";
import { layout } from "../core/layout.ts";
import { GLOBAL_SECTIONS } from "../core/btf.ts";

export interface LoadedProgram {
  program: ProgramHandle;
  /** a collection: its other programs, loaded with it */
  members: Map<string, ProgramHandle>;
  /** the object's maps by name (own and bound), for pinning and inspection */
  maps: Map<string, MapHandle>;
  loadNs: number;
  /** what libbpf printed opening and loading the object, with its level */
  libbpf: LibbpfMessage[];
}

export async function loadDesiredProgram(
  d: DesiredProgram,
  bytes: Buffer,
  opts: {
    root: string;
    mode: "verify" | "apply";
    /** where a bound Map is pinned, when not at maps/<name> (a replacement being prepared) */
    mapPin?: (name: string) => string;
    /** an object map's replacement to reuse instead of its pin (onChange recreate or migrate) */
    objectMapPin?: (map: string) => string | undefined;
    /** a collection: where a prog-array of the version's own is pinned (it lives as long as the version) */
    versionMapPin?: (map: string) => string;
  },
): Promise<LoadedProgram> {
  const bound: MapHandle[] = [];
  const objName = posix.basename(d.objectPath).replace(/\.(bpf\.c|o)(@[0-9a-f]+)?$/, "");
  const pinRoot = opts.mode === "apply" ? layout.objectMapsDir(opts.root, d.name) : "/nonexistent-bpfops-verify";
  const t0 = process.hrtime.bigint();
  let obj: ObjectFile | undefined;
  try {
    obj = await loadObject(bytes, { pinRoot, name: objName }, (o) => {
      // The program, or a collection's programs: loaded together, sharing the object's maps and globals.
      const wanted = [{ program: d.program, type: d.type, attachType: d.attachType }, ...(d.members ?? [])];
      for (const p of o.programs()) if (!wanted.some((w) => w.program === p.name)) o.setAutoload(p.name, false);
      for (const w of wanted) {
        const prog = o.programs().find((p) => p.name === w.program)!;
        if (progTypeName(prog.type) !== w.type || w.attachType) o.setProgramType(w.program, ProgType[w.type as ProgTypeName], w.attachType ? AttachType[w.attachType as AttachTypeName] : undefined);
      }
      // Each global in the section that holds it (.rodata, .data or .bss).
      const sectionOf = new Map(GLOBAL_SECTIONS.flatMap((sec) => o.globals(sec).map((g) => [g.name, sec] as const)));
      for (const [name, hex] of Object.entries(d.globals)) o.setGlobal(name, Buffer.from(hex, "hex"), sectionOf.get(name) ?? ".rodata");
      for (const m of o.maps()) {
        if (m.internal) {
          // A data section's map (.data, .bss) pinned when the manifest says so (maps: { .bss: { pin: true } }),
          // at objmaps/<program>/bss, where `bpfops map dump <program>/bss` reads it by its BTF.
          const sec = GLOBAL_SECTIONS.find((s) => m.name.endsWith(s));
          const pin = sec && opts.mode === "apply" && d.maps[sec]?.pin === true;
          o.setMapPinPath(m.name, pin ? `${pinRoot}/${sec.slice(1)}` : null);
          continue;
        }
        const ov = d.maps[m.name];
        if (ov?.maxEntries) o.setMaxEntries(m.name, ov.maxEntries);
        if (ov?.bind) {
          const pin = opts.mapPin?.(ov.bind) ?? layout.map(opts.root, ov.bind);
          if (existsSync(pin)) {
            const h = openPinnedMap(pin);
            bound.push(h);
            // Already pinned where it belongs: no second pin under the object's directory. (Before
            // reuseMap, which renames the object's map after the map it reuses.)
            o.setMapPinPath(m.name, null);
            o.reuseMap(m.name, h);
          } else if (opts.mode === "apply") {
            throw new Error(`Map/${ov.bind} is not pinned at ${pin}; create it first`);
          } else {
            // Verify before the Map exists: a stand-in of the Map's definition, never pinned.
            if (ov.bindDef) o.setMaxEntries(m.name, ov.bindDef.maxEntries);
            o.setMapPinPath(m.name, null);
          }
          continue;
        }
        const replacement = opts.mode === "apply" ? opts.objectMapPin?.(m.name) : undefined;
        if (replacement) {
          const h = openPinnedMap(replacement);
          bound.push(h);
          o.setMapPinPath(m.name, null);
          o.reuseMap(m.name, h);
          continue;
        }
        const pinned = opts.mode === "apply" && (ov?.pin === true || (ov?.pin !== false && m.pinPath !== null));
        // A collection's prog-array of its own (libbpf fills its slots with the sibling programs,
        // .values): pinned with the version, since an unpinned prog-array empties when the object
        // closes, and a shared one would switch the old version's tail calls before its hooks move.
        const ownProgArray = !pinned && d.members && m.type === MapType.prog_array && opts.mode === "apply" && opts.versionMapPin;
        o.setMapPinPath(m.name, pinned ? `${pinRoot}/${m.name}` : ownProgArray ? opts.versionMapPin!(m.name) : null);
      }
    });
    const maps = new Map<string, MapHandle>();
    for (const m of obj.maps()) if (!m.internal) maps.set(m.name, obj.map(m.name));
    const members = new Map((d.members ?? []).map((m) => [m.program, obj!.program(m.program)] as const));
    return { program: obj.program(d.program), members, maps, loadNs: Number(process.hrtime.bigint() - t0), libbpf: obj.libbpfMessages() };
  } finally {
    obj?.close();
    for (const h of bound) h.close();
  }
}
