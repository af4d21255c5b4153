// `npm run demo:fleet`: a staged rollout and an emergency filter over four simulated hosts, in a
// throwaway lab (a network and mount namespace per host, etcd, a controller, real agents), with
// real traffic into every host. Everything it makes is removed at the end.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFleetLab } from "./fleet-lab.ts";
import { fleetRepo } from "./fleet-repo.ts";
import { runTraffic } from "./traffic.ts";

const say = (s: string) => console.log(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const flows = [
  { name: "legit", dport: 80, payload: Buffer.from("legit") },
  { name: "death", dport: 6666, payload: Buffer.from("packet of death") },
  { name: "new-attack", dport: 7777, payload: Buffer.from("a new attack") },
];

interface View {
  rollout?: { id: string; phase: string; message: string };
  rings: Array<{ ring: string; done: number; total: number; p50Ms?: number; p99Ms?: number }>;
}

const lab = await createFleetLab(4, { prefix: "bpfops-demo-fleet", fleet: "demo" });
const repo = fleetRepo();
const cache = mkdtempSync(join(tmpdir(), "bpfops-demo-fleet-"));
try {
  say(`fleet lab: ${lab.hosts.length} hosts (${lab.hosts.map((h) => h.name).join(", ")}), each its own network namespace and bpffs; etcd and a controller`);
  lab.startController(["--repo", repo.dir, "--path", "fleet", "--cache", cache]);
  for (const h of lab.hosts) h.startAgent(["--interval", "1h", "--drift-interval", "5s"]);
  const view = () => JSON.parse(lab.cli(["fleet", "status", "--output", "json"]).stdout || "{}") as View & { hosts: Array<{ member: boolean }> };
  while (view().hosts?.filter((h) => h.member).length !== lab.hosts.length) await sleep(200);
  say("every agent registered with the fleet\n");

  const traffic = async (title: string) => {
    const got = await Promise.all(lab.hosts.map(async (h) => [h.name, (await runTraffic(h.lab, { flows, pps: 3000, count: 900 })).received] as const));
    say(`${title}: packets received of 300 per flow`);
    for (const [name, r] of got) say(`  ${name}: legit ${r.legit}, packet of death ${r.death}, new attack ${r["new-attack"]}`);
    say("");
  };
  await traffic("before any rollout");

  say("1. a staged rollout of the packet-of-death filter: canary, then half, then all, 2 s bake each");
  repo.commit({ rules: [6666], bake: "2s" }, "the packet-of-death filter");
  const staged = lab.cliAsync(["rollout", "start", "--wait", "--output", "json"]);
  let last = "";
  for (;;) {
    const v = view();
    const line = v.rollout ? `   ${v.rollout.phase.padEnd(11)} ${v.rings.map((r) => `${r.ring} ${r.done}/${r.total}`).join("  ")}  ${v.rollout.message}` : "";
    if (line && line !== last) say((last = line));
    if (v.rollout && !["Progressing", "Paused"].includes(v.rollout.phase)) break;
    await sleep(250);
  }
  await staged;
  await traffic("after the staged rollout");

  say("2. a new attack at 3 a.m.: one more rule, rolled out with --emergency (canary first, no bake)");
  const t0 = Date.now();
  repo.commit({ rules: [6666, 7777], bake: "2s" }, "block the new attack");
  const r = await lab.cliAsync(["rollout", "start", "--emergency", "--wait", "--output", "json"]);
  const done = JSON.parse(r.stdout) as { phase: string };
  say(`   ${done.phase} on every host ${Date.now() - t0} ms after the commit (a map update on each host: no program was loaded)`);
  for (const ring of view().rings) say(`   ring ${ring.ring}: ${ring.done}/${ring.total}, apply p50 ${ring.p50Ms} ms, p99 ${ring.p99Ms} ms`);
  say("");
  await traffic("after the emergency rule");
  say(lab.cli(["fleet", "status"]).stdout);
} finally {
  await lab.destroy();
  repo.remove();
  rmSync(cache, { recursive: true, force: true });
}
