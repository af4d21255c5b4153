// The GitOps agent: follows a git ref (or watches a directory) and keeps this host's kernel at
// the last good revision. Each cycle reads the head cheaply (ls-refs, or the local ref); a new
// commit is applied with reconcileOnce, and a bad one is refused whole (Stalled) while the last
// good revision keeps running; on the drift interval the applied revision is reconciled again,
// which puts back what was changed out of band (a detached link, a replaced map, a deleted entry).
// Status (conditions, revisions, objects) is kept in the kernel state map and served over HTTP.
import { reconcileOnce, type ReconcileResult, type RevisionSource } from "./reconcile-once.ts";
import { commitSignature, gitTree, headOf, type GitAccess } from "../sources/repo-tree.ts";
import type { CommitVerifier } from "./commit-verify.ts";
import type { FleetLink } from "../fleet/fleet-link.ts";
import { withEntries } from "../fleet/entries-delta.ts";
import { appliedHistory, writeHistory } from "./history-note.ts";
import { readNote, writeNote } from "../host/provenance.ts";
import { BpfopsError } from "../core/errors.ts";
import type { AgentMetrics } from "./metrics.ts";

export interface AgentLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type AgentSource =
  | { kind: "git"; repo: string; ref: string; path?: string; auth?: GitAccess["auth"] }
  | { kind: "directory"; path: string }
  /** fleet mode: the target in etcd, a bundle built by the controller */
  | { kind: "fleet"; link: FleetLink };

export interface AgentConfig {
  source: AgentSource;
  root: string;
  labels: Record<string, string>;
  cacheDir: string;
  intervalMs: number;
  driftIntervalMs: number;
  /** following a remote repository without verifying commit signatures (said in the status) */
  unsigned: boolean;
  log: AgentLog;
  metrics: AgentMetrics;
  /** --verify-commits: new revisions must be signed by one of its keys */
  verifier?: CommitVerifier;
  /** after each successful reconcile (the metrics its Map manifests declare follow it) */
  onApplied?: (result: ReconcileResult) => void;
}

export interface Condition {
  type: "Ready" | "Reconciling" | "Stalled";
  status: boolean;
  reason: string;
  message: string;
  since: string;
}

export interface AgentStatus {
  source: string;
  conditions: Condition[];
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  lastError?: { class: "Stalled" | "Waiting"; code: string; message: string; revision?: string };
  objects: Array<{ kind: string; name: string; state: string; message?: string }>;
  unsigned: boolean;
  suspended: boolean;
  /** objects changed out of band again right after being put back: reported, healed less often */
  degraded: string[];
  history: string[];
}

/** What `bpfops rollback|suspend|resume` leave for the agent in the kernel state map. */
export interface AgentHold {
  suspend?: boolean;
  rollback?: string;
}

/** The compact record of the agent's status kept in the kernel (a state map value holds 511 bytes). */
interface StatusNote {
  r: boolean;
  rs: string;
  m: string;
  a?: string;
  t?: string;
  u?: 1;
  s?: 1;
  at: string;
}

const MAX_BACKOFF_MS = 60_000;
const HISTORY = 8;

export class Agent {
  readonly status: AgentStatus;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #pending = false;
  #stopped = false;
  #abort = new AbortController();
  #nextDriftAt = 0;
  #nextPollAt = 0;
  #retryAt = 0;
  #failures = 0;
  #dirty = true; // directory mode: a change was seen
  #heals = new Map<string, number[]>();
  /** drift checks wait until then (objects that keep drifting back off the whole check) */
  #driftBackoffUntil = 0;
  /** the head a Waiting failure is retried for */
  #retryHead: string | undefined;
  /** how long the last new revision took to apply, fetch to enforced (fleet status) */
  #lastApplyMs: number | undefined;
  /** the build of the applied commit, reused by drift checks */
  #built: { revision: string; reuse: { build: ReconcileResult["build"]; context: ReconcileResult["context"] } } | undefined;

