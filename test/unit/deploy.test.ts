// The deploy/ files as operators get them: every Kubernetes document validates against the
// Kubernetes schemas (kubernetes-models), the DaemonSet asks for the capabilities eBPF needs and
// nothing more, and every systemd unit passes `systemd-analyze verify`. Broken copies fail, so
// the checks can fail.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";

const DEPLOY = new URL("../../deploy/", import.meta.url).pathname;
const MODELS: Record<string, new (d: never) => { validate(): void }> = { DaemonSet, ConfigMap, Namespace, ServiceAccount };
type Doc = { kind: string; metadata?: { name?: string }; [k: string]: unknown };

const docs = readdirSync(join(DEPLOY, "kubernetes"))
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(DEPLOY, "kubernetes", f), "utf8")).map((d) => ({ file: f, doc: d.toJS() as Doc })));

function validate(doc: Doc): void {
  const Model = MODELS[doc.kind];
  if (!Model) throw new Error(`no schema for kind ${doc.kind}`);
  const { apiVersion: _a, kind: _k, ...data } = doc;
  new Model(data as never).validate();
}

const tmp = mkdtempSync(join(tmpdir(), "bpfops-deploy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("deploy/kubernetes", () => {
  it.each(docs.map((d) => [`${d.file}: ${d.doc.kind}/${d.doc.metadata?.name}`, d.doc] as const))("%s validates against the Kubernetes schema", (_, doc) => {
    expect(() => validate(doc)).not.toThrow();
  });

  const daemonSet = () => structuredClone(docs.find((d) => d.doc.kind === "DaemonSet")!.doc) as Doc & { spec: { template: { spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } } } };
  it.each<[string, (d: ReturnType<typeof daemonSet>) => void]>([
    ["capabilities that are not a list", (d) => ((d.spec.template.spec.containers[0]!.securityContext as Record<string, unknown>).capabilities = { add: "BPF" })],
    ["a container without an image name type", (d) => (d.spec.template.spec.containers[0]!.image = 42)],
    ["hostNetwork as a string", (d) => (d.spec.template.spec.hostNetwork = "yes")],
  ])("a DaemonSet with %s does not validate", (_, breakIt) => {
    const d = daemonSet();
    breakIt(d);
    expect(() => validate(d)).toThrow();
  });

  it("the agent gets the host network, bpffs and tracefs, and exactly the capabilities eBPF needs: not privileged, no host PID", () => {
    const pod = daemonSet().spec.template.spec as { hostNetwork?: boolean; hostPID?: boolean; containers: Array<{ securityContext: { privileged: boolean; capabilities: { add: string[]; drop: string[] } }; volumeMounts: Array<{ mountPath: string }> }> };
    const c = pod.containers[0]!;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBeUndefined();
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN"] });
    expect(c.volumeMounts.map((m) => m.mountPath)).toEqual(expect.arrayContaining(["/sys/fs/bpf", "/sys/kernel/tracing"]));
  });
});

describe("deploy/*.service", () => {
  const verify = (file: string) => spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
  const units = readdirSync(DEPLOY).filter((f) => f.endsWith(".service"));

  it.each(units)("%s passes systemd-analyze verify", (unit) => {
    const r = verify(join(DEPLOY, unit));
    expect(r.error, "systemd-analyze is part of systemd (scripts/bootstrap installs it)").toBeUndefined();
    expect([r.status, r.stderr.trim()]).toEqual([0, ""]);
  });

  it("a unit with a misspelt directive does not", () => {
    const f = join(tmp, "broken.service");
    writeFileSync(f, readFileSync(join(DEPLOY, "bpfops-agent.service"), "utf8").replace("RestartSec=2", "RestartSecs=2"));
    expect(verify(f).stderr).toMatch(/Unknown key '?RestartSecs'? in section \[Service\]/);
  });

  it("the agent's units need bpffs mounted and keep to the capabilities eBPF needs", () => {
    for (const unit of units.filter((u) => u.startsWith("bpfops-agent"))) {
      const text = readFileSync(join(DEPLOY, unit), "utf8");
      expect(text, unit).toMatch(/^RequiresMountsFor=\/sys\/fs\/bpf$/m);
      expect(text, unit).toMatch(/^CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_ADMIN$/m);
      expect(text, unit).toMatch(/^Restart=always$/m);
    }
  });
});
