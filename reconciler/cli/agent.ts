// `bpfops agent`: runs the GitOps agent (agent/agent.ts) until SIGTERM or SIGINT, with its HTTP
// endpoint (status, metrics, webhook) and JSON logs (pino; readable lines on a terminal).
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import pino from "pino";
import { Agent, type AgentSource } from "../agent/agent.ts";
import { agentMetrics } from "../agent/metrics.ts";
import { serveAgent } from "../agent/agent-http.ts";
import { BpfopsError } from "../core/errors.ts";
import { defaultCacheDir, parseLabels, readGitAuth } from "./source-options.ts";

export interface AgentCliOptions {
  repo?: string;
  ref: string;
  path?: string;
  dir?: string;
  interval: string;
  driftInterval?: string;
  labels?: string;
  bpffs: string;
  cache?: string;
  listen: string;
  webhookSecretFile?: string;
  authFile?: string;
  allowUnsigned?: boolean;
  verifyCommits?: string;
  bpfStats?: boolean;
  logLevel: string;
  etcd?: string;
  fleet: string;
  host?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdAuthFile?: string;
}

/** "500ms", "1s", "2m", "1h" (at least 100 ms) -> milliseconds. */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"] : NaN;
  if (!(ms >= 100)) throw new BpfopsError("InvalidArgument", `${what}: "${s}" is not a duration of at least 100ms (500ms, 1s, 2m, 1h)`);
  return ms;
}

/** On a terminal, one readable line per record; JSON lines otherwise. */
function terminalLines(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const r = JSON.parse(chunk.toString()) as Record<string, unknown>;
      const { time, level, msg, pid: _pid, hostname: _host, ...rest } = r;
      const name = ({ 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" } as Record<number, string>)[level as number] ?? String(level);
      const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
      process.stdout.write(`${new Date(time as number).toISOString().slice(11, 23)} ${name.padEnd(5)} ${msg}${fields ? `  ${fields}` : ""}\n`);
      done();
    },
  });
}

