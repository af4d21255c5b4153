// The `bpfops` command line: parses arguments with commander and dispatches to subcommands.
// Exit codes: 0 success, 1 changes (for diff-like commands), 2 or more an error.
import { Command } from "commander";
import { BpfopsError } from "../core/errors.ts";

const program = new Command()
  .name("bpfops")
  .description("GitOps for eBPF: reconcile eBPF programs, maps and hooks to manifests in git")
  .showHelpAfterError();

program
  .command("demo")
  .description("hot-swap the packet-of-death filter under traffic in a throwaway lab of network namespaces")
  .option("--pps <n>", "packets per second", (v) => parseInt(v, 10), 40_000)
  .option("--seconds <n>", "seconds of traffic per phase", (v) => parseFloat(v), 2)
  .action(async (opts: { pps: number; seconds: number }) => {
    const { runDemo } = await import("./demo.ts");
    await runDemo(opts);
  });

program
  .command("features")
  .description("probe what this kernel supports (cached per process)")
  .option("--output <format>", "text or json", "text")
  .action(async (opts: { output: string }) => {
    const { probeFeature } = await import("../kernel/features.ts");
    const names = ["btf", "xdpLink", "xdpLinkUpdate", "tcx", "tcxLinkUpdate", "cgroupLinkUpdate", "fentry", "bpfStats", "tracefs"] as const;
    const all = names.map((n) => probeFeature(n));
    if (opts.output === "json") console.log(JSON.stringify(all, null, 2));
    else for (const s of all) console.log(`${s.status.padEnd(12)} ${s.feature.padEnd(17)} ${s.detail}`);
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as Error;
  console.error(`bpfops: ${err.message}`);
  if (e instanceof BpfopsError && "verifierLog" in e) console.error(String((e as { verifierLog: string }).verifierLog).trimEnd().split("\n").slice(-20).join("\n"));
  process.exitCode = 2;
}
