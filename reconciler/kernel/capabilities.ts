// The capabilities this process holds (the effective set of /proc/self/status), for messages that
// tell a missing privilege from a kernel that refuses, and for `bpfops doctor`.
import { readFileSync } from "node:fs";

export const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;

/** The effective capability set as a bit mask. */
export function effectiveCapabilities(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function holdsCapability(bit: number, caps = effectiveCapabilities()): boolean {
  return (caps & (1n << BigInt(bit))) !== 0n;
}

/** CAP_BPF, or CAP_SYS_ADMIN which covers it: what loading programs needs. */
export function hasBpfCapability(): boolean {
  const caps = effectiveCapabilities();
  return holdsCapability(CAP.BPF, caps) || holdsCapability(CAP.SYS_ADMIN, caps);
}
