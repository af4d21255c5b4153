// Metrics that Map manifests declare (`metrics:`), read from the maps' entries at each scrape:
// one sample per entry (or for one key), its value or a field of it summed over CPUs, labels from
// fields of the key, all decoded by the map's BTF as `bpfops map dump` decodes them.
import { Counter, Gauge, type Registry } from "prom-client";
import { layout } from "../core/layout.ts";
import type { DesiredMap, MapMetricSpec } from "../core/desired.ts";
import { encodeEntryField, intFieldAt, readIntField } from "../core/typed-values.ts";
import { decodeEntry, decodeEntryKey, kernelMapTypes } from "../host/map-reader.ts";
import { openPinnedMap } from "../kernel/pins.ts";
import type { AgentLog } from "./agent.ts";

type Sample = { labels: Record<string, string>; value: number };

const at = (v: unknown, path: string): unknown => (path ? path.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), v) : v);
const text = (v: unknown) => (v && typeof v === "object" ? JSON.stringify(v) : String(v));

/** The samples of one declared metric, read from the kernel now. */
export function readMapMetric(root: string, map: string, spec: MapMetricSpec): Sample[] {
  return readMapMetrics(root, map, [spec])[0]!;
}

/** The samples of several metrics of one map, from one reading of it (in the order of specs). */
export function readMapMetrics(root: string, map: string, specs: MapMetricSpec[]): Sample[][] {
  const m = openPinnedMap(layout.map(root, map));
  try {
    const types = kernelMapTypes(m);
    // One key is looked up; the whole map is read (once) only when a metric is about all of it.
    let all: Array<{ key: Buffer; value: Buffer }> | undefined;
    return specs.map((spec) => {
      let entries;
      if (spec.key !== undefined) {
        const key = encodeEntryField(spec.key, m.keySize, types.key, "key");
        const value = m.lookup(key);
        entries = value ? [{ key, value }] : [];
      } else entries = all ??= m.entries();
      const out: Sample[] = [];
      const labelPaths = Object.entries(spec.labels ?? (spec.key === undefined ? { key: "" } : {}));
      // A plain integer field is read from each CPU's bytes and summed: decoding every CPU's whole
      // value into objects cost a fleet agent milliseconds per status report (and V8 more to optimize it).
      const field = types.value ? intFieldAt(types.value, spec.value ?? "") : undefined;
      for (const e of entries) {
        let n: number;
        let key: unknown;
        if (field) {
          n = 0;
          for (const cpu of m.perCpu ? m.splitPerCpu(e.value) : [e.value]) n += readIntField(cpu, field);
          key = labelPaths.length ? decodeEntryKey(types, e.key) : undefined;
        } else {
          const d = decodeEntry(m, types, e.key, e.value, { sum: true });
          const v = at(d.value, spec.value ?? "");
          n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : typeof v === "boolean" ? Number(v) : NaN;
          key = d.key;
        }
        if (Number.isNaN(n)) continue;
        const labels = Object.fromEntries(labelPaths.map(([l, path]) => [l, text(at(key, path))]));
        out.push({ labels, value: n });
      }
      return out;
    });
  } finally {
    m.close();
  }
}

/** The declared metrics of the applied revision, registered and read at each scrape. */
export class MapMetrics {
  #declared = new Map<string, { map: string; spec: MapMetricSpec; labels: string[] }>();
  constructor(
    private readonly registry: Registry,
    private readonly root: string,
    private readonly log: AgentLog,
  ) {}

  /** Every declared metric's samples now (a fleet agent reports them for the rollout's health gates). */
  snapshot(): Array<Sample & { name: string }> {
    const byMap = new Map<string, Array<[string, MapMetricSpec]>>();
    for (const [name, d] of this.#declared) byMap.set(d.map, [...(byMap.get(d.map) ?? []), [name, d.spec]]);
    const out: Array<Sample & { name: string }> = [];
    for (const [map, metrics] of byMap) {
      try {
        const samples = readMapMetrics(this.root, map, metrics.map(([, spec]) => spec));
        metrics.forEach(([name], i) => {
          for (const s of samples[i]!) out.push({ name, ...s });
        });
      } catch {
        // not readable right now (the map is being replaced): left out of this report
      }
    }
    return out;
  }

  /** After each apply: the metrics the revision's Map manifests declare. */
  update(maps: DesiredMap[]): void {
    const wanted = new Map<string, { map: string; spec: MapMetricSpec; labels: string[] }>();
    for (const d of maps) for (const spec of d.metrics ?? []) wanted.set(spec.name, { map: d.name, spec, labels: Object.keys(spec.labels ?? (spec.key === undefined ? { key: "" } : {})).sort() });
    for (const [name, was] of this.#declared) {
      const now = wanted.get(name);
      if (!now || JSON.stringify(now) !== JSON.stringify(was)) {
        this.registry.removeSingleMetric(name);
        this.#declared.delete(name);
      }
    }
    for (const [name, d] of wanted) {
      if (this.#declared.has(name)) continue;
      if (this.registry.getSingleMetric(name)) {
        this.log.warn({ metric: name, map: d.map }, "a declared metric has the name of another metric: left out");
        continue;
      }
      const read = () => {
        try {
          return readMapMetric(this.root, d.map, d.spec);
        } catch (e) {
          this.log.warn({ metric: name, map: d.map, error: (e as Error).message }, "could not read a declared metric");
          return [];
        }
      };
      const help = d.spec.help ?? `read from Map/${d.map} by bpfops`;
      if (d.spec.type === "gauge") {
        new Gauge({ name, help, labelNames: d.labels, registers: [this.registry], collect() { this.reset(); for (const s of read()) this.set(s.labels, s.value); } });
      } else {
        new Counter({ name, help, labelNames: d.labels, registers: [this.registry], collect() { this.reset(); for (const s of read()) this.inc(s.labels, s.value); } });
      }
      this.#declared.set(name, d);
    }
  }
}
