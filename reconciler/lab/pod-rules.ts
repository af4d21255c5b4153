// Byte layouts of the packet-of-death filter's maps (bpf/pod_filter.h): encoding rules for
// pod_rules and decoding the per-CPU drop/pass counters of pod_stats.
import { u32Key, type MapHandle } from "../kernel/handles.ts";

export const POD_MAX_RULES = 64;
export const POD_PATTERN_MAX = 16;
export const POD_STAT_DEFAULT = POD_MAX_RULES;
const RULE_SIZE = 32;

export interface PodRule {
  action: "drop" | "pass";
  protocol?: "udp" | "tcp";
  dport?: number;
  /** IPv4 CIDR, e.g. "10.0.0.0/8" */
  source?: string;
  /** bytes that must appear at patternOffset of the L4 payload */
  pattern?: Buffer;
  patternOffset?: number;
}

const PROTO = { udp: 17, tcp: 6 } as const;

export function encodePodRule(rule: PodRule | null): Buffer {
  const b = Buffer.alloc(RULE_SIZE);
  if (!rule) return b;
  b.writeUInt8(1, 0);
  b.writeUInt8(rule.action === "drop" ? 0 : 1, 1);
  b.writeUInt8(rule.protocol ? PROTO[rule.protocol] : 0, 2);
  if (rule.source) {
    const [addr, len = "32"] = rule.source.split("/");
    const octets = (addr ?? "").split(".").map(Number);
    const bits = Number(len);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255) || !Number.isInteger(bits) || bits < 1 || bits > 32) {
      throw new RangeError(`pod rule source "${rule.source}" is not an IPv4 CIDR`);
    }
    b.writeUInt8(bits, 3);
    Buffer.from(octets).copy(b, 4); // network byte order
  }
  if (rule.dport !== undefined) {
    if (!Number.isInteger(rule.dport) || rule.dport < 1 || rule.dport > 65535) throw new RangeError(`pod rule dport ${rule.dport} is not a port`);
    b.writeUInt16LE(rule.dport, 8);
  }
  if (rule.pattern) {
    if (rule.pattern.length < 1 || rule.pattern.length > POD_PATTERN_MAX) throw new RangeError(`pod rule pattern must be 1..${POD_PATTERN_MAX} bytes`);
    b.writeUInt16LE(rule.patternOffset ?? 0, 10);
    b.writeUInt8(rule.pattern.length, 12);
    rule.pattern.copy(b, 16);
  }
  return b;
}

/** The pod_rules (and pod_stats) key of a rule slot. */
export const ruleKey = u32Key;

/** Writes rules to slots 0..n-1 and clears the rest of the table. */
export function writePodRules(rules: MapHandle, list: PodRule[]): void {
  if (list.length > POD_MAX_RULES) throw new RangeError(`at most ${POD_MAX_RULES} rules`);
  rules.updateMany(Array.from({ length: POD_MAX_RULES }, (_, i) => ({ key: ruleKey(i), value: encodePodRule(list[i] ?? null) })));
}

export interface PodStat {
  dropped: bigint;
  passed: bigint;
}

/** Drop/pass counters per rule slot (summed over CPUs); the last entry counts unmatched packets. */
export function readPodStats(stats: MapHandle): PodStat[] {
  const out: PodStat[] = [];
  for (let i = 0; i <= POD_MAX_RULES; i++) {
    const v = stats.lookup(ruleKey(i));
    let dropped = 0n;
    let passed = 0n;
    if (v) {
      for (const cpu of stats.splitPerCpu(v)) {
        dropped += cpu.readBigUInt64LE(0);
        passed += cpu.readBigUInt64LE(8);
      }
    }
    out.push({ dropped, passed });
  }
  return out;
}

export function totalPodStats(stats: PodStat[]): PodStat {
  return stats.reduce((a, s) => ({ dropped: a.dropped + s.dropped, passed: a.passed + s.passed }), { dropped: 0n, passed: 0n });
}
