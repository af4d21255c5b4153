// The agent's Prometheus metrics (prom-client), served beside its status: reconciles by result
// and their duration, time of the last success, objects by state, drift corrections, fetch errors
// and webhook requests by outcome. Names carry a bpfops_ prefix.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export function agentMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    reconciles: new Counter({ name: "bpfops_reconcile_total", help: "Reconciles, by result (applied, unchanged, refused, failed)", labelNames: ["result"] as const, registers: [registry] }),
    duration: new Histogram({ name: "bpfops_reconcile_duration_seconds", help: "Time of one reconcile, fetch to enforced", buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] }),
    lastSuccess: new Gauge({ name: "bpfops_last_success_timestamp_seconds", help: "When the last reconcile succeeded (unix seconds)", registers: [registry] }),
    objects: new Gauge({ name: "bpfops_objects", help: "Objects of the applied revision, by kind and state", labelNames: ["kind", "state"] as const, registers: [registry] }),
    drift: new Counter({ name: "bpfops_drift_corrections_total", help: "Objects changed out of band and put back", labelNames: ["kind"] as const, registers: [registry] }),
    fetchErrors: new Counter({ name: "bpfops_fetch_errors_total", help: "Failed reads of the repository's head or commit", registers: [registry] }),
    webhooks: new Counter({ name: "bpfops_webhook_requests_total", help: "Webhook requests, by outcome", labelNames: ["outcome"] as const, registers: [registry] }),
    ready: new Gauge({ name: "bpfops_ready", help: "1 when the last applied revision is enforced and the latest one was applied", registers: [registry] }),
  };
  return m;
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;

/**
 * Per-program run counts and run time from the kernel's BPF stats, read at each scrape for the
 * programs bpfops owns, under the names ebpf_exporter users already scrape.
 */
export function programStatsMetrics(registry: Registry, read: () => Array<{ name: string; id: number; tag: string; runCount: number; runTimeNs: number }>): void {
  const labelNames = ["name", "id", "tag"] as const;
  const count = new Counter({
    name: "ebpf_program_run_count_total",
    help: "How many times each program bpfops owns has run (BPF stats)",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of read()) this.inc({ name: p.name, id: String(p.id), tag: p.tag }, p.runCount);
    },
  });
  const time = new Counter({
    name: "ebpf_program_run_time_seconds_total",
    help: "Time each program bpfops owns has run (BPF stats)",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of read()) this.inc({ name: p.name, id: String(p.id), tag: p.tag }, p.runTimeNs / 1e9);
    },
  });
  void count;
  void time;
}
