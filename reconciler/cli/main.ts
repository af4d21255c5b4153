// The `bpfops` command line: parses arguments with commander and dispatches to subcommands.
// Exit codes: 0 success, 1 changes (for diff-like commands), 2 an error, 3 a verifier rejection.
import { Command, InvalidArgumentError, Option } from "commander";
import { BpfopsError } from "../core/errors.ts";

// A closed stdout (`bpfops ... | head`) ends the command quietly, never with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const positiveNumber = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number, not "${v}"`);
  return n;
};
const outputOption = () => new Option("--output <format>", "text or json").choices(["text", "json"]).default("text");

const RECONCILE_HELP = `
Exit codes:
  --dry-run  0 no changes, 1 changes apply would make, 2 an error or a plan apply would refuse
             (a conflict, a blocked hook), 3 a program the verifier rejects (--verify)
  apply      0 applied (or nothing to do), 2 an error: nothing was changed, or what changed was rolled back

Examples:
  bpfops reconcile --dry-run --path manifests/demo --verify
  bpfops reconcile --repo https://git.example/ebpf.git --ref main --path hosts/edge
  bpfops reconcile --path manifests/demo --allow-empty     # prune everything bpfops owns here

Environment:
  NO_COLOR         plain text even on a terminal
  BPFOPS_LOCK_DIR  where the host lock lives (default /run/bpfops)
  BPFOPS_NATIVE    the native addon to load (bpfops --help lists every variable)`;

type DoctorCliOptions = { output: "text" | "json"; path?: string; repo?: string; ref?: string; labels?: string; cache?: string };

// Every environment variable that changes what bpfops does (README "Environment" says the same).
const ENVIRONMENT = `
Environment:
  NO_COLOR               plain text even on a terminal
  BPFOPS_NATIVE          load the native addon from this path instead of the package's build
  BPFOPS_LOCK_DIR        where the per-bpffs-root host lock lives (default /run/bpfops)
  BPFOPS_NO_CODE_CACHE   do not use or write V8's code cache (an installed package keeps it beside
                         its bundle, or in $XDG_CACHE_HOME/bpfops, default ~/.cache/bpfops)
  BPFOPS_REBUILD_NATIVE  npm install: build the addon even when one is already built
  For tests only: BPFOPS_KILL_BEFORE_STEP=N (SIGKILL reconcile before apply step N),
  BPFOPS_ANNOUNCE_EXECUTE=1 (say on stderr when apply starts), BPFOPS_REQUIRE_KERNEL=1 (the
  suite fails instead of skipping a kernel test), BPFOPS_HIDE_FEATURES=tcx,xdpLink,...
  (the probes report these features missing, so older kernels' attach paths are taken)`;

// Errors are reported as JSON too when the command was asked for JSON output.
let jsonOutput = false;

const program = new Command()
  .name("bpfops")
  .exitOverride((err) => {
    // commander's own usage errors (unknown option, bad choice) exit 2 like every other error.
    process.exit(err.exitCode === 0 ? 0 : 2);
  })
  .description("GitOps for eBPF: reconcile eBPF programs, maps and hooks to manifests in git")
  .option("-V, --version", "print bpfops's version, its commit, and the libbpf and kernel it runs on")
  .showHelpAfterError()
  .addHelpText("after", ENVIRONMENT);

program
  .command("demo")
  .description("hot-swap the packet-of-death filter under traffic in a throwaway lab of network namespaces")
  .option("--pps <n>", "packets per second", positiveNumber("--pps"), 40_000)
  .option("--seconds <n>", "seconds of traffic per phase", positiveNumber("--seconds"), 2)
  .addHelpText("after", "\nExit codes: 0, or 2 on an error (everything it made is removed either way).\n\nExample:\n  bpfops demo --pps 20000 --seconds 3")
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
  .option("--allow-empty", "allow a revision that would prune every object bpfops owns on this host")
  .option("--map-memory-budget <bytes>", "refuse Maps whose maxEntries x (key + value) is larger (default 1 GiB)", positiveNumber("--map-memory-budget"))
  .addOption(outputOption())
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--labels <k=v,...>", "this host's labels, for host selectors")
  .option("--cache <dir>", "cache for compiled .bpf.c objects and fetched repositories")
  .addHelpText("after", RECONCILE_HELP)
  .action(async (opts) => {
    jsonOutput = opts.output === "json";
    const { runReconcile } = await import("./reconcile.ts");
    process.exitCode = await runReconcile(opts);
  });