export async function runAgent(opts: AgentCliOptions): Promise<number> {
  if ([opts.repo, opts.dir, opts.etcd].filter(Boolean).length !== 1) {
    throw new BpfopsError("InvalidArgument", "say what to follow, one of: --repo URL|PATH (a git repository), --dir DIR (watch a directory while developing), --etcd URLS (a fleet's rollouts)");
  }
  const remote = !!opts.repo && /^https?:\/\//.test(opts.repo);
  if (opts.verifyCommits && opts.dir) throw new BpfopsError("InvalidArgument", "--verify-commits checks commits: it goes with --repo, not --dir");
  const verifier = opts.verifyCommits ? await (await import("../agent/commit-verify.ts")).CommitVerifier.fromFile(opts.verifyCommits) : undefined;
  if (remote && !opts.allowUnsigned && !verifier) {
    throw new BpfopsError("InvalidArgument", `following ${opts.repo} loads its code into this kernel: without --verify-commits KEYRING, say --allow-unsigned (the agent's status will say so)`);
  }
  const interval = parseDuration(opts.interval, "--interval");
  const drift = opts.driftInterval ? parseDuration(opts.driftInterval, "--drift-interval") : interval;
  const [host, portText] = opts.listen.includes(":") ? [opts.listen.slice(0, opts.listen.lastIndexOf(":")), opts.listen.slice(opts.listen.lastIndexOf(":") + 1)] : ["127.0.0.1", opts.listen];
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BpfopsError("InvalidArgument", `--listen: "${opts.listen}" is not HOST:PORT`);
  const secret = opts.webhookSecretFile ? readFileSync(opts.webhookSecretFile) : undefined;
  if (secret && secret.toString().trim().length < 16) throw new BpfopsError("InvalidArgument", `--webhook-secret-file ${opts.webhookSecretFile}: a secret of at least 16 characters`);

  const log = pino({ level: opts.logLevel, base: { pid: process.pid } }, process.stdout.isTTY ? terminalLines() : pino.destination(1));
  // libbpf's debug messages (every section and relocation) are captured only when they are logged.
  if (log.isLevelEnabled("debug")) (await import("../kernel/object.ts")).setLibbpfLogLevel("debug");
  const labels = parseLabels(opts.labels);
  const cacheDir = opts.cache ?? defaultCacheDir();
  // The agent is made before its fleet link can tell it of a target: the link calls it through this.
  let onTarget = () => undefined as void;
  const link = opts.etcd ? await fleetLink(opts, labels, cacheDir, log, () => onTarget()) : undefined;
  const source: AgentSource = link
    ? { kind: "fleet", link }
    : opts.dir
      ? { kind: "directory", path: opts.dir }
      : { kind: "git", repo: opts.repo!, ref: opts.ref, ...(opts.path ? { path: opts.path } : {}), ...(opts.authFile ? { auth: readGitAuth(opts.authFile) } : {}) };
  const metrics = agentMetrics();
  const { MapMetrics } = await import("../agent/map-metrics.ts");
  const declared = new MapMetrics(metrics.registry, opts.bpffs, log);
  const agent = new Agent({
    source,
    root: opts.bpffs,
    labels,
    cacheDir,
    intervalMs: interval,
    driftIntervalMs: drift,
    unsigned: remote && !verifier,
    log,
    metrics,
    onApplied: (r) => declared.update(r.build.desired.maps),
    ...(verifier ? { verifier } : {}),
  });
  let stats: { close(): void } | undefined;
  // Each owned program's run statistics, read from the kernel (for metrics and run-time gates).
  let programStats = (): Array<{ name: string; id: number; tag: string; runCount: number; runTimeNs: number }> => [];
  if (opts.bpfStats) {
    // Run counts need the kernel's BPF stats on, which cost a little per run: only when asked.
    const [{ enableRunTimeStats }, { readStatus }, { programStatsMetrics }] = await Promise.all([import("../kernel/observe.ts"), import("../host/status.ts"), import("../agent/metrics.ts")]);
    stats = enableRunTimeStats();
    programStats = () =>
      readStatus(opts.bpffs, { statsOn: true })
        .filter((e) => e.kind === "Program")
        .map((e) => ({ name: e.name, id: e.id, tag: String(e.detail.tag), runCount: Number(e.detail.runCount ?? 0), runTimeNs: Number(e.detail.runTimeNs ?? 0) }));
    programStatsMetrics(agent.config.metrics.registry, programStats);
  }
  if (link) {
    const { RUN_TIME, RUN_COUNT } = await import("../fleet/rollout-rings.ts");
    link.figures = () => [
      ...declared.snapshot(),
      ...programStats().flatMap((p) => [
        { name: RUN_TIME, labels: { program: p.name }, value: p.runTimeNs },
        { name: RUN_COUNT, labels: { program: p.name }, value: p.runCount },
      ]),
    ];
  }
  const { server, address } = await serveAgent(agent, { host: host || "127.0.0.1", port, ...(secret ? { webhookSecret: Buffer.from(secret.toString().trim()) } : {}) });
  log.info({ source: agent.status.source, listen: `${address.address}:${address.port}`, interval, drift, unsigned: remote && !verifier, ...(verifier ? { verifyCommits: verifier.describe } : {}) }, "agent started");
  if (remote && !verifier) log.warn({ repo: opts.repo }, "following a remote repository without verifying commit signatures (--allow-unsigned)");
  let watcher: { close(): Promise<void> } | undefined;
  if (opts.dir) {
    const { watch } = await import("chokidar");
    let debounce: NodeJS.Timeout | undefined;
    const w = watch(opts.dir, { ignoreInitial: true, ignored: (p: string) => /(^|\/)\.(git|cache)(\/|$)/.test(p) });
    w.on("all", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => agent.trigger(), 200);
    });
    watcher = w;
  }
  onTarget = () => agent.trigger();
  link?.start();
  agent.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "stopping: the programs keep running");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await agent.stop();
  await link?.close();
  stats?.close();
  await watcher?.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  log.flush?.();
  return 0;
}

async function fleetLink(opts: AgentCliOptions, labels: Record<string, string>, cacheDir: string, log: pino.Logger, onTarget: () => void) {
  const [{ openFleetStore }, { FleetLink }, { hostname }] = await Promise.all([import("../fleet/fleet-store.ts"), import("../fleet/fleet-link.ts"), import("node:os")]);
  return new FleetLink(openFleetStore({ ...opts, etcd: opts.etcd! }), opts.host ?? hostname(), labels, cacheDir, log, onTarget);
}
