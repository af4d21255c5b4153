// An agent's link to its fleet in etcd: registers the host (labels, kernel, feature probes) under
// a lease, watches the host's target, fetches bundles by digest (kept on disk, so that a restart
// without etcd still heals), and writes the agent's status back. Losing etcd changes nothing in
// the kernel: the last target stays the target, and the link reconnects by itself.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import type { Lease, Watcher } from "etcd3";
import { decodeBundle, type Bundle } from "./bundle.ts";
import type { FleetStore, HostStatus, Member, Target } from "./fleet-store.ts";
import type { Sample } from "./rollout-rings.ts";
import { probeFeature, type FeatureName } from "../kernel/features.ts";
import type { AgentLog, AgentStatus } from "../agent/agent.ts";

const PROBED: FeatureName[] = ["btf", "xdpLink", "xdpLinkUpdate", "tcx", "tcxLinkUpdate", "cgroupLinkUpdate", "fentry", "lsm", "kprobe", "bpfStats"];
const RETRY_MS = 1000;
const KEEP_BUNDLE_MS = 30_000;
/** Bundles kept on disk besides the target's and the one its entries apply to; older ones are deleted. */
export const BUNDLES_ON_DISK = 8;

export class FleetLink {
  target: Target | undefined;
  /** the figures health gates read, taken with each status report */
  figures: () => Sample[] = () => [];
  #lease: Lease | undefined;
  #watch: Watcher | undefined;
  #closed = false;
  #pendingStatus: HostStatus | undefined;
  #writing = false;
  readonly #dir: string;