program
  .command("status")
  .description("what is applied on this host, per object, read from the kernel (ids, run counts, provenance)")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .addOption(outputOption())
  .option("--check", "exit 2 unless every owned link is enforcing on an existing hook")
  .option("--stats-for <seconds>", "turn BPF run-time stats on for this long first, so run counts move", positiveNumber("--stats-for"))
  .addHelpText("after", "\nExit codes: 0, or with --check 2 when an owned link no longer enforces (its interface or cgroup is gone).\n\nExamples:\n  bpfops status\n  bpfops status --check --output json\n  bpfops status --stats-for 5")
  .action(async (opts: { bpffs: string; output: "text" | "json"; statsFor?: number; check?: boolean }) => {
    const { runStatus, collectStats } = await import("./status.ts");
    jsonOutput = opts.output === "json";
    // Stats stay on while status reads, so the counts it prints are real ones.
    const stats = opts.statsFor ? await collectStats(opts.statsFor) : null;
    try {
      process.exitCode = runStatus({ ...opts, statsOn: !!stats });
    } finally {
      stats?.close();
    }
  });

program
  .command("agent")
  .description("follow a git repository (or watch a directory) and keep this host's kernel at its last good revision")
  .option("--repo <url|path>", "git repository: an http(s) URL or a local path")
  .option("--ref <branch>", "the branch (or tag) to follow", "main")
  .option("--path <dir>", "the manifests directory inside the repository")
  .option("--dir <dir>", "development: watch this directory and apply on save (instead of --repo)")
  .option("--interval <duration>", "how often to read the ref's head (ls-refs; nothing is fetched unless it moved)", "30s")
  .option("--drift-interval <duration>", "how often to re-read what it owns and put back what changed (default: --interval)")
  .option("--labels <k=v,...>", "this host's labels, for host selectors")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--cache <dir>", "cache for fetched repositories and compiled objects")
  .option("--listen <host:port>", "status (GET /status), metrics (GET /metrics) and webhook (POST /webhook) endpoint", "127.0.0.1:9464")
  .option("--webhook-secret-file <file>", "the HMAC secret of webhook requests (GitHub X-Hub-Signature-256, Gitea X-Gitea-Signature)")
  .option("--auth-file <file>", "credentials for an http(s) repository: user:password, or a token (never on the command line)")
  .option("--allow-unsigned", "follow a remote repository without verifying commit signatures")
  .option("--verify-commits <keyring>", "apply only head commits signed by one of these keys")
  .option("--bpf-stats", "turn the kernel's BPF run-time stats on and export each program's run count and time (ebpf_program_run_count_total)")
  .option("--etcd <urls>", "fleet mode (instead of --repo): etcd endpoints, comma-separated; apply the bundles the rollout controller targets at this host")
  .option("--fleet <name>", "the fleet's name in etcd", "default")
  .option("--host <name>", "this host's name in the fleet (default: the hostname)")
  .option("--etcd-ca <file>", "CA certificate for TLS to etcd")
  .option("--etcd-cert <file>", "client certificate for etcd (with --etcd-key)")
  .option("--etcd-key <file>", "client key for etcd")
  .option("--etcd-auth-file <file>", "etcd user:password, from a file")
  .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"))
  .addHelpText(
    "after",
    "\nExit codes: 0 after SIGTERM or SIGINT (the programs keep running), 2 on bad options.\n\nExamples:\n  bpfops agent --repo /srv/ebpf.git --ref main --path hosts/edge --interval 5s\n  bpfops agent --repo https://git.example/ebpf.git --ref main --allow-unsigned --auth-file /etc/bpfops/token --webhook-secret-file /etc/bpfops/hook\n  bpfops agent --dir ./manifests     # apply on save while developing\n  bpfops agent --etcd https://etcd-1:2379,https://etcd-2:2379 --fleet edge --labels ring=canary --etcd-ca ca.pem --etcd-cert me.pem --etcd-key me.key",
  )
  .action(async (opts) => {
    const { runAgent } = await import("./agent.ts");
    process.exitCode = await runAgent(opts);
  });

