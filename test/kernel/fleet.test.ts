// The fleet on the real kernel: one etcd, a controller (two, for failover), and five real agents,
// each in a network and mount namespace of its own with its own bpffs, following rollouts of a
// real git repository. Traffic into each host's namespace shows what it enforces.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFleetLab, type FleetHost, type FleetLab } from "../../reconciler/lab/fleet-lab.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { needs, until } from "./harness.ts";
import { fleetRepo } from "../../reconciler/lab/fleet-repo.ts";

const FLEET = "t";

const flows = [
  { name: "pod", dport: 6666, payload: Buffer.from("packet of death") },
  { name: "legit", dport: 80, payload: Buffer.from("legit") },
  { name: "rule2", dport: 7777, payload: Buffer.from("new rule") },
];

interface Rollout {
  id: string;
  ring: number;
  phase: string;
  message: string;
  digest: string;
  revision: string;
  rings: Array<{ name: string; hosts: string[]; startedAt?: number; readyAt?: number; passedAt?: number; failures: Array<{ host: string; why: string }>; gates: Array<{ host: string; gate: string; figure: number | null; ok: boolean }>; blocked: Record<string, string> }>;
}
interface HostStatus {
  host: string;
  ready: boolean;
  message: string;
  lastAppliedRevision?: string;
  errorClass?: string;
  failedRevision?: string;
}

/** What the host's agent owns, as `bpfops status` reads it from the host's own bpffs. */
const ownObjects = (h: FleetHost) => (JSON.parse(h.exec(process.execPath, [new URL("../../bin/bpfops.cjs", import.meta.url).pathname, "status", "--output", "json"])) as { objects: Array<{ kind: string; id: number }> }).objects;

