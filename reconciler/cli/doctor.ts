// `bpfops doctor`: checks this host for what bpfops needs (see host/host-checks.ts) and prints
// each check with the command that fixes it. Exit 0 when nothing is missing, 1 otherwise.
import { runHostChecks } from "../host/host-checks.ts";

export function runDoctor(opts: { output: "text" | "json" }): number {
  const checks = runHostChecks();
  const missing = checks.filter((c) => c.status === "missing");
  if (opts.output === "json") {
    console.log(JSON.stringify({ ok: missing.length === 0, checks }, null, 2));
    return missing.length ? 1 : 0;
  }
  const mark = { ok: "ok  ", warning: "warn", missing: "FAIL" } as const;
  for (const c of checks) {
    console.log(`${mark[c.status]}  ${c.name.padEnd(18)} ${c.detail}`);
    if (c.status !== "ok" && c.neededBy) console.log(`${" ".repeat(25)}needed for: ${c.neededBy}`);
    if (c.status !== "ok" && c.fix) console.log(`${" ".repeat(25)}fix: ${c.fix}`);
  }
  console.log(missing.length ? `${missing.length} check(s) failed: ${missing.map((c) => c.name).join(", ")}` : "all required checks passed");
  return missing.length ? 1 : 0;
}