/** Where the fleet's etcd is, and how to authenticate to it. */
function etcdOptions(c: Command, required = true): Command {
  return c
    .addOption(new Option("--etcd <urls>", "etcd endpoints, comma-separated").makeOptionMandatory(required))
    .option("--fleet <name>", "the fleet's name in etcd", "default")
    .option("--etcd-ca <file>", "CA certificate for TLS to etcd")
    .option("--etcd-cert <file>", "client certificate for etcd (with --etcd-key)")
    .option("--etcd-key <file>", "client key for etcd")
    .option("--etcd-auth-file <file>", "etcd user:password, from a file");
}

etcdOptions(program.command("controller").description("lead the fleet's rollouts (one of several may run; etcd elects the leader): build each revision once and move it ring by ring"))
  .requiredOption("--repo <url|path>", "the fleet's git repository")
  .option("--ref <branch>", "the branch rollouts take revisions from", "main")
  .option("--path <dir>", "the manifests directory inside the repository")
  .option("--cache <dir>", "cache for fetched repositories and compiled objects")
  .option("--auth-file <file>", "credentials for an http(s) repository: user:password, or a token")
  .option("--verify-commits <keyring>", "roll out only commits signed by one of these keys (OpenPGP, SSH allowed signers)")
  .option("--allow-unsigned", "roll out a remote repository's commits without verifying signatures")
  .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"))
  .addHelpText("after", "\nExit codes: 0 after SIGTERM or SIGINT, 2 on bad options.\n\nExample:\n  bpfops controller --etcd https://etcd-1:2379 --fleet edge --repo https://git.example/ebpf.git --verify-commits /etc/bpfops/keys --etcd-ca ca.pem --etcd-cert ctl.pem --etcd-key ctl.key")
  .action(async (opts) => {
    const { runController } = await import("./controller.ts");
    process.exitCode = await runController(opts);
  });

const rollout = program.command("rollout").description("staged rollouts of the fleet's revisions (the controller carries them out)");
etcdOptions(rollout.command("start").description("roll a revision out, ring by ring (as the repository's Rollout manifest says)"))
  .argument("[revision]", "a commit id or ref of the controller's repository (default: the head of its ref)")
  .option("--emergency", "the emergency path: no bake time, ring after ring as fast as the agents apply")
  .option("--wait", "follow the rollout to its end; exit 1 unless it succeeds")
  .option("--timeout <seconds>", "with --wait: give up after this long", positiveNumber("--timeout"), 600)
  .addOption(outputOption())
  .addHelpText("after", "\nExit codes: 0, 1 when --wait and the rollout did not succeed, 2 on errors.\n\nExamples:\n  bpfops rollout start --etcd http://127.0.0.1:2379\n  bpfops rollout start 3f2a9c1d... --emergency --wait --etcd http://127.0.0.1:2379")
  .action(async (revision: string | undefined, opts) => {
    jsonOutput = opts.output === "json";
    const { runRolloutStart } = await import("./fleet.ts");
    process.exitCode = await runRolloutStart({ ...opts, ...(revision ? { revision } : {}) });
  });
etcdOptions(rollout.command("status").description("a rollout (default: the latest) and its hosts by ring"))
  .argument("[id]", "a rollout id")
  .option("--watch", "follow it: a live view on a terminal, JSON lines otherwise")
  .addOption(outputOption())
  .action(async (id: string | undefined, opts) => {
    jsonOutput = opts.output === "json";
    const { runFleetStatus } = await import("./fleet.ts");
    process.exitCode = await runFleetStatus({ ...opts, ...(id ? { id } : {}) });
  });
for (const [command, description] of [
  ["pause", "stop advancing to the next ring (hosts keep what they run)"],
  ["resume", "go on advancing"],
  ["abort", "stop and send every host the rollout reached back to the last good revision"],
  ["rollback", "send every host running the rollout's revision back to the revision before it (also after success)"],
] as const) {
  etcdOptions(rollout.command(command).description(description))
    .argument("[id]", "a rollout id (default: the latest)")
    .action(async (id: string | undefined, opts) => {
      const { runRolloutCommand } = await import("./fleet.ts");
      process.exitCode = await runRolloutCommand(command, { ...opts, ...(id ? { id } : {}) });
    });
}
const fleet = program.command("fleet").description("the fleet in etcd");
etcdOptions(fleet.command("status").description("hosts by ring, with revision, Ready and message"))
  .option("--watch", "during a rollout: a live view on a terminal (per ring: done of total, apply p50/p99, gates), JSON lines otherwise")
  .addOption(outputOption())
  .addHelpText("after", "\nExit codes: 0, 1 when the latest rollout failed or was rolled back, 2 on errors.\n\nExample:\n  bpfops fleet status --etcd http://127.0.0.1:2379 --fleet edge --watch")
  .action(async (opts) => {
    jsonOutput = opts.output === "json";
    const { runFleetStatus } = await import("./fleet.ts");
    process.exitCode = await runFleetStatus(opts);
  });

