// The command line as an SRE meets it: doctor passes as root and names every missing capability
// without them, completion scripts parse in their shells, and --version says what it runs on.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { chmodSync } from "node:fs";
import { needs, tempLab } from "./harness.ts";
import { HDR, tempRepo } from "./repos.ts";

const bpfops = (args: string[], wrap: string[] = []) => spawnSync(wrap[0] ?? process.execPath, [...wrap.slice(1), ...(wrap.length ? [process.execPath] : []), "bin/bpfops.js", ...args], { encoding: "utf8" });

describe("bpfops doctor", () => {
  it("passes as root", (ctx) => {
    needs(ctx);
    const r = bpfops(["doctor", "--output", "json"]);
    expect(r.status, r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string }> };
    expect(out.ok).toBe(true);
    expect(out.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["kernel", "BTF", "bpffs", "CAP_BPF", "CAP_NET_ADMIN", "libbpf", "clang", "hook xdp", "hook tcx"]));
  });

  it("without capabilities, names each one missing, what needs it and how to grant it, and exits 1", (ctx) => {
    needs(ctx);
    const r = bpfops(["doctor"], ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]);
    expect(r.status, r.stderr).toBe(1);
    for (const cap of ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_ADMIN"]) {
      expect(r.stdout).toMatch(new RegExp(`FAIL  ${cap}\\s+not held by this process\\n\\s+needed for: .+\\n\\s+fix: .*setcap ${cap.toLowerCase()}`));
    }
    expect(r.stdout).toMatch(/4 check\(s\) failed: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN/);
  });
});

describe("privileges", () => {
  it("a dry-run without CAP_SYS_ADMIN says that entering the hook's network namespace needs it, not that an interface is missing", (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Program\nmetadata: { name: f }\nspec: { object: objs/pod_filter.o, program: pod_filter }\n---\n${HDR}kind: Attachment\nmetadata: { name: f }\nspec: { program: f, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n` });
    chmodSync(dir, 0o755); // readable by the unprivileged user below
    const r = bpfops(["reconcile", "--dry-run", "--path", dir, "--bpffs", "/sys/fs/bpf/bpfops-test-unprivileged"], ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/in netns \S+ \(entering a network namespace needs CAP_SYS_ADMIN\): Operation not permitted/);
    expect(r.stderr).not.toMatch(/not found/);
  });
});

describe("the command line", () => {
  it.each([
    ["bash", ["bash", "-n"]],
    ["zsh", null],
    ["fish", null],
  ])("completion %s lists every command", (shell, check) => {
    const r = bpfops(["completion", shell]);
    expect(r.status).toBe(0);
    for (const cmd of ["reconcile", "status", "doctor", "features", "completion"]) expect(r.stdout).toContain(cmd);
    if (check) expect(spawnSync(check[0]!, check.slice(1), { input: r.stdout }).status).toBe(0);
  });

  it.each([["completion", "bash"], ["features", "--output", "json"]])("a closed stdout (%s | a reader that is gone) ends quietly, with no stack trace", (...args) => {
    const r = spawnSync("bash", ["-c", `${process.execPath} bin/bpfops.js ${args.join(" ")} | true; echo "exit=\${PIPESTATUS[0]}" >&2`], { encoding: "utf8" });
    expect(r.stderr).toBe("exit=0\n");
  });

  it("--version names bpfops, its commit, libbpf and the kernel", () => {
    const r = bpfops(["--version"]);
    expect(r.stdout).toMatch(/^bpfops \d+\.\d+\.\d+ \(commit [0-9a-f]{12}\)\nlibbpf \d+\.\d+\nkernel \S+\nnode /);
  });

  it.each(["reconcile", "status", "doctor", "features", "completion", "demo"])("%s --help has an example and its exit codes or usage", (cmd) => {
    const r = bpfops([cmd, "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Example/);
  });
});
