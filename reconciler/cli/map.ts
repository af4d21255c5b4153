// `bpfops map get NAME KEY` and `bpfops map dump NAME`: a map bpfops pinned, read back and decoded
// by its BTF (fields by name, addresses as addresses); per-CPU values per CPU, or summed.
import { decodeEntry, keyFromText, kernelMapTypes, openMap } from "../host/map-reader.ts";
import { flow } from "./plan-output.ts";
import { typeName } from "../core/type-desc.ts";
import { BpfopsError } from "../core/errors.ts";

export interface MapCliOptions {
  bpffs: string;
  output: "text" | "json";
  sum?: boolean;
}

export function runMapGet(name: string, keyText: string, opts: MapCliOptions): number {
  const m = openMap(opts.bpffs, name);
  try {
    const types = kernelMapTypes(m);
    const key = keyFromText(keyText, m, types);
    const value = m.lookup(key);
    if (!value) throw new BpfopsError("NotFound", `${name}: no entry for key ${keyText}`);
    const e = decodeEntry(m, types, key, value, { sum: !!opts.sum });
    console.log(opts.output === "json" ? JSON.stringify(e, null, 2) : flow(e.value));
    return 0;
  } finally {
    m.close();
  }
}

export function runMapDump(name: string, opts: MapCliOptions): number {
  const m = openMap(opts.bpffs, name);
  try {
    const types = kernelMapTypes(m);
    const entries = m.entries().map((e) => decodeEntry(m, types, e.key, e.value, { sum: !!opts.sum }));
    if (opts.output === "json") {
      console.log(JSON.stringify({ map: name, type: m.info().typeName, ...(types.key ? { keyType: typeName(types.key) } : {}), ...(types.value ? { valueType: typeName(types.value) } : {}), entries }, null, 2));
      return 0;
    }
    for (const e of entries) console.log(`${flow(e.key)} -> ${flow(e.value)}`);
    console.error(`${entries.length} entries in ${name} (${m.info().typeName}${types.key || types.value ? `, ${typeName(types.key ?? { kind: "int", name: "bytes", size: 0, signed: false })} -> ${typeName(types.value ?? { kind: "int", name: "bytes", size: 0, signed: false })}` : ", no BTF: bytes as hex"})`);
    return 0;
  } finally {
    m.close();
  }
}
