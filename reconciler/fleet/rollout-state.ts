// A rollout as etcd holds it (its phase, its rings and what each ring's hosts reported), the
// requests and commands the CLI writes for the controller, and the host rows the CLI shows.
import { randomBytes } from "node:crypto";
import type { HostStatus, Target } from "./fleet-store.ts";
import type { GateResult, RolloutSpec, Sample } from "./rollout-rings.ts";

export type RolloutPhase = "Progressing" | "Paused" | "Succeeded" | "Failed" | "RolledBack" | "Aborted" | "Superseded";
export const FINISHED: RolloutPhase[] = ["Succeeded", "Failed", "RolledBack", "Aborted", "Superseded"];

export interface RingState {
  name: string;
  hosts: string[];
  /** ms since the epoch: targeted, all Ready (bake starts), passed */
  startedAt?: number;
  readyAt?: number;
  passedAt?: number;
  /** the figures each host reported when the ring was Ready: the gates' baseline */
  baseline?: Record<string, Sample[]>;
  done: string[];
  blocked: Record<string, string>;
  failures: Array<{ host: string; why: string; gate?: GateResult }>;
  gates: Array<GateResult & { host: string }>;
}

export interface RolloutState {
  id: string;
  revision: string;
  digest: string;
  /** the last good bundle, what a failed rollout goes back to */
  previous?: Target;
  spec: RolloutSpec;
  emergency: boolean;
  phase: RolloutPhase;
  ring: number;
  rings: RingState[];
  message: string;
  createdAt: number;
  updatedAt: number;
}

export interface RolloutRequest {
  /** a commit id or a ref of the controller's repository; default: the head of its ref */
  revision?: string;
  emergency?: boolean;
  at: string;
}

export type RolloutCommand = "pause" | "resume" | "abort" | "rollback";

export const newRolloutId = () => `r${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;

/** The statuses of a rollout's hosts, for `bpfops fleet status` and `bpfops rollout status`. */
export function hostRows(r: RolloutState | undefined, statuses: Map<string, HostStatus>, members: Set<string>, targets: Map<string, Target>): Array<{ host: string; ring: string; target?: string; status?: HostStatus; member: boolean }> {
  const ringOf = new Map<string, string>();
  for (const ring of r?.rings ?? []) for (const h of ring.hosts) ringOf.set(h, ring.name);
  const hosts = new Set([...members, ...statuses.keys(), ...targets.keys()]);
  return [...hosts].sort().map((h) => ({ host: h, ring: ringOf.get(h) ?? "-", ...(targets.get(h) ? { target: targets.get(h)!.revision } : {}), ...(statuses.get(h) ? { status: statuses.get(h)! } : {}), member: members.has(h) }));
}
