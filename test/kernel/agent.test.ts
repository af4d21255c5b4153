// The agent as a real process following a real git repository, on the real kernel: commits are
// applied, a bad one is refused with the old state running, drift is put back, a signed webhook
// call leads to a reconcile and a forged one does not, metrics are Prometheus text, SIGTERM leaves
// the programs enforcing, and a restarted agent changes nothing.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { describe, expect, it, onTestFinished, type TestContext } from "vitest";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { listPins, openPinnedLink, openPinnedMap } from "../../reconciler/kernel/pins.ts";
import { closeAtEnd, needs, tempLab, tempPinRoot, until } from "./harness.ts";
import { HDR, tempRepo } from "./repos.ts";
import { serveGit } from "../../reconciler/lab/git-server.ts";

const BAD = new URL("../fixtures/bad/", import.meta.url).pathname;

interface Status {
  conditions: Array<{ type: string; status: boolean; reason: string; message: string }>;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  unsigned: boolean;
  suspended: boolean;
}

/** A git repository of the lab's allow policy (grants for the given ports), one commit per call to commit(). */
function policyRepo(lab: Lab) {
  const dir = tempRepo({});
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, encoding: "utf8" }).trim();
  git("init", "-q", "-b", "main");
  const write = (ports: number[], extra = "") => {
    const entries = ports.map((p) => `    - { key: { saddr: ${lab.src.addr}, dport: ${p}, proto: udp }, value: 1 }`).join("\n");
    writeFileSync(
      join(dir, "m.yaml"),
      `${HDR}kind: Map\nmetadata: { name: allow }\nspec:\n  type: hash\n  keySize: 8\n  valueSize: 4\n  maxEntries: 64\n  entryPolicy: exact\n  datapathWrites: none\n  entries:\n${entries}\n---
${HDR}kind: Map\nmetadata: { name: verdicts }\nspec:\n  type: percpu_array\n  keySize: 4\n  valueSize: 8\n  maxEntries: 2\n  metrics:\n    - { name: l4_policy_packets_total, help: "packets by verdict (0 pass, 1 drop)", labels: { verdict: "" } }\n---
${HDR}kind: Program\nmetadata: { name: policy }\nspec: { object: objs/allow_policy.o, program: allow_policy, maps: { allow: { bind: allow }, allow_verdicts: { bind: verdicts } } }\n---
${HDR}kind: Attachment\nmetadata: { name: policy }\nspec: { program: policy, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n${extra}`,
    );
  };
  const commit = (message: string) => {
    git("add", "-A");
    git("commit", "-q", "-m", message);
    return git("rev-parse", "HEAD");
  };
  return { dir, write, commit };
}

/** What most agent tests start from: a lab (XDP link updates needed), a pin root and the policy repository. */
function policySetup(ctx: TestContext): { lab: Lab; root: string; repo: ReturnType<typeof policyRepo> } {
  needs(ctx, "xdpLinkUpdate");
  const lab = tempLab();
  return { lab, root: tempPinRoot(), repo: policyRepo(lab) };
}

