// The `bpfops` command line: parses arguments with commander and dispatches to subcommands.
// Exit codes: 0 success, 1 changes (for diff-like commands), 2 or more an error.
import { Command } from "commander";
import { BpfopsError } from "../core/errors.ts";

// Errors are reported as JSON too when the command was asked for JSON output.
let jsonOutput = false;

const program = new Command()
  .name("bpfops")
  .description("GitOps for eBPF: reconcile eBPF programs, maps and hooks to manifests in git")
  .version("0.1.0")
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
  .command("reconcile")
  .description("reconcile this host's kernel to the manifests: prepare, commit atomically, prune")
  .option("--dry-run", "print the plan and change nothing")
  .option("--no-wait", "fail at once when another reconcile of the same bpffs root is running")
  .option("--path <dir>", "manifests directory (in a git work tree, objects may live anywhere in the repository)")
  .option("--repo <url>", "git repository (local path or http(s) URL) to read the manifests from")
  .option("--ref <ref>", "branch, tag or commit with --repo", "HEAD")
  .option("--verify", "load every new or changed program into the verifier, without attaching it")
  .option("--output <format>", "text or json", "text")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--labels <k=v,...>", "this host's labels, for host selectors")
  .option("--cache <dir>", "cache for compiled .bpf.c objects and fetched repositories")
  .action(async (opts) => {
    const { runReconcile } = await import("./reconcile.ts");
    if (opts.output !== "text" && opts.output !== "json") throw new BpfopsError("InvalidArgument", `--output must be text or json, not ${opts.output}`);
    jsonOutput = opts.output === "json";
    process.exitCode = await runReconcile(opts);
  });

program
  .command("status")
  .description("what is applied on this host, per object, read from the kernel (ids, run counts, provenance)")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--output <format>", "text or json", "text")
  .option("--stats-for <seconds>", "turn BPF run-time stats on for this long first, so run counts move", parseFloat)
  .action(async (opts: { bpffs: string; output: "text" | "json"; statsFor?: number }) => {
    const { runStatus, collectStats } = await import("./status.ts");
    jsonOutput = opts.output === "json";
    if (opts.statsFor) await collectStats(opts.statsFor);
    process.exitCode = runStatus(opts);
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
  if (jsonOutput) {
    console.log(JSON.stringify({ error: { code: err instanceof BpfopsError ? err.code : "Error", message: err.message, ...("issues" in err ? { issues: (err as { issues: unknown }).issues } : {}) } }, null, 2));
  }
  if (e instanceof BpfopsError && "verifierLog" in e) console.error(String((e as { verifierLog: string }).verifierLog).trimEnd().split("\n").slice(-20).join("\n"));
  process.exitCode = 2;
}
