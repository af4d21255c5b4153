// `bpfops status`: what is applied on this host, per object, read from the kernel itself.
import { resolve } from "node:path";
import { readStatus } from "../kernel/status.ts";
import { enableRunTimeStats } from "../kernel/observe.ts";

export function runStatus(opts: { bpffs: string; output: "text" | "json" }): number {
  const root = resolve(opts.bpffs);
  const entries = readStatus(root);
  if (opts.output === "json") {
    console.log(JSON.stringify({ apiVersion: "bpfops.dev/v1alpha1", kind: "Status", bpffsRoot: root, objects: entries }, null, 2));
    return 0;
  }
  if (entries.length === 0) {
    console.log(`nothing applied under ${root}`);
    return 0;
  }
  console.log(`applied under ${root}:`);
  for (const e of entries) {
    const d = e.detail;
    const what =
      e.kind === "Program"
        ? `${d.type} digest ${d.digest} tag ${d.tag}, ${d.verifiedInstructions} insns, ran ${d.runCount} times (${d.runTimeNs} ns)`
        : e.kind === "Attachment" || e.kind === "Chain"
          ? `${d.hook}: ${d.linkType} link running prog ${d.progId}`
          : `${d.type}${d.keySize !== undefined ? ` ${d.keySize}/${d.valueSize}` : ""} x${d.maxEntries}${d.entries !== undefined ? `, ${d.entries} entries` : ""}`;
    const from = e.provenance ? `  [${e.provenance.manifest ?? "?"}${e.provenance.revision ? ` @ ${e.provenance.revision.slice(0, 12)}` : ""}]` : "";
    console.log(`  ${`${e.kind}/${e.name}`.padEnd(36)} id ${String(e.id).padEnd(6)} ${what}${from}`);
  }
  return 0;
}

/** Run counts need BPF stats on; keep them on while this process lives (`status --stats-for`). */
export async function collectStats(seconds: number): Promise<void> {
  const h = enableRunTimeStats();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  h.close();
}