/** Starts `bpfops agent` and waits for its endpoint; SIGKILLed at the end of the test if still running. */
async function startAgent(args: string[]): Promise<{ child: ChildProcess; url: string; logs: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ["bin/bpfops.cjs", "agent", "--listen", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  onTestFinished(() => void (child.exitCode === null && child.kill("SIGKILL")));
  for (let i = 0; i < 200; i++) {
    const m = /"listen":"([\d.]+:\d+)"/.exec(out);
    if (m) return { child, url: `http://${m[1]}`, logs: () => out, exited };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the agent did not start:\n${out}`);
}

const status = async (url: string) => (await (await fetch(`${url}/status`)).json()) as Status;
const condition = (s: Status, type: string) => s.conditions.find((c) => c.type === type)!;

/** The agent's status once it has attempted rev (applied or refused it). */
const attempted = (url: string, rev: string, what: string) =>
  until(what, async () => {
    const s = await status(url);
    return s.lastAttemptedRevision === rev && s;
  });

const flows = [
  { name: "web", dport: 80, payload: Buffer.from("web") },
  { name: "dns", dport: 53, payload: Buffer.from("dns") },
];

describe("bpfops agent", () => {
  it("applies a commit, refuses a bad one whole (Stalled, the old state running), applies the next good one, and a restart changes nothing", async (ctx) => {
    const { lab, root, repo } = policySetup(ctx);
    repo.write([80]);
    const first = repo.commit("web only");
    const cache = mkdtempSync(join(tmpdir(), "bpfops-agent-cache-"));
    onTestFinished(() => rmSync(cache, { recursive: true, force: true }));
    const args = ["--repo", repo.dir, "--ref", "main", "--interval", "200ms", "--bpffs", root, "--cache", cache];
    const agent = await startAgent(args);
    await until("the first commit applied", async () => (await status(agent.url)).lastAppliedRevision === first);
    expect(condition(await status(agent.url), "Ready")).toMatchObject({ status: true, reason: "ReconciliationSucceeded" });

    // A broken manifest: refused whole; web stays allowed, dns stays denied.
    repo.write([80, 53], `---\n${HDR}kind: Attachment\nmetadata: { name: broken }\nspec: { program: nosuch, hook: { type: xdp, interfaces: [dst0] } }\n`);
    const bad = repo.commit("broken");
    const stalled = await attempted(agent.url, bad, "the bad commit refused");
    expect(stalled.lastAppliedRevision).toBe(first);
    expect(condition(stalled, "Stalled")).toMatchObject({ status: true, reason: "ManifestInvalid" });
    expect(condition(stalled, "Ready")).toMatchObject({ status: false, reason: "RevisionRefused" });
    const during = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([during.received.web, during.received.dns]).toEqual([during.sent.web, 0]);

    repo.write([80, 53]);
    const good = repo.commit("web and dns");
    await until("the next good commit applied", async () => (await status(agent.url)).lastAppliedRevision === good);
    const after = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([after.received.web, after.received.dns]).toEqual([after.sent.web, after.sent.dns]);

    // `bpfops status` shows what the agent left in the kernel.
    const shown = JSON.parse(execFileSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root, "--output", "json"], { encoding: "utf8" })) as { agent: { ready: boolean; lastAppliedRevision: string } };
    expect(shown.agent).toMatchObject({ ready: true, lastAppliedRevision: good });

    // SIGTERM: the agent stops within a second or so and the programs keep enforcing.
    const pinsBefore = listPins(root).map((p) => p.path).sort();
    const linkBefore = closeAtEnd(openPinnedLink(listPins(`${root}/links`).find((p) => p.kind === "link")!.path)).info();
    const t0 = Date.now();
    agent.child.kill("SIGTERM");
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    const alone = await runTraffic(lab, { flows: [{ name: "other", dport: 81, payload: Buffer.from("other") }, ...flows], pps: 10_000, count: 3_000 });
    expect([alone.received.web, alone.received.dns, alone.received.other]).toEqual([alone.sent.web, alone.sent.dns, 0]);

    // Restarted on the same revision: nothing is swapped, reloaded or re-pinned.
    const again = await startAgent(args);
    await until("the restarted agent ready", async () => condition(await status(again.url), "Ready").status);
    expect(listPins(root).map((p) => p.path).sort()).toEqual(pinsBefore);
    const linkAfter = closeAtEnd(openPinnedLink(listPins(`${root}/links`).find((p) => p.kind === "link")!.path)).info();
    expect([linkAfter.id, linkAfter.progId]).toEqual([linkBefore.id, linkBefore.progId]);
    expect(again.logs()).not.toMatch(/revision applied/);
  });

  it("puts back a link detached by hand and an entry deleted by hand within the drift interval", async (ctx) => {
    const { lab, root, repo } = policySetup(ctx);
    repo.write([80]);
    const rev = repo.commit("web");
    const agent = await startAgent(["--repo", repo.dir, "--interval", "10s", "--drift-interval", "300ms", "--bpffs", root, "--cache", join(repo.dir, ".cache"), "--bpf-stats"]);
    await until("applied", async () => (await status(agent.url)).lastAppliedRevision === rev);
    const linkPin = listPins(`${root}/links`).find((p) => p.kind === "link")!.path;
    const linkId = closeAtEnd(openPinnedLink(linkPin)).info().id;
    execFileSync("bpftool", ["link", "detach", "id", String(linkId)]);
    const allow = closeAtEnd(openPinnedMap(`${root}/maps/allow`));
    allow.delete(allow.entries()[0]!.key);
    await until("the link back and the entry back", async () => {
      // (the detached link's pin is replaced while the agent heals it: absent for a moment)
      let link;
      try {
        link = openPinnedLink(linkPin);
      } catch {
        return false;
      }
      try {
        return link.info().id !== linkId && allow.entries().length === 1;
      } finally {
        link.close();
      }
    });
    const t = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([t.received.web, t.received.dns]).toEqual([t.sent.web, 0]);
    expect(agent.logs()).toMatch(/drift corrected/);
    const objects = ((await (await fetch(`${agent.url}/status`)).json()) as { objects: Array<{ kind: string; name: string; state: string }> }).objects;
    expect(objects).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "Attachment", name: "policy", state: expect.stringMatching(/^(Ready|Applied)$/) })]));
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    expect(metrics).toMatch(/^bpfops_drift_corrections_total\{kind="(Attachment|Map)"\} [1-9]/m);
    // --bpf-stats: the program's runs, as ebpf_exporter names them (one run per packet at XDP)
    // A metric the verdicts Map declares, read from its entries (summed over CPUs) at the scrape.
    expect(metrics).toMatch(new RegExp(`^l4_policy_packets_total\\{verdict="0"\\} ${t.sent.web}$`, "m"));
    expect(metrics).toMatch(new RegExp(`^l4_policy_packets_total\\{verdict="1"\\} ${t.sent.dns}$`, "m"));
    const runs = Number(/^ebpf_program_run_count_total\{name="policy",id="\d+",tag="[0-9a-f]+"\} (\d+)/m.exec(metrics)?.[1]);
    expect(runs).toBeGreaterThanOrEqual(t.sent.web! + t.sent.dns!);

    // Deleted again each time it is put back: after the third heal within ten intervals the map
    // is reported Degraded, with what the heal found, rather than fought over quietly.
    for (let i = 0; i < 3; i++) {
      await until("the entry back", async () => allow.entries().length === 1);
      allow.delete(allow.entries()[0]!.key);
      await until("the entry healed", async () => allow.entries().length === 1);
    }
    const s = await until("Degraded", async () => {
      const st = (await (await fetch(`${agent.url}/status`)).json()) as Status & { degraded: string[]; objects: Array<{ kind: string; name: string; state: string; message?: string }> };
      return st.degraded.includes("Map/allow") && st;
    });
    expect(condition(s, "Ready")).toMatchObject({ status: false, reason: "Degraded" });
    expect(s.objects.find((o) => o.name === "allow" && o.kind === "Map")).toMatchObject({ state: "Degraded", message: expect.stringMatching(/entr/) });
    expect(agent.logs()).toMatch(/reported Degraded/);
  });

  it("a signed webhook call leads to a reconcile at once; unsigned, forged and replayed ones do not; metrics are Prometheus text", async (ctx) => {
    const { root, repo } = policySetup(ctx);
    repo.write([80]);
    const first = repo.commit("web");
    const secretFile = join(repo.dir, ".hook-secret");
    writeFileSync(secretFile, "a-webhook-secret-of-some-length\n");
    // Polling every hour: only the webhook can make it look sooner.
    const agent = await startAgent(["--repo", repo.dir, "--interval", "1h", "--bpffs", root, "--cache", join(repo.dir, ".cache"), "--webhook-secret-file", secretFile]);
    await until("applied", async () => (await status(agent.url)).lastAppliedRevision === first);
    repo.write([80, 53]);
    const second = repo.commit("dns too");
    const body = JSON.stringify({ ref: "refs/heads/main", after: second });
    const sign = (secret: string, b = body) => `sha256=${createHmac("sha256", secret).update(b).digest("hex")}`;
    const post = (headers: Record<string, string>, b = body) => fetch(`${agent.url}/webhook`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: b });
    expect((await post({})).status).toBe(401);
    expect((await post({ "x-hub-signature-256": sign("not-the-secret"), "x-github-delivery": "d1" })).status).toBe(401);
    expect((await post({ "x-hub-signature-256": sign("a-webhook-secret-of-some-length", body + " "), "x-github-delivery": "d2" })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 500));
    expect((await status(agent.url)).lastAppliedRevision).toBe(first); // nothing forged got through
    expect((await post({ "x-hub-signature-256": sign("a-webhook-secret-of-some-length"), "x-github-delivery": "d3" })).status).toBe(202);
    expect((await post({ "x-hub-signature-256": sign("a-webhook-secret-of-some-length"), "x-github-delivery": "d3" })).status).toBe(409);
    await until("the pushed commit applied", async () => (await status(agent.url)).lastAppliedRevision === second, 5000);
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    // Prometheus text: every sample line is NAME{LABELS} VALUE
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    for (const l of samples) expect(l).toMatch(/^[a-z_:][a-z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|NaN|\+Inf$/);
    expect(text).toMatch(/^bpfops_webhook_requests_total\{outcome="accepted"\} 1$/m);
    expect(text).toMatch(/^bpfops_webhook_requests_total\{outcome="BadSignature"\} 2$/m);
    expect(text).toMatch(/^bpfops_webhook_requests_total\{outcome="Unsigned"\} 1$/m);
    expect(text).toMatch(/^bpfops_webhook_requests_total\{outcome="Replayed"\} 1$/m);
    expect(text).toMatch(/^bpfops_reconcile_total\{result="applied"\} 2$/m);
    expect(text).toMatch(/^bpfops_ready 1$/m);
  });

  it("with --verify-commits, an unsigned commit and ones signed by unknown keys (OpenPGP, SSH) are refused, and signed ones (OpenPGP, SSH) are applied", async (ctx) => {
    const { lab, root, repo } = policySetup(ctx);
    const openpgp = await import("openpgp");
    const key = async (name: string) => openpgp.generateKey({ type: "ecc", curve: "ed25519Legacy", userIDs: [{ name, email: `${name}@example.test` }], format: "object" });
    const trusted = await key("release");
    const stranger = await key("stranger");
    const keyring = join(repo.dir, ".keyring.asc");
    writeFileSync(keyring, trusted.publicKey.armor());
    const git = (await import("isomorphic-git")).default;
    const fs = await import("node:fs");
    /** A commit signed (detached, armored, over the commit object) with this key, by isomorphic-git. */
    const signedCommit = async (privateKey: typeof trusted.privateKey, message: string) => {
      await git.add({ fs, dir: repo.dir, filepath: "." });
      return git.commit({
        fs,
        dir: repo.dir,
        message,
        author: { name: "t", email: "t@t" },
        signingKey: "unused",
        onSign: async ({ payload }) => ({ signature: (await openpgp.sign({ message: await openpgp.createMessage({ binary: Buffer.from(payload, "utf8") }), signingKeys: privateKey, detached: true, format: "armored" })) as string }),
      });
    };
    repo.write([80]);
    const first = await signedCommit(trusted.privateKey, "web, signed");
    const agent = await startAgent(["--repo", repo.dir, "--interval", "200ms", "--bpffs", root, "--cache", join(repo.dir, ".cache"), "--verify-commits", keyring]);
    await until("the signed commit applied", async () => (await status(agent.url)).lastAppliedRevision === first);

    repo.write([80, 53]);
    const unsigned = repo.commit("unsigned");
    const s1 = await attempted(agent.url, unsigned, "the unsigned commit refused");
    expect(condition(s1, "Stalled")).toMatchObject({ status: true, reason: "UnsignedCommit" });
    expect(s1.lastAppliedRevision).toBe(first);

    repo.write([80, 53, 22]);
    const foreign = await signedCommit(stranger.privateKey, "signed by a stranger");
    const s2 = await attempted(agent.url, foreign, "the stranger's commit refused");
    expect(condition(s2, "Stalled")).toMatchObject({ status: true, reason: "UntrustedSignature" });
    const t = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([t.received.web, t.received.dns]).toEqual([t.sent.web, 0]); // still the first revision

    repo.write([80, 53]);
    const good = await signedCommit(trusted.privateKey, "web and dns, signed");
    await until("the next signed commit applied", async () => (await status(agent.url)).lastAppliedRevision === good);

    // SSH signatures, made by git itself (gpg.format=ssh), checked against allowed-signers lines.
    const sshKey = (name: string) => {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", join(repo.dir, `.${name}`)]);
      return readFileSync(join(repo.dir, `.${name}.pub`), "utf8").trim();
    };
    const sshCommit = (name: string, message: string) => {
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "gpg.format=ssh", "-c", `user.signingkey=${join(repo.dir, `.${name}`)}`, "add", "-A"], { cwd: repo.dir });
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "gpg.format=ssh", "-c", `user.signingkey=${join(repo.dir, `.${name}`)}`, "commit", "-q", "-S", "-m", message], { cwd: repo.dir });
      return execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo.dir, encoding: "utf8" }).trim();
    };
    writeFileSync(keyring, `${trusted.publicKey.armor()}\nrelease@example.test namespaces="git" ${sshKey("ssh-release")}\n`);
    sshKey("ssh-stranger");
    const sshAgent = await (async () => {
      agent.child.kill("SIGTERM");
      await agent.exited;
      return startAgent(["--repo", repo.dir, "--interval", "200ms", "--bpffs", root, "--cache", join(repo.dir, ".cache"), "--verify-commits", keyring]);
    })();
    repo.write([80, 53, 22]);
    const sshStranger = sshCommit("ssh-stranger", "ssh-signed by a stranger");
    const s3 = await attempted(sshAgent.url, sshStranger, "the commit SSH-signed by a stranger refused");
    expect(condition(s3, "Stalled")).toMatchObject({ status: true, reason: "UntrustedSignature" });
    expect(s3.lastAppliedRevision).toBe(good);
    repo.write([80]);
    const sshGood = sshCommit("ssh-release", "web only, ssh-signed");
    await until("the SSH-signed commit applied", async () => (await status(sshAgent.url)).lastAppliedRevision === sshGood);
    const t2 = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([t2.received.web, t2.received.dns]).toEqual([t2.sent.web, 0]);
  });

  it("rollback applies an earlier revision and holds there; suspend stops new revisions; resume follows the ref again", async (ctx) => {
    const { root, repo } = policySetup(ctx);
    const cli = (...args: string[]) => execFileSync(process.execPath, ["bin/bpfops.cjs", ...args, "--bpffs", root], { encoding: "utf8" });
    repo.write([80]);
    const first = repo.commit("web");
    const agent = await startAgent(["--repo", repo.dir, "--interval", "200ms", "--bpffs", root, "--cache", join(repo.dir, ".cache")]);
    await until("first applied", async () => (await status(agent.url)).lastAppliedRevision === first);
    repo.write([80, 53]);
    const second = repo.commit("dns");
    await until("second applied", async () => (await status(agent.url)).lastAppliedRevision === second);

    cli("rollback");
    await until("rolled back to the first", async () => (await status(agent.url)).lastAppliedRevision === first);
    repo.write([80, 53, 22]);
    const third = repo.commit("ssh");
    await new Promise((r) => setTimeout(r, 800));
    expect((await status(agent.url)).lastAppliedRevision).toBe(first); // held: the new commit waits
    expect((await status(agent.url)).suspended).toBe(true);

    cli("resume");
    await until("the head applied again", async () => (await status(agent.url)).lastAppliedRevision === third);

    cli("suspend");
    await new Promise((r) => setTimeout(r, 400));
    repo.write([80]);
    const fourth = repo.commit("web only again");
    await new Promise((r) => setTimeout(r, 800));
    expect((await status(agent.url)).lastAppliedRevision).toBe(third);
    cli("resume");
    await until("applied after resume", async () => (await status(agent.url)).lastAppliedRevision === fourth);
    expect(() => cli("rollback", "0123456789ab")).toThrow(/is not a revision this host applied/);
  });

  it("follows a repository over smart HTTP from a real git server (git http-backend on loopback)", async (ctx) => {
    const { lab, root, repo } = policySetup(ctx);
    repo.write([80]);
    const first = repo.commit("web");
    const server = await serveGit(dirname(repo.dir));
    onTestFinished(() => server.close());
    const url = `${server.url}/${basename(repo.dir)}/.git`;
    const cache = mkdtempSync(join(tmpdir(), "bpfops-agent-http-"));
    onTestFinished(() => rmSync(cache, { recursive: true, force: true }));
    const agent = await startAgent(["--repo", url, "--ref", "main", "--interval", "300ms", "--allow-unsigned", "--bpffs", root, "--cache", cache]);
    await until("applied over HTTP", async () => (await status(agent.url)).lastAppliedRevision === first);
    expect((await status(agent.url)).unsigned).toBe(true);
    repo.write([80, 53]);
    const second = repo.commit("dns");
    await until("the next commit applied over HTTP", async () => (await status(agent.url)).lastAppliedRevision === second);
    const t = await runTraffic(lab, { flows, pps: 10_000, count: 2_000 });
    expect([t.received.web, t.received.dns]).toEqual([t.sent.web, t.sent.dns]);
  });

  it("logs libbpf's own messages at their level: information by default, debug only with --log-level debug", async () => {
    const dir = tempRepo({ "p.yaml": `${HDR}kind: Program\nmetadata: { name: noted }\nspec: { object: objs/t_note_section.o, program: xdp_note }\n` });
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, encoding: "utf8" }).trim();
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "noted");
    // Each agent on a root of its own, so that each loads the program.
    const libbpfLines = async (extra: string[], cache: string) => {
      const agent = await startAgent(["--repo", dir, "--interval", "1h", "--bpffs", tempPinRoot(), "--cache", join(dir, cache), ...extra]);
      await until("applied", async () => (await status(agent.url)).lastAppliedRevision);
      agent.child.kill("SIGTERM");
      await agent.exited;
      return agent.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { level: number; source?: string; program?: string; msg: string }).filter((l) => l.source === "libbpf");
    };
    const byDefault = await libbpfLines([], ".cache");
    const skipped = expect.stringMatching(/^libbpf: elf: skipping unrecognized data section\(\d+\) \.bpfops\.note$/);
    expect(byDefault.map((l) => [l.level, l.program, l.msg])).toEqual([[30, "noted", skipped]]);
    const debug = await libbpfLines(["--log-level", "debug"], ".cache2");
    expect(debug.filter((l) => l.level === 30).map((l) => l.msg)).toEqual([skipped]);
    // One from opening the object, one from loading it (on a worker thread).
    expect(debug.filter((l) => l.level === 20).map((l) => l.msg)).toContain("libbpf: loading object 't_note_section' from buffer");
    expect(debug.filter((l) => l.level === 20).map((l) => l.msg).join("\n")).toMatch(/map 'note_seen': created successfully/);
  });

  it("the bad-input corpus, committed one file at a time, is refused every time, changes nothing in the kernel and never stops the agent", async (ctx) => {
    const { root, repo } = policySetup(ctx);
    repo.write([80]);
    const first = repo.commit("web");
    const agent = await startAgent(["--repo", repo.dir, "--interval", "100ms", "--drift-interval", "1h", "--bpffs", root, "--cache", join(repo.dir, ".cache")]);
    await until("applied", async () => (await status(agent.url)).lastAppliedRevision === first);
    const before = listPins(root).map((p) => p.path).sort();
    const fixtures = readdirSync(BAD).filter((f) => f.endsWith(".yaml")).sort();
    expect(fixtures.length).toBeGreaterThanOrEqual(40);
    for (const f of fixtures) {
      writeFileSync(join(repo.dir, "bad.yaml"), readFileSync(join(BAD, f)));
      const rev = repo.commit(`bad: ${f}`);
      const s = await attempted(agent.url, rev, `${f} refused`);
      expect(s.lastAppliedRevision, f).toBe(first);
      expect(condition(s, "Stalled").status, f).toBe(true);
      expect(agent.child.exitCode, f).toBeNull();
    }
    expect(listPins(root).map((p) => p.path).sort()).toEqual(before);
    rmSync(join(repo.dir, "bad.yaml"));
    const good = repo.commit("fixed");
    await until("the good commit after the corpus applied", async () => (await status(agent.url)).lastAppliedRevision === good);
  }, 120_000);

  it.each([
    ["a remote repository without --allow-unsigned", ["--repo", "https://git.example/ebpf.git"], /say --allow-unsigned/],
    ["none of --repo, --dir and --etcd", [], /one of: --repo URL\|PATH .*, --dir DIR .*, --etcd URLS/],
    ["both --repo and --etcd", ["--repo", ".", "--etcd", "http://127.0.0.1:2379"], /one of: --repo/],
    ["a bad interval", ["--dir", ".", "--interval", "soon"], /--interval: "soon" is not a duration/],
  ])("refuses %s (exit 2)", (_, args, message) => {
    const res = spawnSync(process.execPath, ["bin/bpfops.cjs", "agent", "--bpffs", "/sys/fs/bpf/bpfops-test-agent-none", ...args], { encoding: "utf8" });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
  });
});