describe("fleet", () => {
  let lab: FleetLab;
  let repo: ReturnType<typeof fleetRepo>;
  const controllers: Array<ChildProcess & { logs(): string }> = [];
  const cache = mkdtempSync(join(tmpdir(), "bpfops-fleet-ctl-"));

  const cli = (...args: string[]) => lab.cli(args);
  const startController = () => {
    const c = lab.startController(["--repo", repo.dir, "--path", "fleet", "--cache", cache]);
    controllers.push(c);
    return c;
  };
  const status = () => {
    const r = cli("fleet", "status", "--output", "json");
    return JSON.parse(r.stdout) as { rollout?: Rollout; hosts: Array<{ host: string; ring: string; member: boolean; status?: HostStatus }> };
  };
  const rollout = async (...args: string[]) => {
    const r = await lab.cliAsync(["rollout", "start", ...args, "--wait", "--timeout", "90", "--output", "json"]);
    if (!r.stdout) throw new Error(`rollout start: ${r.stderr}`);
    return { code: r.status, rollout: JSON.parse(r.stdout) as Rollout };
  };
  const startAgent = (h: FleetHost) => h.startAgent(["--interval", "1h", "--drift-interval", "2s", ...(h.name === "h4" ? ["--labels", "probe=kprobe"] : [])]);
  /** Traffic into every host at once; what each received of each flow. */
  const trafficAll = async (hosts = lab.hosts) =>
    Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, (await runTraffic(h.lab, { flows, pps: 3000, count: 600 })).received] as const)));

  beforeAll(async () => {
    lab = await createFleetLab(5, { fleet: FLEET });
    repo = fleetRepo();
    for (const h of lab.hosts) startAgent(h);
    startController();
    await until("five agents registered", () => status().hosts.filter((h) => h.member).length === 5, 30_000, () => lab.hosts.map((h) => `${h.name}: ${h.logs()}`).join("\n"));
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    repo?.remove();
    rmSync(cache, { recursive: true, force: true });
  });

  it("a staged rollout goes ring by ring, and each host then drops the packet of death", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const rev = repo.commit({ rules: [6666] }, "the packet-of-death filter");
    const { code, rollout: r } = await rollout();
    expect(r.phase, r.message).toBe("Succeeded");
    expect(code).toBe(0);
    expect(r.revision).toBe(`main@sha1:${rev}`);
    expect(r.rings.map((x) => x.hosts.length)).toEqual([1, 2, 2]);
    // Ring after ring: a ring is targeted only after the one before it passed.
    for (let i = 1; i < r.rings.length; i++) expect(r.rings[i]!.startedAt!).toBeGreaterThanOrEqual(r.rings[i - 1]!.passedAt!);
    const s = status();
    // Every host runs the same bundle: byte-identical objects, one digest.
    expect(new Set(s.hosts.map((h) => h.status?.lastAppliedRevision))).toEqual(new Set([r.digest]));
    const got = await trafficAll();
    for (const h of lab.hosts) expect([h.name, got[h.name]!.pod, got[h.name]!.legit]).toEqual([h.name, 0, 200]);
  });

  it("a revision whose health gate fails is halted at the canary and rolled back, with the gate's figures in the status", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const good = status().rollout!.digest;
    // An over-broad rule: it drops the legitimate traffic on port 80 too.
    repo.commit({ rules: [6666, 80], gate: true, bake: "3s" }, "an over-broad rule, gated");
    // Legitimate traffic into every host while the rollout runs: the canary's gate reads it.
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    let started = 0;
    const traffic = Promise.all(lab.hosts.map((h) => runTraffic(h.lab, { flows: [flows[1]!], pps: 200, count: 100_000, stopWhenDuringEnds: true, during: () => (started++, finished) })));
    await until("traffic into every host", () => started === lab.hosts.length, 10_000);
    const rolled = await rollout().finally(finish);
    await traffic;
    const r = rolled.rollout;
    expect(rolled.code).toBe(1);
    expect(r.phase).toBe("Failed");
    expect(r.rings[0]!.failures.map((f) => f.host)).toEqual([r.rings[0]!.hosts[0]]);
    expect(r.message).toMatch(/halted at ring canary: h\d: gate legit-traffic-kept failed: pod_dropped_total rose by [1-9]\d* \(bound <= 0\)/);
    expect(r.rings[0]!.gates).toEqual([expect.objectContaining({ gate: "legit-traffic-kept", ok: false, figure: expect.any(Number) })]);
    expect(r.rings[1]!.startedAt).toBeUndefined();
    // Rolled back everywhere: every host on the last good bundle, legitimate traffic kept.
    await until("every host back on the last good revision", () => status().hosts.every((h) => h.status?.lastAppliedRevision === good && h.status.ready), 30_000);
    const got = await trafficAll();
    for (const h of lab.hosts) expect([h.name, got[h.name]!.pod, got[h.name]!.legit]).toEqual([h.name, 0, 200]);
  });

  it("an agent killed mid-rollout converges after its restart, and a controller killed mid-rollout is replaced", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const second = startController();
    const h3 = lab.hosts[3]!;
    await h3.stopAgent("SIGKILL");
    repo.commit({ rules: [6666, 7777] }, "a second rule");
    const started = cli("rollout", "start", "--output", "json");
    const id = (JSON.parse(started.stdout) as { id: string }).id;
    // The leader goes mid-rollout (after the canary is targeted); the other takes over.
    await until("the rollout past its first ring", () => (status().rollout?.id === id && (status().rollout?.ring ?? 0) >= 1) as boolean, 30_000);
    const leader = controllers.find((c) => /leading the fleet's rollouts/.test(c.logs()) && c.exitCode === null)!;
    leader.kill("SIGKILL");
    startAgent(h3);
    const end = JSON.parse(cli("rollout", "status", id, "--output", "json").stdout) as { rollout: Rollout };
    expect(["Progressing", "Succeeded"]).toContain(end.rollout.phase);
    await until("the rollout succeeded", () => status().rollout?.phase === "Succeeded", 60_000, () => controllers.map((c) => c.logs()).join("\n"));
    expect(controllers.filter((c) => c !== leader).some((c) => /leading the fleet's rollouts/.test(c.logs()))).toBe(true);
    expect(second.exitCode).toBe(null);
    const got = await trafficAll();
    for (const h of lab.hosts) expect([h.name, got[h.name]!.pod, got[h.name]!.rule2, got[h.name]!.legit]).toEqual([h.name, 0, 0, 200]);
  });

  it("etcd stopped mid-rollout leaves every host enforcing a consistent revision and healing drift; the rollout resumes when etcd returns", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const before = status().rollout!.digest;
    repo.commit({ rules: [6666, 7777, 8888], bake: "2s" }, "a third rule");
    const id = (JSON.parse(cli("rollout", "start", "--output", "json").stdout) as { id: string }).id;
    await until("the canary on the new revision", () => status().rollout?.id === id && (status().rollout?.ring ?? 0) >= 1, 30_000);
    await lab.etcd.kill();
    // Partitioned: every host keeps its filter (old or new revision, each whole) ...
    const got = await trafficAll();
    for (const h of lab.hosts) expect([h.name, got[h.name]!.pod, got[h.name]!.rule2, got[h.name]!.legit]).toEqual([h.name, 0, 0, 200]);
    // ... and puts back what is changed under it, with no etcd.
    // (Links are not namespaced: the host's own link is found through its own bpffs.)
    const h1 = lab.hosts[1]!;
    const attachmentId = () => ownObjects(h1).find((o) => o.kind === "Attachment")?.id;
    const linkId = attachmentId()!;
    h1.exec("bpftool", ["link", "detach", "id", String(linkId)]);
    await until("the detached link put back while etcd is away", () => (attachmentId() ?? linkId) !== linkId, 15_000);
    expect((await runTraffic(h1.lab, { flows, pps: 3000, count: 600 })).received.pod).toBe(0);
    for (const h of lab.hosts) expect(h.logs()).not.toMatch(/"level":60/);
    await lab.etcd.restart();
    await until("the rollout succeeded after etcd came back", () => status().rollout?.id === id && status().rollout?.phase === "Succeeded", 60_000, () => controllers.map((c) => c.logs().slice(-3000)).join("\n"));
    const after = status();
    expect(after.rollout!.digest).not.toBe(before);
    expect(new Set(after.hosts.map((h) => h.status?.lastAppliedRevision))).toEqual(new Set([after.rollout!.digest]));
  });

  it("an emergency rule reaches every host as a map update (no program load), and an emergency program reaches every host", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const programIds = () => Object.fromEntries(lab.hosts.map((h) => [h.name, ownObjects(h).filter((e) => e.kind === "Program").map((e) => e.id)]));
    const ids = programIds();
    // The rules change: 7777's is lifted, 9999's added (what each host passes shows which it runs).
    repo.commit({ rules: [6666, 8888, 9999], bake: "1h" }, "an emergency rule");
    const before = await trafficAll();
    const rule = await rollout("--emergency");
    expect(rule.rollout).toMatchObject({ phase: "Succeeded", emergency: true });
    expect(programIds()).toEqual(ids);
    // It went as entries: each agent put them into its build of the revision it ran (nothing
    // parsed, no bundle fetched first), and every host runs the new rules.
    for (const h of lab.hosts) {
      const applied = h.logs().split("\n").find((l) => l.includes(rule.rollout.digest) && l.includes('"revision applied"'));
      expect(applied, h.name).toMatch(/"as":"entries"/);
    }
    const after = await trafficAll();
    for (const h of lab.hosts) expect([h.name, before[h.name]!.rule2, after[h.name]!.pod, after[h.name]!.rule2, after[h.name]!.legit]).toEqual([h.name, 0, 0, 200, 200]);
    // Restarted with etcd away right after the rule (its bundle not here yet: an agent fetches it
    // a minute later), an agent builds the revision from the earlier bundle and the entries, and
    // keeps healing: a link detached by hand is put back, the new rules still hold.
    const h2 = lab.hosts[2]!;
    await lab.etcd.kill();
    try {
      await h2.stopAgent("SIGKILL");
      startAgent(h2);
      const attachmentId = () => ownObjects(h2).find((o) => o.kind === "Attachment")?.id;
      const linkId = attachmentId()!;
      h2.exec("bpftool", ["link", "detach", "id", String(linkId)]);
      await until("the detached link put back after a restart with etcd away", () => (attachmentId() ?? linkId) !== linkId, 15_000, () => h2.logs().slice(-3000));
      const healed = (await runTraffic(h2.lab, { flows, pps: 3000, count: 600 })).received;
      expect([healed.pod, healed.rule2, healed.legit]).toEqual([0, 200, 200]);
    } finally {
      await lab.etcd.restart();
    }
    repo.commit({ rules: [6666, 7777, 8888, 9999], version: 2, bake: "1h" }, "an emergency program");
    const program = await rollout("--emergency");
    expect(program.rollout).toMatchObject({ phase: "Succeeded", emergency: true });
    const now = programIds();
    for (const h of lab.hosts) expect(now[h.name]).not.toEqual(ids[h.name]);
    const got = await trafficAll();
    for (const h of lab.hosts) expect([h.name, got[h.name]!.pod, got[h.name]!.rule2, got[h.name]!.legit]).toEqual([h.name, 0, 0, 200]);
  });

  it("a host whose probes lack a feature the revision needs is reported Blocked and does not fail its ring", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    repo.commit({ rules: [6666], kprobeHost: true }, "a kprobe for hosts labelled probe=kprobe");
    const { rollout: r } = await rollout();
    expect(r.phase, r.message).toBe("Succeeded");
    expect(r.message).toMatch(/Blocked .*: h4/);
    const h4 = status().hosts.find((h) => h.host === "h4")!;
    expect(h4.status, JSON.stringify(h4.status)).toMatchObject({ errorClass: "Blocked", message: expect.stringMatching(/kprobe is not supported on this kernel/) });
    expect(r.rings.flatMap((x) => Object.keys(x.blocked))).toEqual(["h4"]);
    expect(status().hosts.filter((h) => h.host !== "h4").every((h) => h.status?.lastAppliedRevision === r.digest)).toBe(true);
  });

  it("pause holds a rollout at its ring and resume goes on; a newer rollout supersedes an unfinished one; abort and rollback send hosts back", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const digestOf = (h: string) => status().hosts.find((x) => x.host === h)!.status?.lastAppliedRevision;
    const good = status().rollout!.digest;
    const start = (): string => (JSON.parse(cli("rollout", "start", "--output", "json").stdout) as { id: string }).id;
    const rolloutOf = (id: string) => (JSON.parse(cli("rollout", "status", id, "--output", "json").stdout) as { rollout: Rollout }).rollout;

    // Pause during the canary's bake: the next ring is not started; resume: it is.
    // (the bake is long enough for the pause to land in it, even on a loaded machine)
    repo.commit({ rules: [6666, 5555], bake: "5s" }, "pause me");
    const a = start();
    await until("the canary Ready", () => rolloutOf(a).rings[0]!.readyAt !== undefined, 30_000);
    expect(cli("rollout", "pause", a).status).toBe(0);
    await until("paused", () => rolloutOf(a).phase === "Paused", 10_000);
    const paused = rolloutOf(a);
    await new Promise((r) => setTimeout(r, 6000));
    // Past the bake, still at the same ring, the next one not started.
    expect(rolloutOf(a).ring).toBe(paused.ring);
    expect(rolloutOf(a).rings[paused.ring + 1]!.startedAt).toBeUndefined();
    expect(cli("rollout", "resume", a).status).toBe(0);
    await until("the next ring started", () => rolloutOf(a).rings[paused.ring + 1]!.startedAt !== undefined, 15_000);

    // A newer revision while it runs: the older rollout is Superseded where it stands.
    repo.commit({ rules: [6666, 4444], bake: "30s" }, "supersede it");
    const b = start();
    await until("superseded", () => rolloutOf(a).phase === "Superseded", 30_000);
    expect(rolloutOf(a).message).toMatch(new RegExp(`superseded by ${b}`));
    await until("the newer one's canary Ready", () => rolloutOf(b).rings[0]!.readyAt !== undefined, 30_000);
    const canary = rolloutOf(b).rings[0]!.hosts[0]!;
    expect(digestOf(canary)).toBe(rolloutOf(b).digest);

    // Abort: every host it reached goes back to the last good bundle.
    expect(cli("rollout", "abort", b).status).toBe(0);
    await until("aborted", () => rolloutOf(b).phase === "Aborted", 10_000);
    await until("the canary back on the last good bundle", () => digestOf(canary) === good, 30_000);
    expect(cli("rollout", "resume", b).status).toBe(2);

    // Rollback after success: every host back to the revision before.
    repo.commit({ rules: [6666, 3333], bake: "100ms" }, "roll me back");
    const { rollout: done } = await rollout();
    expect(done.phase).toBe("Succeeded");
    expect(cli("rollout", "rollback", done.id).status).toBe(0);
    // (h4 cannot apply the last good revision, whose kprobe it lacks: it is Blocked on it again.)
    await until("every host back", () => status().hosts.every((h) => h.status?.lastAppliedRevision === good || (h.host === "h4" && h.status?.failedRevision === good)), 30_000);
    expect(rolloutOf(done.id)).toMatchObject({ phase: "RolledBack", message: expect.stringMatching(/rolled back by an operator; 5 hosts back to main@sha1:/) });
  });

  it("fleet status --watch: JSON lines when not on a terminal, a live view redrawn in place on one", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    repo.commit({ rules: [6666, 2222], bake: "1s" }, "watch me");
    const id = (JSON.parse(cli("rollout", "start", "--output", "json").stdout) as { id: string }).id;
    const piped = await lab.cliAsync(["rollout", "status", id, "--watch"]);
    const lines = piped.stdout.trim().split("\n").map((l) => JSON.parse(l) as { phase: string; rings: Array<{ ring: string; done: number; total: number }> });
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.at(-1)).toMatchObject({ phase: "Succeeded", rings: [{ ring: "canary", done: 1, total: 1 }, { ring: "half", done: 2, total: 2 }, { ring: "all", done: 2, total: 2 }] });
    // On a terminal (script(1) gives it one): text, redrawn in place with cursor movements.
    repo.commit({ rules: [6666, 2223], bake: "1s" }, "watch me on a terminal");
    const id2 = (JSON.parse(cli("rollout", "start", "--output", "json").stdout) as { id: string }).id;
    const tty = await lab.cliAsyncTty(["rollout", "status", id2, "--watch"]);
    expect(tty).toMatch(/\x1b\[\d+A/);
    expect(tty).toMatch(/ring canary: 1\/1 done/);
    expect(tty).toMatch(/HOST +RING +REVISION +READY +MESSAGE/);
  });
});