  constructor(readonly config: AgentConfig) {
    const prior = readNote<StatusNote>(config.root, "agent/status");
    const history = appliedHistory(config.root);
    const now = new Date().toISOString();
    this.status = {
      source: config.source.kind === "git" ? `${config.source.repo}@${config.source.ref}${config.source.path ? `:${config.source.path}` : ""}` : config.source.kind === "fleet" ? config.source.link.describe : config.source.path,
      conditions: [
        { type: "Ready", status: false, reason: "Starting", message: "no reconcile yet", since: now },
        { type: "Reconciling", status: false, reason: "Idle", message: "", since: now },
        { type: "Stalled", status: false, reason: "None", message: "", since: now },
      ],
      // A restarted agent knows what it applied: the same head is not applied again.
      ...(prior?.a ? { lastAppliedRevision: prior.a } : {}),
      ...(prior?.t ? { lastAttemptedRevision: prior.t } : {}),
      objects: [],
      unsigned: config.unsigned,
      suspended: false,
      degraded: [],
      history,
    };
  }

  start(): void {
    this.#schedule(0);
  }

  /** A webhook call or a file change: check now (requests that come while one runs fold into one more). */
  trigger(): void {
    this.#dirty = true;
    this.#nextPollAt = 0;
    this.#retryAt = 0;
    this.#schedule(0);
  }

  /** Stops within about a second: the running reconcile is aborted before its commit, or finishes it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#abort.abort();
    if (this.#running) await Promise.race([this.#running.catch(() => undefined), new Promise((r) => setTimeout(r, 900))]);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#pending = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.#cycle()
        // A cycle that throws is a defect, not a reason to stop enforcing: it is logged and retried.
        .catch((e: Error) => this.#waiting("InternalError", `${e.message}`))
        .finally(() => {
        this.#running = null;
        if (this.#pending) {
          this.#pending = false;
          this.#schedule(0);
        } else this.#schedule(Math.min(this.config.intervalMs, this.config.driftIntervalMs));
      });
    }, ms);
  }

  #condition(type: Condition["type"], status: boolean, reason: string, message: string): void {
    const c = this.status.conditions.find((x) => x.type === type)!;
    if (c.status !== status || c.reason !== reason) c.since = new Date().toISOString();
    Object.assign(c, { status, reason, message });
  }

  async #cycle(): Promise<void> {
    const now = Date.now();
    const hold = readNote<AgentHold>(this.config.root, "agent/hold") ?? {};
    this.status.suspended = !!hold.suspend || !!hold.rollback;
    let target: string | undefined;
    let isNew = false;
    const src = this.config.source;
    if (src.kind === "directory") {
      const driftDue = now >= this.#nextDriftAt && now >= this.#driftBackoffUntil;
      if (!this.#dirty && !driftDue) return;
      isNew = this.#dirty;
      this.#dirty = false;
      target = "working tree";
    } else if (src.kind === "fleet") {
      // The target comes by a watch (trigger() on change); with etcd away it stays the last one known.
      const next = this.#next(hold.rollback ?? src.link.target?.digest, hold, now);
      if (!next) return;
      ({ target, isNew } = next);
    } else {
      // The head is read every --interval (or at once after a webhook call); drift is checked on its own interval.
      let head = this.status.lastAttemptedRevision;
      if (now >= this.#nextPollAt || hold.rollback) {
        this.#nextPollAt = now + this.config.intervalMs;
        try {
          head = hold.rollback ?? (await headOf(src.repo, src.ref, src.auth ? { auth: src.auth } : {}));
        } catch (e) {
          this.config.metrics.fetchErrors.inc();
          this.#waiting("FetchFailed", `reading ${src.repo} ${src.ref}: ${(e as Error).message}`);
          return;
        }
      }
      const next = this.#next(head, hold, now);
      if (!next) return;
      ({ target, isNew } = next);
    }
    await this.#apply(target!, isNew);
  }

  /**
   * What to apply given the head (a commit, or a fleet target): a new head (unless suspended), the
   * revision held by a rollback, the applied one again when drift is due, or nothing.
   */
  #next(head: string | undefined, hold: AgentHold, now: number): { target: string; isNew: boolean } | undefined {
    if (!head) return undefined;
    if (now < this.#retryAt && head === this.#retryHead) return undefined;
    const fresh = head !== this.status.lastAttemptedRevision && !(hold.suspend && !hold.rollback);
    const driftDue = !!this.status.lastAppliedRevision && now >= this.#nextDriftAt && now >= this.#driftBackoffUntil;
    if (fresh || (hold.rollback && hold.rollback !== this.status.lastAppliedRevision)) return { target: head, isNew: true };
    if (driftDue) return { target: this.status.lastAppliedRevision!, isNew: false };
    return undefined;
  }