for (const [action, description, example] of [
  ["rollback", "make the agent apply an earlier revision (default: the one before the last applied) and hold there", "bpfops rollback            # the previous revision\n  bpfops rollback 3f2a9c1d2e4b"],
  ["suspend", "make the agent apply no new revision until resume (drift is still put back)", "bpfops suspend"],
  ["resume", "make the agent follow its ref again after rollback or suspend", "bpfops resume"],
] as const) {
  const c = program.command(action).description(description);
  if (action === "rollback") c.argument("[revision]", "a commit id (or its prefix) this host applied");
  c.option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
    .addHelpText("after", `\nExit codes: 0, or 2 when there is no such revision.\n\nExample:\n  ${example}`)
    .action(async (...args: unknown[]) => {
      const opts = args.find((x) => x && typeof x === "object" && "bpffs" in (x as object)) as { bpffs: string };
      const revision = typeof args[0] === "string" ? args[0] : undefined;
      const { runHold } = await import("./hold.ts");
      process.exitCode = runHold(action, { bpffs: opts.bpffs, ...(revision ? { revision } : {}) });
    });
}

const mapCommand = program.command("map").description("read a map bpfops pinned, decoded by its BTF: a Map manifest's name, PROGRAM/MAP, or a pin path");
mapCommand
  .command("get")
  .description("one entry's value")
  .argument("<name>", "a Map manifest's name, PROGRAM/MAP for an object map, or a pin path")
  .argument("<key>", "the key: fields as YAML ('{ saddr: 10.0.0.1, dport: 80 }'), an integer, or hex:...")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--sum", "per-CPU maps: the sum over CPUs instead of each CPU's value")
  .addOption(outputOption())
  .addHelpText("after", "\nExit codes: 0, or 2 when the map or the key is not there.\n\nExamples:\n  bpfops map get allow '{ saddr: 10.0.0.1, dport: 80, proto: udp }'\n  bpfops map get counter/tcx_counts 1 --sum")
  .action(async (name: string, key: string, opts: { bpffs: string; output: "text" | "json"; sum?: boolean }) => {
    jsonOutput = opts.output === "json";
    const { runMapGet } = await import("./map.ts");
    process.exitCode = runMapGet(name, key, opts);
  });
mapCommand
  .command("dump")
  .description("every entry, decoded (text: key -> value per line; json: the entries as data)")
  .argument("<name>", "a Map manifest's name, PROGRAM/MAP for an object map, or a pin path")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--sum", "per-CPU maps: the sum over CPUs instead of each CPU's value")
  .addOption(outputOption())
  .addHelpText("after", "\nExit codes: 0, or 2 when the map is not there.\n\nExamples:\n  bpfops map dump blocklist\n  bpfops map dump counter/tcx_counts --sum --output json")
  .action(async (name: string, opts: { bpffs: string; output: "text" | "json"; sum?: boolean }) => {
    jsonOutput = opts.output === "json";
    const { runMapDump } = await import("./map.ts");
    process.exitCode = runMapDump(name, opts);
  });

program
  .command("events")
  .description("print the records of a pinned ring buffer or perf event array as JSON lines, decoded by its recordType")
  .argument("<name>", "a Map manifest's name, PROGRAM/MAP for an object map, or a pin path")
  .option("--bpffs <root>", "bpffs directory that bpfops owns", "/sys/fs/bpf/bpfops")
  .option("--count <n>", "stop after this many records", positiveNumber("--count"))
  .option("--seconds <n>", "stop after this long", positiveNumber("--seconds"))
  .option("--type <struct>", "decode records as this struct (default: the Map manifest's recordType)")
  .addHelpText("after", "\nExit codes: 0 (interrupted, or --count or --seconds reached), 2 when the map is not a ring buffer or perf event array.\n\nExamples:\n  bpfops events security-events\n  bpfops events security-events --count 10 | jq .comm")
  .action(async (name: string, opts: { bpffs: string; count?: number; seconds?: number; type?: string }) => {
    const { runEvents } = await import("./events.ts");
    process.exitCode = await runEvents(name, opts);
  });

