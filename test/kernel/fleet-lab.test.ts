// The fleet simulation harness cleans up after a process that dies: a lab (its etcd, an agent,
// the hosts' network and mount namespaces, its directories) made by a process that then throws
// an uncaught exception leaves nothing behind.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { needs } from "./harness.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("fleet lab", () => {
  it("a process that dies of an uncaught exception leaves no namespace, mount, directory or process of its lab", (ctx) => {
    needs(ctx);
    const work = mkdtempSync(join(tmpdir(), "bpfops-test-fleet-lab-"));
    onTestFinished(() => rmSync(work, { recursive: true, force: true }));
    const script = join(work, "crash.mts");
    const lab = new URL("../../reconciler/lab/fleet-lab.ts", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { createFleetLab } from ${JSON.stringify(lab)};
const lab = await createFleetLab(2, { prefix: "bpfops-t-crash", fleet: "crash" });
const agent = lab.hosts[0]!.startAgent(["--interval", "1h"]);
await new Promise((r) => setTimeout(r, 500));
console.log(JSON.stringify({ id: lab.id, dir: lab.dir, agent: agent.pid }));
setTimeout(() => { throw new Error("a crash"); }, 0);
`,
    );
    const r = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toContain("a crash");
    const made = JSON.parse(r.stdout.trim().split("\n").pop()!) as { id: string; dir: string; agent: number };
    expect(made.id).toMatch(/^bpfops-t-crash-/);
    // What the lab left, should it leave anything, is removed after the test.
    onTestFinished(() => {
      for (const m of execFileSync("findmnt", ["-rn", "-o", "TARGET"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(made.id)).reverse()) spawnSync("umount", [m]);
      for (const ns of execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(made.id))) spawnSync("ip", ["netns", "del", ns]);
      for (const f of readdirSync(tmpdir()).filter((f) => f.startsWith(made.id))) rmSync(join(tmpdir(), f), { recursive: true, force: true });
      spawnSync("pkill", ["-KILL", "-f", made.id]);
    });
    const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").filter((l) => l.startsWith(made.id));
    const mounts = execFileSync("findmnt", ["-rn", "-o", "TARGET"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(made.id));
    const dirs = readdirSync(tmpdir()).filter((f) => f.startsWith(made.id));
    // (a SIGKILL is delivered, not waited for, at exit)
    for (const end = Date.now() + 2000; alive(made.agent) && Date.now() < end; ) spawnSync("sleep", ["0.05"]);
    const etcd = spawnSync("pgrep", ["-f", `--name ${made.id}-etcd`], { encoding: "utf8" }).stdout.trim();
    expect({ netns, mounts, dirs, labDir: existsSync(made.dir), agent: alive(made.agent), etcd }).toEqual({ netns: [], mounts: [], dirs: [], labDir: false, agent: false, etcd: "" });
  });
});
