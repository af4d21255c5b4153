// The fleet's etcd with TLS, client certificates and authentication: a real agent registers with
// its client certificate; the CLI is refused without one, is let in with a password for a user
// whose role covers the fleet's prefix, and is refused with a wrong password.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Etcd3 } from "etcd3";
import { readFileSync } from "node:fs";
import { startEtcd, type EtcdServer } from "../../reconciler/lab/etcd-server.ts";
import { needs, tempPinRoot } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "bpfops-etcd-tls-"));
const file = (n: string) => join(dir, n);
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });

/** A CA, etcd's server certificate for 127.0.0.1, and client certificates whose CN is the etcd user. */
function makeCertificates(): void {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=bpfops test CA", "-keyout", "ca.key", "-out", "ca.pem");
  const cert = (name: string, cn: string, ext: string) => {
    writeFileSync(file(`${name}.ext`), ext);
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  };
  cert("server", "etcd", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  cert("root", "root", "extendedKeyUsage=clientAuth\n");
  cert("agent", "bpfops", "extendedKeyUsage=clientAuth\n");
  cert("other", "nobody", "extendedKeyUsage=clientAuth\n");
}

describe("fleet etcd with TLS and authentication", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    makeCertificates();
    etcd = await startEtcd({ tls: { ca: file("ca.pem"), cert: file("server.pem"), key: file("server.key") } });
    // Users: root (by its certificate) and bpfops (a password, and the agent's certificate's CN),
    // whose role reads and writes the fleet's prefix only.
    const root = new Etcd3({ hosts: etcd.url, credentials: { rootCertificate: readFileSync(file("ca.pem")), certChain: readFileSync(file("root.pem")), privateKey: readFileSync(file("root.key")) } });
    await root.user("root").create("root-password");
    await root.user("root").addRole("root");
    await root.role("bpfops").create();
    await root.role("bpfops").grant({ permission: "Readwrite", range: root.range({ prefix: "/bpfops/t/" }) });
    await root.user("bpfops").create("right-password");
    await root.user("bpfops").addRole("bpfops");
    await root.auth.authEnable();
    root.close();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bpfops.cjs", "fleet", "status", "--etcd", etcd.url, "--fleet", "t", "--etcd-ca", file("ca.pem"), "--output", "json", ...args], { encoding: "utf8", timeout: 30_000 });

  it("an agent registers with its client certificate; the CLI gets in with a password, and not without a certificate or with a wrong password", async (ctx) => {
    needs(ctx);
    const agent = spawn(process.execPath, ["bin/bpfops.cjs", "agent", "--etcd", etcd.url, "--fleet", "t", "--host", "tls-host", "--bpffs", tempPinRoot(), "--cache", join(dir, "cache"), "--listen", "127.0.0.1:0", "--etcd-ca", file("ca.pem"), "--etcd-cert", file("agent.pem"), "--etcd-key", file("agent.key")], { stdio: ["ignore", "pipe", "pipe"] });
    onTestFinished(() => void agent.kill("SIGKILL"));
    let out = "";
    agent.stdout!.on("data", (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the agent did not register:\n${out}`)), 15_000);
      agent.stdout!.on("data", () => /registered with the fleet/.test(out) && (clearTimeout(t), resolve()));
    });
    writeFileSync(file("right"), "bpfops:right-password\n", { mode: 0o600 });
    writeFileSync(file("wrong"), "bpfops:wrong-password\n", { mode: 0o600 });
    const withPassword = cli("--etcd-cert", file("other.pem"), "--etcd-key", file("other.key"), "--etcd-auth-file", file("right"));
    expect(withPassword.status, withPassword.stderr).toBe(0);
    expect((JSON.parse(withPassword.stdout) as { hosts: Array<{ host: string; member: boolean }> }).hosts).toEqual([expect.objectContaining({ host: "tls-host", member: true })]);
    const noCertificate = cli();
    expect(noCertificate.status).toBe(2);
    const wrongPassword = cli("--etcd-cert", file("other.pem"), "--etcd-key", file("other.key"), "--etcd-auth-file", file("wrong"));
    expect(wrongPassword.status).toBe(2);
    expect(wrongPassword.stderr).toMatch(/authentication failed|invalid/i);
  });
});