program
  .command("completion")
  .description("print a completion script for bash, zsh or fish")
  .argument("<shell>", "bash, zsh or fish")
  .addHelpText("after", "\nExamples:\n  source <(bpfops completion bash)\n  bpfops completion fish > ~/.config/fish/completions/bpfops.fish")
  .action(async (shell: string) => {
    if (!["bash", "zsh", "fish"].includes(shell)) throw new BpfopsError("InvalidArgument", `completion: ${shell} is not one of bash, zsh, fish`);
    const { completionScript } = await import("./completion.ts");
    process.stdout.write(completionScript(program, shell));
  });

program
  .command("doctor")
  .description("check this host for what bpfops needs: kernel, BTF, mounts, capabilities, toolchain, features")
  .addOption(outputOption())
  .option("--path <dir>", "also check what these manifests need (their hooks, .bpf.c builds, netns): required, not optional")
  .option("--repo <url>", "the same for manifests in a git repository (local path or http(s) URL)")
  .option("--ref <ref>", "branch, tag or commit with --repo", "HEAD")
  .option("--labels <k=v,...>", "this host's labels: only manifests selecting this host count")
  .option("--cache <dir>", "cache for fetched repositories")
  .addHelpText(
    "after",
    "\nExit codes: 0 nothing required is missing, 1 a required check failed (each says how to fix it),\n  2 an error (manifests that do not parse, a repository that cannot be read).\n\nExamples:\n  bpfops doctor\n  bpfops doctor --path manifests/demo     # fails when a hook or tool these manifests need is missing\n  bpfops doctor --output json | jq '.checks[] | select(.status != \"ok\")'",
  )
  .action(async (opts: DoctorCliOptions) => {
    jsonOutput = opts.output === "json";
    const { runDoctor } = await import("./doctor.ts");
    process.exitCode = await runDoctor(opts);
  });

program
  .command("features")
  .description("probe what this kernel supports (cached per process)")
  .addOption(outputOption())
  .addHelpText("after", "\nExit codes: 0.\n\nExample:\n  bpfops features --output json")
  .action(async (opts: { output: string }) => {
    const { probeFeature } = await import("../kernel/features.ts");
    const { attachPaths } = await import("../host/host-checks.ts");
    const names = ["btf", "xdpLink", "xdpLinkUpdate", "tcx", "tcxLinkUpdate", "cgroupLinkUpdate", "fentry", "lsm", "kprobe", "bpfStats", "tracefs", "netfilterLink", "uprobe", "sockmapLink"] as const;
    const all = names.map((n) => probeFeature(n));
    const paths = attachPaths();
    if (opts.output === "json") console.log(JSON.stringify({ features: all, attachPaths: paths }, null, 2));
    else {
      for (const s of all) console.log(`${s.status.padEnd(12)} ${s.feature.padEnd(17)} ${s.detail}`);
      console.log("\nattach path per hook type:");
      for (const p of paths) console.log(`  ${p.hook.padEnd(25)} ${p.path}`);
    }
  });

async function main(): Promise<void> {
  try {
    // --version alone: answered before any command is parsed (it loads only what it prints).
    if (process.argv[2] === "--version" || process.argv[2] === "-V") {
      const { versionText } = await import("./version.ts");
      console.log(await versionText());
    } else await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as Error;
    console.error(`bpfops: ${err.message}`);
    if (jsonOutput) {
      console.log(JSON.stringify({ error: { code: err instanceof BpfopsError ? err.code : "Error", message: err.message, ...("issues" in err ? { issues: (err as { issues: unknown }).issues } : {}) } }, null, 2));
    }
    if (e instanceof BpfopsError && "verifierLog" in e) console.error(String((e as { verifierLog: string }).verifierLog).trimEnd().split("\n").slice(-20).join("\n"));
    process.exitCode = 2;
  }
}

// No top-level await: the bundle is CommonJS (see scripts/build.mjs).
void main();