  constructor(
    readonly store: FleetStore,
    readonly host: string,
    readonly labels: Record<string, string>,
    cacheDir: string,
    private readonly log: AgentLog,
    /** a new target arrived */
    private readonly onTarget: () => void,
  ) {
    this.#dir = join(cacheDir, "fleet", store.fleet);
    mkdirSync(join(this.#dir, "bundles"), { recursive: true, mode: 0o700 });
    // The last target known survives restarts: a partitioned host keeps its revision.
    try {
      this.target = JSON.parse(readFileSync(join(this.#dir, "target.json"), "utf8")) as Target;
    } catch {
      this.target = undefined;
    }
  }

  get describe(): string {
    return `fleet ${this.store.fleet} as ${this.host}`;
  }

  /** Registers and watches; keeps retrying in the background while etcd is away. */
  start(): void {
    void this.#connect();
  }

  async #connect(): Promise<void> {
    while (!this.#closed) {
      try {
        const features: Member["features"] = {};
        for (const f of PROBED) {
          const p = probeFeature(f);
          features[f] = p.status === "supported" ? true : p.detail || p.status;
        }
        this.#lease = await this.store.register({ host: this.host, labels: this.labels, kernel: release(), features, since: new Date().toISOString() });
        this.#lease.on("lost", () => {
          if (this.#closed) return;
          this.log.warn({ fleet: this.store.fleet }, "etcd lease lost: enforcing the last target, reconnecting");
          this.#watch?.cancel().catch(() => undefined);
          setTimeout(() => void this.#connect(), RETRY_MS);
        });
        this.#watch = await this.store.watchTarget(this.host, (t) => {
          if (!t || t.digest === this.target?.digest) return;
          this.target = t;
          writeAtomic(join(this.#dir, "target.json"), JSON.stringify(t));
          this.onTarget();
        });
        this.log.info({ fleet: this.store.fleet, host: this.host }, "registered with the fleet");
        void this.#flushStatus();
        return;
      } catch (e) {
        this.log.warn({ fleet: this.store.fleet, error: (e as Error).message }, "etcd unreachable: enforcing the last target, retrying");
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  /** The bundle of digest: from disk if fetched before (its digest checked again), else from etcd. */
  async bundle(digest: string): Promise<Bundle> {
    const file = this.#bundleFile(digest);
    try {
      return decodeBundle(readFileSync(file), digest);
    } catch {
      const { bundle, bytes } = await this.store.fetchBundle(digest);
      writeAtomic(file, bytes);
      this.#pruneBundles();
      return bundle;
    }
  }

  /** Whether the bundle of digest is on disk (usable with etcd away). */
  hasBundle(digest: string): boolean {
    return existsSync(this.#bundleFile(digest));
  }

  #bundleFile(digest: string): string {
    return join(this.#dir, "bundles", digest.replace(/^sha256:/, ""));
  }

  /** Keeps the newest BUNDLES_ON_DISK bundles, and always the target's and the one its entries apply to. */
  #pruneBundles(): void {
    const dir = join(this.#dir, "bundles");
    const keep = new Set([this.target?.digest, this.target?.entries?.from].filter((d): d is string => !!d).map((d) => d.replace(/^sha256:/, "")));
    try {
      const files = readdirSync(dir)
        .filter((f) => /^[0-9a-f]{64}$/.test(f) && !keep.has(f))
        .map((f) => ({ f, at: statSync(join(dir, f)).mtimeMs }))
        .sort((a, b) => b.at - a.at);
      for (const { f } of files.slice(BUNDLES_ON_DISK)) unlinkSync(join(dir, f));
    } catch (e) {
      this.log.warn({ error: (e as Error).message }, "could not delete old bundles from disk");
    }
  }

  /**
   * Fetches the bundle of digest to disk within a minute, unless it is there: an agent that applied
   * a revision's entries without its bundle builds from it after a restart. Later, so as not to
   * compete with the fleet's next change (an emergency rule is often followed by a program within
   * seconds); spread, so as not to reach etcd at once. (Restarted before that with etcd away, the
   * agent keeps what the kernel runs and builds when etcd is back.)
   */
  keepBundle(digest: string): void {
    const t = setTimeout(() => {
      if (this.#closed) return;
      this.bundle(digest).catch((e: Error) => this.log.warn({ digest, error: e.message }, "could not fetch the bundle of the applied entries; fetched when it is needed"));
    }, KEEP_BUNDLE_MS + Math.random() * KEEP_BUNDLE_MS);
    t.unref();
  }

  /** The agent's status, written to etcd now, or when etcd is back (only the latest is kept). */
  report(s: AgentStatus, applyMs?: number): void {
    const ready = s.conditions.find((c) => c.type === "Ready")!;
    const cls = s.lastError?.code === "Blocked" ? "Blocked" : s.lastError?.class;
    this.#pendingStatus = {
      host: this.host,
      ready: ready.status,
      reason: ready.reason,
      message: ready.message,
      ...(s.lastAppliedRevision ? { lastAppliedRevision: s.lastAppliedRevision } : {}),
      ...(s.lastAttemptedRevision ? { lastAttemptedRevision: s.lastAttemptedRevision } : {}),
      ...(applyMs !== undefined ? { applyMs } : {}),
      ...(cls ? { errorClass: cls } : {}),
      ...(s.lastError?.revision ? { failedRevision: s.lastError.revision } : {}),
      metrics: this.#figures(),
      at: new Date().toISOString(),
    };
    void this.#flushStatus();
  }

  #figures(): Sample[] {
    try {
      return this.figures();
    } catch (e) {
      this.log.warn({ error: (e as Error).message }, "could not read the figures for the health gates");
      return [];
    }
  }

  async #flushStatus(): Promise<void> {
    if (this.#writing || !this.#pendingStatus || !this.#lease) return;
    this.#writing = true;
    try {
      while (this.#pendingStatus && !this.#closed) {
        const s: HostStatus = this.#pendingStatus;
        try {
          await this.store.writeStatus(s);
          if (this.#pendingStatus === s) this.#pendingStatus = undefined;
        } catch {
          // etcd away: the newest status is written when the link reconnects
          break;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#watch?.cancel().catch(() => undefined);
    // Revoked, so that the controller sees the host leave at once rather than at the lease's end.
    await this.#lease?.revoke().catch(() => undefined);
    this.store.close();
  }
}

function writeAtomic(file: string, data: string | Buffer): void {
  writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