  /**
   * The build of a fleet target that changes only Map entries of an earlier bundle: that bundle's
   * build with them (no manifest parsed, no object read), or undefined. The earlier build is this
   * agent's own when it runs that bundle; after a restart it is built from that bundle on disk when
   * the target's own is not here (an agent fetches it a minute after applying the entries), so one
   * restarted with etcd away within that minute (or before it applied them) still builds the
   * revision and keeps healing drift.
   */
  async #withEntries(target: string): Promise<{ build: ReconcileResult["build"]; context: ReconcileResult["context"] } | undefined> {
    const src = this.config.source;
    if (src.kind !== "fleet" || src.link.target?.digest !== target || !src.link.target.entries) return undefined;
    const { entries, revision } = src.link.target;
    let earlier = this.#built?.revision === entries.from && entries.from === this.status.lastAppliedRevision ? this.#built.reuse : undefined;
    if (!earlier && !src.link.hasBundle(target) && src.link.hasBundle(entries.from)) {
      const r = await reconcileOnce({ kind: "bundle", bundle: await src.link.bundle(entries.from), revision: entries.from }, { mode: "dry-run", root: this.config.root, labels: this.config.labels, cacheDir: this.config.cacheDir, signal: this.#abort.signal });
      earlier = { build: r.build, context: r.context };
    }
    return earlier && { build: withEntries(earlier.build, entries, revision), context: { ...earlier.context, revision } };
  }

  async #source(target: string): Promise<RevisionSource> {
    const src = this.config.source;
    if (src.kind === "directory") return { kind: "directory", path: src.path };
    if (src.kind === "fleet") {
      const revision = src.link.target?.digest === target ? src.link.target.revision : target;
      return { kind: "bundle", bundle: await src.link.bundle(target), revision };
    }
    return { kind: "git", repo: src.repo, ref: src.ref, commit: target, ...(src.path ? { path: src.path } : {}), ...(src.auth ? { auth: src.auth } : {}) };
  }

