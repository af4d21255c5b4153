// `bpfops rollback [REVISION]`, `bpfops suspend`, `bpfops resume`: tell the agent of this bpffs
// root, through a note in the kernel state map it reads every cycle, to apply an earlier revision
// and stay there, to stop applying new revisions (drift is still put back), or to follow the ref again.
import { resolve } from "node:path";
import { writeNote } from "../host/provenance.ts";
import type { AgentHold } from "../agent/agent.ts";
import { appliedHistory } from "../agent/history-note.ts";
import { BpfopsError } from "../core/errors.ts";

export function runHold(action: "rollback" | "suspend" | "resume", opts: { bpffs: string; revision?: string }): number {
  const root = resolve(opts.bpffs);
  const history = appliedHistory(root);
  let hold: AgentHold;
  if (action === "rollback") {
    const revision = opts.revision ? history.find((h) => h.startsWith(opts.revision!)) ?? (/^[0-9a-f]{40}$/.test(opts.revision) ? opts.revision : undefined) : history[1];
    if (!revision) {
      throw new BpfopsError("NotFound", opts.revision ? `${opts.revision} is not a revision this host applied (${history.map((h) => h.slice(0, 12)).join(", ") || "none"}); give a full commit id` : `no earlier revision to roll back to (applied: ${history.map((h) => h.slice(0, 12)).join(", ") || "none"})`);
    }
    hold = { rollback: revision };
    console.log(`the agent applies ${revision} and holds there until \`bpfops resume\``);
  } else if (action === "suspend") {
    hold = { suspend: true };
    console.log("the agent applies no new revision until `bpfops resume` (drift is still put back)");
  } else {
    hold = {};
    console.log("the agent follows its ref again");
  }
  writeNote(root, "agent/hold", hold);
  return 0;
}
