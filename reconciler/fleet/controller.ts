// `bpfops controller`: the fleet's rollout controller. One leads (etcd election); it turns rollout
// requests into a bundle built once (fetch, signature check, compile, validate), then moves the
// bundle ring by ring: targets a ring's hosts, waits for them to be Ready, bakes, reads the health
// gates, and advances, or halts and rolls every targeted host back to the last good bundle. All of
// its state is in etcd, so a rollout outlives the controller and the CLI.
import { setBounded } from "../core/bounded-map.ts";
import { randomBytes } from "node:crypto";
import type { Campaign, Watcher } from "etcd3";
import { gitTree, headOf, commitSignature, type GitAccess } from "../sources/repo-tree.ts";
import { makeBundle } from "./make-bundle.ts";
import { entriesDelta, type BuiltRevision, type EntriesDelta } from "./entries-delta.ts";
import type { CommitVerifier } from "../agent/commit-verify.ts";
import type { AgentLog } from "../agent/agent.ts";
import { BpfopsError } from "../core/errors.ts";
import type { FleetStore, HostStatus, Target } from "./fleet-store.ts";
import { FINISHED, type RingState, type RolloutCommand, type RolloutPhase, type RolloutRequest, type RolloutState } from "./rollout-state.ts";
import { assignRings, checkGate, DEFAULT_SPEC, durationMs, hostVerdict } from "./rollout-rings.ts";

const PROGRESS_SAVE_MS = 250;

export interface ControllerConfig {
  store: FleetStore;
  repo: string;
  ref: string;
  path?: string;
  auth?: GitAccess["auth"];
  cacheDir: string;
  verifier?: CommitVerifier;
  log: AgentLog;
  tickMs?: number;
}

export class Controller {
  #campaign: Campaign | undefined;
  #watcher: Watcher | undefined;
  #wakeSoon = false;
  /** what the watch saw change since the last tick (requests, commands, status, members) */
  #changed = new Set<string>();
  /** the active rollout as last saved; only the leader writes rollouts, so it is read once per term */
  #active: { id: string | undefined; state: RolloutState | undefined } | undefined;
  /** the last bundles built (what an entries delta is computed from), by digest */
  #builds = new Map<string, BuiltRevision>();
  /** a rollout's entries delta, for its targets (a controller that takes over sends whole bundles) */
  #deltas = new Map<string, EntriesDelta>();
  /** every host's status: read when a rollout progresses after a timer tick, kept up to date from the watch in between */
  #statuses: Map<string, HostStatus> | undefined;
  #progressSavedAt = 0;
  /** the JSON last saved per rollout: a tick that changed nothing writes nothing */
  #saved = new Map<string, string>();
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  readonly id = `${process.pid}-${randomBytes(4).toString("hex")}`;

  constructor(readonly config: ControllerConfig) {}

  get leading(): boolean {
    return this.#leading;
  }