  async #apply(target: string, isNew: boolean): Promise<void> {
    const { log, metrics } = this.config;
    this.#condition("Reconciling", true, isNew ? "NewRevision" : "DriftCheck", target);
    const t0 = process.hrtime.bigint();
    let result: ReconcileResult;
    let viaEntries = false;
    try {
      const src = this.config.source;
      if (isNew && this.config.verifier && src.kind === "git") {
        // Fetched first, then checked: nothing of an unverified commit is built or loaded.
        await gitTree(src.repo, src.ref, `${this.config.cacheDir}/git`, { commit: target, ...(src.auth ? { auth: src.auth } : {}) });
        await this.config.verifier.check(target, await commitSignature(src.repo, target, `${this.config.cacheDir}/git`));
      }
      // A drift check of the applied commit reuses its build: only the kernel is read again. A
      // fleet revision that changes only Map entries of an earlier one is that one's build with them.
      const drift = !isNew && this.#built?.revision === target ? this.#built.reuse : undefined;
      const delta = drift ? undefined : await this.#withEntries(target);
      viaEntries = !!delta;
      const reuse = drift ?? delta;
      result = await reconcileOnce(reuse ? undefined : await this.#source(target), { mode: "apply", root: this.config.root, labels: this.config.labels, cacheDir: this.config.cacheDir, signal: this.#abort.signal, ...(reuse ? { reuse } : {}) });
      if (src.kind !== "directory") this.#built = { revision: target, reuse: { build: result.build, context: result.context } };
      // The bundle itself is still kept (after the entries are in): a restart without etcd builds from it.
      if (delta && src.kind === "fleet") src.link.keepBundle(target);
    } catch (e) {
      const err = e as Error & { code?: string; errorClass?: "Stalled" | "Waiting" };
      if (this.#abort.signal.aborted) return;
      // Anything that is not the revision's fault (a fetch, the kernel momentarily) is retried.
      const cls = err instanceof BpfopsError ? err.errorClass : "Waiting";
      const code = err.code && /^[A-Z]/.test(err.code) ? err.code : cls === "Waiting" ? "ApplyFailed" : "Refused";
      metrics.reconciles.inc({ result: cls === "Stalled" ? "refused" : "failed" });
      if (cls === "Stalled") {
        if (isNew) this.status.lastAttemptedRevision = target;
        this.status.lastError = { class: "Stalled", code, message: err.message, revision: target };
        this.#condition("Stalled", true, code, `${short(target)}: ${oneLine(err.message)}`);
        this.#condition("Ready", false, "RevisionRefused", `${short(target)} was refused; ${this.status.lastAppliedRevision ? `${short(this.status.lastAppliedRevision)} keeps running` : "nothing applied yet"}`);
        log.error({ revision: target, code, error: err.message }, "revision refused: the last good state keeps running");
        if (!isNew) this.#nextDriftAt = Date.now() + this.config.driftIntervalMs;
      } else {
        this.#retryHead = target;
        this.#waiting(code, `${short(target)}: ${oneLine(err.message)}`, target);
      }
      this.#persist();
      return;
    } finally {
      metrics.duration.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      this.#condition("Reconciling", false, "Idle", "");
    }
    this.#failures = 0;
    this.#retryAt = 0;
    this.config.onApplied?.(result);
    // libbpf's own words, at their own level: a warning of libbpf is a warning of the agent.
    for (const m of result.applied?.libbpf ?? []) log[m.level]({ revision: target, program: m.program, source: "libbpf" }, m.message);
    this.#nextDriftAt = Date.now() + this.config.driftIntervalMs;
    const changed = result.plan.actions.filter((a) => a.op !== "unchanged" && a.op !== "unowned");
    if (isNew) {
      this.#lastApplyMs = Number(process.hrtime.bigint() - t0) / 1e6;
      this.status.lastAttemptedRevision = target;
      if (this.status.lastAppliedRevision !== target) this.status.history = [target, ...this.status.history.filter((h) => h !== target)].slice(0, HISTORY);
      this.status.lastAppliedRevision = target;
      try {
        writeHistory(this.config.root, this.status.history);
      } catch (e) {
        log.warn({ error: (e as Error).message }, "could not record the revision history in the kernel");
      }
    } else if (changed.length) this.#healed(changed.map((a) => `${a.kind}/${a.name}`), changed.map((a) => a.kind));
    delete this.status.lastError;
    // Per object: Ready (as git says, untouched), Applied (changed by this reconcile), Degraded
    // (changed out of band again and again), Conflict or Blocked (held back, with the plan's reason).
    this.status.objects = result.plan.actions
      .filter((a) => a.op !== "unowned" && a.op !== "prune")
      .map((a) => {
        const id = `${a.kind}/${a.name}`;
        const state = this.status.degraded.includes(id) ? "Degraded" : a.op === "unchanged" ? "Ready" : a.op === "conflict" ? "Conflict" : a.op === "blocked" ? "Blocked" : "Applied";
        return { kind: a.kind, name: a.name, state, ...(state !== "Ready" && state !== "Applied" ? { message: a.reason } : {}) };
      });
    metrics.objects.reset();
    for (const o of this.status.objects) metrics.objects.inc({ kind: o.kind, state: o.state });
    metrics.reconciles.inc({ result: changed.length ? "applied" : "unchanged" });
    metrics.lastSuccess.set(Date.now() / 1000);
    this.#condition("Stalled", false, "None", "");
    const degraded = this.status.degraded.length ? `; degraded: ${this.status.degraded.join(", ")}` : "";
    this.#condition("Ready", this.status.degraded.length === 0, this.status.degraded.length ? "Degraded" : "ReconciliationSucceeded", `${short(target)} applied${degraded}`);
    metrics.ready.set(this.status.degraded.length ? 0 : 1);
    if (isNew || changed.length) {
      log.info({ revision: target, ...(viaEntries ? { as: "entries" } : {}), changes: changed.length, plan: result.plan.summary, ms: Number(process.hrtime.bigint() - t0) / 1e6, timings: result.timings }, isNew ? "revision applied" : "drift corrected");
    }
    this.#persist();
  }

  /** Drift put back: objects put back again and again are reported and checked less often. */
  #healed(objects: string[], kinds: string[]): void {
    const now = Date.now();
    const window = 10 * this.config.driftIntervalMs;
    for (const k of kinds) this.config.metrics.drift.inc({ kind: k });
    let flapping = false;
    for (const o of objects) {
      const times = [...(this.#heals.get(o) ?? []).filter((t) => now - t < window), now];
      this.#heals.set(o, times);
      if (times.length >= 3) {
        flapping = true;
        if (!this.status.degraded.includes(o)) this.status.degraded.push(o);
      }
    }
    this.config.log.warn({ objects }, "drift corrected: changed out of band and put back");
    if (flapping) {
      // Someone keeps changing it: back off (1, 2, 4 ... 32 intervals) instead of fighting forever.
      const n = Math.min(5, Math.max(...objects.map((o) => this.#heals.get(o)!.length)) - 2);
      this.#driftBackoffUntil = now + 2 ** n * this.config.driftIntervalMs;
      this.config.log.warn({ objects: this.status.degraded, backoffMs: 2 ** n * this.config.driftIntervalMs }, "objects drift again right after healing: reported Degraded, healed less often");
    }
  }

  #waiting(code: string, message: string, revision?: string): void {
    this.#failures++;
    // Capped exponential backoff with jitter.
    const base = Math.min(MAX_BACKOFF_MS, this.config.intervalMs * 2 ** Math.min(this.#failures, 10));
    this.#retryAt = Date.now() + base / 2 + Math.random() * (base / 2);
    this.status.lastError = { class: "Waiting", code, message, ...(revision ? { revision } : {}) };
    this.#condition("Ready", false, code, `${message} (retrying)`);
    this.config.log.warn({ code, error: message, retryInMs: this.#retryAt - Date.now() }, "waiting: will retry");
    this.#persist();
  }

  #persist(): void {
    const ready = this.status.conditions.find((c) => c.type === "Ready")!;
    const note: StatusNote = {
      r: ready.status,
      rs: ready.reason,
      m: ready.message.slice(0, 160),
      ...(this.status.lastAppliedRevision ? { a: this.status.lastAppliedRevision } : {}),
      ...(this.status.lastAttemptedRevision ? { t: this.status.lastAttemptedRevision } : {}),
      ...(this.status.unsigned ? { u: 1 as const } : {}),
      ...(this.status.suspended ? { s: 1 as const } : {}),
      at: new Date().toISOString(),
    };
    try {
      writeNote(this.config.root, "agent/status", note);
    } catch (e) {
      this.config.log.warn({ error: (e as Error).message }, "could not record the status in the kernel");
    }
    if (this.config.source.kind === "fleet") this.config.source.link.report(this.status, this.#lastApplyMs);
  }
}

/** The agent's status as the kernel keeps it, for `bpfops status` without a running agent. */
export function recordedAgentStatus(root: string): { ready: boolean; reason: string; message: string; lastAppliedRevision?: string; lastAttemptedRevision?: string; unsigned: boolean; suspended: boolean; at: string } | null {
  const n = readNote<StatusNote>(root, "agent/status");
  if (!n) return null;
  return { ready: n.r, reason: n.rs, message: n.m, ...(n.a ? { lastAppliedRevision: n.a } : {}), ...(n.t ? { lastAttemptedRevision: n.t } : {}), unsigned: !!n.u, suspended: !!n.s, at: n.at };
}

const short = (rev: string) => (/^[0-9a-f]{40}$/.test(rev) ? rev.slice(0, 12) : /^sha256:[0-9a-f]{64}$/.test(rev) ? rev.slice(0, 19) : rev);
// One line for a status message: a multi-line error (the plan's reasons) joined, not cut at its first line.
const oneLine = (s: string) => s.split("\n").map((l) => l.trim()).filter(Boolean).join(" ").slice(0, 300);
