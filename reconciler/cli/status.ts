// `bpfops status`: what is applied on this host, per object, read from the kernel itself.
// --check exits 2 when an owned link no longer enforces (its interface or cgroup is gone).
import { resolve } from "node:path";
import { readStatus } from "../host/status.ts";
import { enableRunTimeStats } from "../kernel/observe.ts";
import { recordedAgentStatus } from "../agent/agent.ts";

export function runStatus(opts: { bpffs: string; output: "text" | "json"; check?: boolean; statsOn?: boolean }): number {
  const root = resolve(opts.bpffs);
  const entries = readStatus(root, { statsOn: !!opts.statsOn });
  const notEnforcing = entries.filter((e) => e.enforcing === false);
  const code = opts.check && notEnforcing.length ? 2 : 0;
  // The agent's last word, as it left it in the kernel (with or without an agent running).
  const agent = recordedAgentStatus(root);
  if (opts.output === "json") {
    console.log(JSON.stringify({ apiVersion: "bpfops.dev/v1alpha1", kind: "Status", bpffsRoot: root, ...(agent ? { agent } : {}), objects: entries }, null, 2));
    return code;
  }
  if (agent) {
    console.log(`agent: ${agent.ready ? "Ready" : "NOT READY"} (${agent.reason}) ${agent.message}`);
    console.log(`  last applied ${agent.lastAppliedRevision ?? "-"}, last attempted ${agent.lastAttemptedRevision ?? "-"}, at ${agent.at}${agent.unsigned ? ", following an unsigned remote" : ""}${agent.suspended ? ", SUSPENDED" : ""}`);
  }
  if (entries.length === 0) {
    console.log(`nothing applied under ${root}`);
    return code;
  }
  // A table like `flux get`: one row per object, what it is, where it runs, from which revision.
  const rows = entries.map((e) => {
    const d = e.detail;
    const ran = d.runCount === null ? "run count unknown (BPF stats off: --stats-for N)" : `ran ${d.runCount} times (${d.runTimeNs} ns)`;
    const link = e.kind === "Attachment" || e.kind === "Chain";
    const message =
      e.kind === "Program"
        ? `${d.type} digest ${d.digest} tag ${d.tag}, ${d.verifiedInstructions} insns, ${ran}`
        : link
          ? `${d.linkType} link running prog ${d.progId}${e.enforcing ? "" : " - NOT ENFORCING: its interface or cgroup is gone"}`
          : e.kind === "Unowned"
            ? `${d.holds}: ${d.note}`
            : `${d.type}${d.keySize !== undefined ? ` ${d.keySize}/${d.valueSize}` : ""} x${d.maxEntries}${d.entries !== undefined ? `, ${d.entries} entries` : ""}`;
    const from = e.provenance?.manifest ? `  [${e.provenance.manifest}]` : "";
    return [e.name, e.kind, link ? String(d.hook) : "-", e.provenance?.revision ? e.provenance.revision.slice(0, 12) : "-", e.kind === "Unowned" ? "-" : e.enforcing === false ? "False" : "True", `${message} (id ${e.id})${from}`];
  });
  const header = ["NAME", "KIND", "HOOK", "REVISION", "READY", "MESSAGE"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  if (notEnforcing.length) console.log(`${notEnforcing.length} link(s) not enforcing`);
  return code;
}

/** Run counts need BPF stats on; keep them on while this process lives (`status --stats-for`). */
export async function collectStats(seconds: number): Promise<{ close(): void }> {
  const h = enableRunTimeStats();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return h;
}