  /** Campaigns for leadership, and leads when elected; campaigns again after losing it. */
  start(): void {
    const { store, log } = this.config;
    const election = store.client.election(store.key("election"), 3);
    const campaign = election.campaign(this.id);
    this.#campaign = campaign;
    campaign.on("elected", () => {
      this.#leading = true;
      this.#active = undefined;
      this.#statuses = undefined;
      this.#saved.clear();
      log.info({ controller: this.id }, "leading the fleet's rollouts");
      this.#schedule();
      // Agents' status, requests and commands wake it at once: a ring advances as soon as its last
      // host is Ready, not at the next tick (the emergency path is as fast as the agents apply).
      void store.client
        .watch()
        .prefix(store.prefix)
        .create()
        .then((w) => {
          this.#watcher = w;
          const changed = (kv: { key: Buffer; value: Buffer }, put: boolean) => {
            const [dir, host] = kv.key.toString().slice(store.prefix.length).split("/");
            if (!["requests", "commands", "status", "members"].includes(dir!)) return;
            // A host's status as it arrives: a woken tick reads none of the others again.
            if (dir === "status" && this.#statuses) {
              if (put) this.#statuses.set(host!, JSON.parse(kv.value.toString()) as HostStatus);
              else this.#statuses.delete(host!);
            }
            this.#changed.add(dir!);
            this.#wake();
          };
          w.on("put", (kv) => changed(kv, true));
          w.on("delete", (kv) => changed(kv, false));
          w.on("error", () => undefined);
        })
        .catch(() => undefined);
    });
    campaign.on("error", (e: Error) => {
      this.#leading = false;
      void this.#watcher?.cancel().catch(() => undefined);
      if (this.#stopped) return;
      log.warn({ error: e.message }, "lost the election (etcd away?): campaigning again");
      setTimeout(() => !this.#stopped && this.start(), 1000);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#watcher?.cancel().catch(() => undefined);
    await this.#ticking?.catch(() => undefined);
    await this.#campaign?.resign().catch(() => undefined);
  }

  /**
   * The next tick: at once when woken, else after tickMs. A tick on the timer reads everything
   * again (what a watch may have missed while etcd was away); a woken one only what changed.
   */
  #schedule(delay = this.config.tickMs ?? 200): void {
    if (this.#stopped || !this.#leading) return;
    clearTimeout(this.#timer);
    const full = delay > 0;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#ticking = this.tick(full)
        .catch((e: Error) => this.config.log.warn({ error: e.message }, "controller tick failed; trying again"))
        .finally(() => {
          this.#ticking = undefined;
          const soon = this.#wakeSoon;
          this.#wakeSoon = false;
          this.#schedule(soon ? 0 : undefined);
        });
    }, delay);
  }

  /** Something changed: tick now, or right after the tick that is running. */
  #wake(): void {
    if (this.#ticking) this.#wakeSoon = true;
    else if (this.#leading && !this.#stopped) this.#schedule(0);
  }

  /**
   * One step of every piece of work: requests, commands, the active rollout, new hosts. With
   * full false (woken by the watch) requests, commands and members are read only when the watch
   * saw them change: a fleet's hosts reporting one by one wake it once each.
   */
  async tick(full = true): Promise<void> {
    const { store } = this.config;
    const changed = full ? new Set(["requests", "commands", "status", "members"]) : this.#changed;
    this.#changed = new Set();
    // (read again when a progressing rollout next needs them: an idle controller reads none)
    if (full) this.#statuses = undefined;
    if (changed.has("requests")) {
      for (const [id, req] of [...(await store.allJson<RolloutRequest>("requests")).entries()].sort()) {
        await this.#startRollout(id, req);
        await store.client.delete().key(store.key("requests", id));
      }
    }
    if (!this.#active) {
      const id = await store.getJson<string>(store.key("active"));
      this.#active = { id, state: id ? await store.getJson<RolloutState>(store.key("rollouts", id)) : undefined };
    }
    const r = this.#active.state;
    if (r) {
      const cmd = changed.has("commands") ? await store.getJson<{ command: RolloutCommand }>(store.key("commands", r.id)) : undefined;
      if (cmd) {
        await this.#command(r, cmd.command);
        await store.client.delete().key(store.key("commands", r.id));
      }
      if (r.phase === "Progressing") await this.#progress(r);
    }
    if (changed.has("members")) await this.#targetNewHosts(r);
  }

  /** Resolves, checks, builds and publishes the revision; the new rollout supersedes an unfinished one. */
  async #startRollout(id: string, req: RolloutRequest): Promise<void> {
    const { store, log } = this.config;
    const access = this.config.auth ? { auth: this.config.auth } : {};
    const stable = await store.getJson<Target>(store.key("stable"));
    const at = Date.now();
    const refusal = (message: string): RolloutState => ({ id, revision: req.revision ?? this.config.ref, digest: "", ...(stable ? { previous: stable } : {}), spec: DEFAULT_SPEC, emergency: !!req.emergency, phase: "Failed", ring: 0, rings: [], message, createdAt: at, updatedAt: at });
    let state: RolloutState;
    try {
      const t0 = Date.now();
      const asked = req.revision ?? this.config.ref;
      // The ref's head comes with the fetch (one ref listing fewer on the emergency path); another
      // ref or a tag is resolved first.
      const commit = /^[0-9a-f]{40}$/.test(asked) ? asked : asked === this.config.ref ? undefined : await headOf(this.config.repo, asked, access);
      const tree = await gitTree(this.config.repo, this.config.ref, `${this.config.cacheDir}/git`, { ...(commit ? { commit } : {}), ...access });
      if (!tree.revision) throw new BpfopsError("PathNotFound", `${this.config.repo}: no commit for ${asked}`);
      if (this.config.verifier) await this.config.verifier.check(tree.revision, await commitSignature(this.config.repo, tree.revision, `${this.config.cacheDir}/git`));
      const fetchMs = Date.now() - t0;
      const manifestDir = this.config.path ?? ".";
      const { bundle, built } = await makeBundle(tree, manifestDir, this.config.cacheDir);
      const manifests = built.manifests;
      const buildMs = Date.now() - t0 - fetchMs;
      const rollouts = manifests.filter((m) => m.manifest.kind === "Rollout");
      if (rollouts.length > 1) throw new BpfopsError("ManifestInvalid", `${rollouts.length} Rollout manifests (${rollouts.map((m) => m.file).join(", ")}); a fleet has one`);
      const spec = rollouts[0]?.manifest.kind === "Rollout" ? rollouts[0].manifest.spec : DEFAULT_SPEC;
      const revision = `${this.config.ref}@sha1:${tree.revision}`;
      await store.publishBundle(bundle, revision);
      const members = [...(await store.members()).values()];
      const rings = assignRings(members, spec.rings).map((hosts, i): RingState => ({ name: spec.rings[i]!.name, hosts, done: [], blocked: {}, failures: [], gates: [] }));
      // Only entries changed since the last good bundle: hosts running it get the entries.
      setBounded(this.#builds, bundle.digest, built, 4);
      const earlier = stable && this.#builds.get(stable.digest);
      const delta = earlier ? entriesDelta(earlier, built) : undefined;
      if (delta) setBounded(this.#deltas, id, delta, 8);
      state = { id, revision, digest: bundle.digest, ...(stable ? { previous: stable } : {}), spec, emergency: !!req.emergency || spec.emergency, phase: "Progressing", ring: 0, rings, message: `ring ${rings[0]!.name}`, createdAt: at, updatedAt: at };
      log.info({ rollout: id, requestedAt: req.at, revision, digest: bundle.digest, emergency: state.emergency, ...(delta ? { entriesOf: Object.keys(delta.maps) } : {}), rings: rings.map((r) => `${r.name}:${r.hosts.length}`), fetchMs, buildMs, publishMs: Date.now() - t0 - fetchMs - buildMs }, "rollout started");
    } catch (e) {
      state = refusal(`refused before any host saw it: ${(e as Error).message}`);
      log.error({ rollout: id, error: (e as Error).message }, "rollout refused");
    }
    // Serialized per fleet: an unfinished rollout is superseded where it stands (its hosts keep
    // what they run until the new rollout's rings reach them).
    const activeId = await store.getJson<string>(store.key("active"));
    const active = activeId ? await store.getJson<RolloutState>(store.key("rollouts", activeId)) : undefined;
    if (active && !FINISHED.includes(active.phase) && state.phase === "Progressing") {
      await this.#save({ ...active, phase: "Superseded", message: `superseded by ${id} (${state.revision})` });
    }
    await this.#save(state);
    if (state.phase === "Progressing" || !active || FINISHED.includes(active.phase)) {
      await store.putJson(store.key("active"), id);
      this.#active = { id, state };
    } else this.#active = undefined;
  }

  async #command(r: RolloutState, command: RolloutCommand): Promise<void> {
    const { log } = this.config;
    log.info({ rollout: r.id, command }, "rollout command");
    if (command === "pause" && r.phase === "Progressing") Object.assign(r, { phase: "Paused", message: `paused at ring ${r.rings[r.ring]?.name}` });
    else if (command === "resume" && r.phase === "Paused") Object.assign(r, { phase: "Progressing", message: `ring ${r.rings[r.ring]?.name}` });
    else if (command === "abort" && !FINISHED.includes(r.phase)) await this.#rollBack(r, "Aborted", "aborted by an operator");
    else if (command === "rollback") await this.#rollBack(r, "RolledBack", "rolled back by an operator", true);
    else return;
    await this.#save(r);
  }

  async #progress(r: RolloutState): Promise<void> {
    const { store, log } = this.config;
    const ring = r.rings[r.ring]!;
    const now = Date.now();
    if (!ring.startedAt) {
      const delta = this.#deltas.get(r.id);
      const target: Target = { digest: r.digest, revision: r.revision, rollout: r.id, ...(delta ? { entries: delta } : {}) };
      await Promise.all(ring.hosts.map((h) => store.setTarget(h, target)));
      ring.startedAt = now;
      r.message = `ring ${ring.name}: ${ring.hosts.length} hosts targeted`;
      await this.#save(r);
      return;
    }
    const statuses = (this.#statuses ??= await store.statuses());
    const timeout = durationMs(r.spec.readyTimeout);
    let waiting = 0;
    ring.done = [];
    ring.blocked = {};
    const failed = new Map(ring.failures.map((f) => [f.host, f]));
    for (const h of ring.hosts) {
      const v = hostVerdict(r.digest, statuses.get(h), ring.startedAt, now, timeout);
      if (v.state === "done") ring.done.push(h);
      else if (v.state === "blocked") ring.blocked[h] = v.why;
      else if (v.state === "failed" && !failed.has(h)) failed.set(h, { host: h, why: v.why });
      else if (v.state === "waiting") waiting++;
    }
    ring.failures = [...failed.values()];
    if (ring.failures.length > r.spec.failureBudget) return this.#fail(r, ring);
    if (waiting) {
      r.message = `ring ${ring.name}: ${ring.done.length} of ${ring.hosts.length} Ready`;
      // Progress is saved a few times a second, not once per host (the CLI's live view reads it as often).
      if (now - this.#progressSavedAt < PROGRESS_SAVE_MS) return;
      this.#progressSavedAt = now;
      return this.#save(r);
    }
    if (!ring.readyAt) {
      ring.readyAt = now;
      ring.baseline = Object.fromEntries(ring.done.map((h) => [h, statuses.get(h)?.metrics ?? []]));
    }
    const bake = r.emergency ? 0 : durationMs(r.spec.rings[r.ring]?.bake ?? r.spec.bake);
    if (now - ring.readyAt < bake) {
      r.message = `ring ${ring.name}: Ready, baking ${Math.ceil((bake - (now - ring.readyAt)) / 1000)}s more`;
      return this.#save(r);
    }
    ring.gates = [];
    for (const h of ring.done) {
      for (const g of r.spec.gates) {
        const res = checkGate(g, ring.baseline?.[h] ?? [], statuses.get(h)?.metrics ?? []);
        ring.gates.push({ ...res, host: h });
        if (!res.ok && !failed.has(h)) failed.set(h, { host: h, why: `gate ${g.name} failed: ${res.detail} (bound ${res.bound})`, gate: res });
      }
    }
    ring.failures = [...failed.values()];
    if (ring.failures.length > r.spec.failureBudget) return this.#fail(r, ring);
    ring.passedAt = now;
    // The next ring starts now, not at the next tick.
    this.#wakeSoon = true;
    log.info({ rollout: r.id, ring: ring.name, hosts: ring.hosts.length, blocked: Object.keys(ring.blocked).length, ms: now - ring.startedAt }, "ring passed");
    r.ring++;
    if (r.ring >= r.rings.length) {
      r.phase = "Succeeded";
      const blocked = r.rings.flatMap((x) => Object.keys(x.blocked));
      r.message = `every ring passed${blocked.length ? `; Blocked (the kernel lacks a feature): ${blocked.join(", ")}` : ""}`;
      await store.putJson(store.key("stable"), { digest: r.digest, revision: r.revision, rollout: r.id } satisfies Target);
      log.info({ rollout: r.id, revision: r.revision }, "rollout succeeded");
    } else r.message = `ring ${r.rings[r.ring]!.name}`;
    return this.#save(r);
  }

  async #fail(r: RolloutState, ring: RingState): Promise<void> {
    const first = ring.failures[0]!;
    await this.#rollBack(r, "Failed", `halted at ring ${ring.name}: ${first.host}: ${first.why}${ring.failures.length > 1 ? ` (and ${ring.failures.length - 1} more)` : ""}`);
    this.config.log.error({ rollout: r.id, ring: ring.name, failures: ring.failures }, "rollout halted and rolled back");
    await this.#save(r);
  }

  /** Every host this rollout targeted (every host, for an operator's rollback) goes back to the last good bundle. */
  async #rollBack(r: RolloutState, phase: RolloutPhase, message: string, everyHost = false): Promise<void> {
    const { store } = this.config;
    const hosts = everyHost ? [...(await store.targets()).entries()].filter(([, t]) => t.digest === r.digest).map(([h]) => h) : r.rings.filter((x) => x.startedAt).flatMap((x) => x.hosts);
    if (r.previous) {
      await Promise.all(hosts.map((h) => store.setTarget(h, { ...r.previous!, rollout: r.id })));
      r.message = `${message}; ${hosts.length} hosts back to ${r.previous.revision}`;
    } else r.message = `${message}; no earlier revision to go back to: hosts keep what they run`;
    r.phase = phase;
    if (everyHost && r.previous) await store.putJson(store.key("stable"), r.previous);
  }

  /** Hosts that joined after the rollout began (or with no rollout running) get the last good bundle. */
  async #targetNewHosts(active: RolloutState | undefined): Promise<void> {
    const { store } = this.config;
    const stable = await store.getJson<Target>(store.key("stable"));
    if (!stable) return;
    const targets = await store.targets();
    const inRollout = new Set(active && !FINISHED.includes(active.phase) ? active.rings.flatMap((x) => x.hosts) : []);
    for (const h of (await store.members()).keys()) {
      if (!targets.has(h) && !inRollout.has(h)) await store.setTarget(h, stable);
    }
  }

  async #save(r: RolloutState): Promise<void> {
    const json = JSON.stringify({ ...r, updatedAt: 0 });
    if (this.#saved.get(r.id) === json) return;
    r.updatedAt = Date.now();
    await this.config.store.putJson(this.config.store.key("rollouts", r.id), r);
    setBounded(this.#saved, r.id, json, 16);
  }
}
