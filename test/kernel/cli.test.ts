// The command line as an SRE meets it: doctor passes as root and names every missing capability
// without them, completion scripts parse in their shells, and --version says what it runs on.
import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BPF, needs, tempLab, tempPinRoot } from "./harness.ts";
import { HDR, tempRepo } from "./repos.ts";

const bpfops = (args: string[], wrap: string[] = []) => spawnSync(wrap[0] ?? process.execPath, [...wrap.slice(1), ...(wrap.length ? [process.execPath] : []), "bin/bpfops.cjs", ...args], { encoding: "utf8" });

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

describe("bpfops doctor --path: what the manifests need is required", () => {
  const prog = (name: string, object: string) => `${HDR}kind: Program\nmetadata: { name: ${name} }\nspec: { object: ${object}, program: ${name === "tp" ? "tp_counter" : "tcx_counter"} }\n`;
  const attach = (program: string, hook: string) => `---\n${HDR}kind: Attachment\nmetadata: { name: ${program} }\nspec: { program: ${program}, hook: ${hook} }\n`;
  it.each([
    // [case, manifests, PATH without the toolchain, exit, failed check, needed by]
    ["a tcx hook this kernel attaches", prog("c", "objs/tcx_counter.o") + attach("c", "{ type: tcx, interfaces: [lo], direction: ingress }"), false, 0, null, null],
    ["a kprobe hook bpfops cannot attach here", prog("c", "objs/tcx_counter.o") + attach("c", "{ type: kprobe, function: do_sys_open }"), false, 1, "hook kprobe", "Attachment/c (kprobe hook)"],
    ["a .bpf.c source on a host without clang", prog("c", "src/x.bpf.c"), true, 1, "clang", "Program/c (compiling src/x.bpf.c)"],
    ["a .bpf.c source on a host with the toolchain", prog("c", "src/x.bpf.c"), false, 0, null, null],
    ["a host selector that leaves this host out", `${HDR}kind: Program\nmetadata: { name: c }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, hostSelector: { matchLabels: { role: edge } } }\n` + attach("c", "{ type: kprobe, function: do_sys_open }").replace("hook:", "hostSelector: { matchLabels: { role: edge } }, hook:"), false, 0, null, null],
  ] as const)("%s", (_name, manifests, noToolchain, exit, failed, by) => {
    const dir = tempRepo({ "m.yaml": manifests });
    const env = noToolchain ? { ...process.env, PATH: "/nonexistent" } : process.env;
    const r = spawnSync(process.execPath, ["bin/bpfops.cjs", "doctor", "--path", dir, "--output", "json"], { encoding: "utf8", env });
    expect(r.status, r.stderr).toBe(exit);
    const checks = (JSON.parse(r.stdout) as { checks: Array<{ name: string; status: string; neededBy?: string }> }).checks;
    const failing = checks.filter((c) => c.status === "missing");
    if (failed) expect(failing).toEqual(expect.arrayContaining([expect.objectContaining({ name: failed, neededBy: expect.stringContaining(by!) })]));
    else expect(failing).toEqual([]);
  });

  it("manifests that do not parse are an error (exit 2) naming the file and line", () => {
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Attachment\nmetadata: { name: c }\nspec: { program: c, hook: { type: nosuch } }\n` });
    const r = bpfops(["doctor", "--path", dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/m\.yaml:\d+/);
  });
});

describe("progress", () => {
  // A repository with a .bpf.c source to compile and a Map of 20,000 entries to write.
  const repo = () => {
    const entries = Array.from({ length: 20_000 }, (_, i) => `{ key: ${i}, value: ${i} }`).join(", ");
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Program\nmetadata: { name: c }\nspec: { object: c.bpf.c, program: tcx_counter }\n---\n${HDR}kind: Map\nmetadata: { name: big }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 32768, entries: [${entries}] }\n` });
    writeFileSync(join(dir, "c.bpf.c"), readFileSync(BPF("tcx_counter.bpf.c")));
    writeFileSync(join(dir, "common.bpf.h"), readFileSync(BPF("common.bpf.h")));
    return dir;
  };

  it("on a terminal, compiling, verifying, applying and a large map write each show a progress line", (ctx) => {
    needs(ctx);
    const dir = repo();
    const root = tempPinRoot();
    // script(1) gives the command a terminal; what it wrote comes back on stdout.
    const run = (args: string) => spawnSync("script", ["-qec", `${process.execPath} bin/bpfops.cjs ${args}`, "/dev/null"], { encoding: "utf8" });
    const dry = run(`reconcile --dry-run --verify --path ${dir} --bpffs ${root} --cache ${dir}/.cache`);
    expect(dry.stdout).toMatch(/compile 1\/1 c\.bpf\.c/);
    expect(dry.stdout).toMatch(/verify 1\/1 Program\/c/);
    const apply = run(`reconcile --path ${dir} --bpffs ${root} --cache ${dir}/.cache`);
    expect(apply.stdout).toMatch(/apply \d+ create \S+big/);
    expect(apply.stdout).toMatch(/write Map\/big: 16384\/20000 entries/);
    expect(apply.stdout).toMatch(/\r\x1b\[K/); // the line is erased before the result
  });

  it("piped, there is no progress at all", (ctx) => {
    needs(ctx);
    const dir = repo();
    const r = bpfops(["reconcile", "--path", dir, "--bpffs", tempPinRoot(), "--cache", `${dir}/.cache`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toMatch(/\r|compile 1|write Map/);
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
    const r = spawnSync("bash", ["-c", `${process.execPath} bin/bpfops.cjs ${args.join(" ")} | true; echo "exit=\${PIPESTATUS[0]}" >&2`], { encoding: "utf8" });
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

  it("--help and README document every environment variable the code reads", () => {
    const sources = execFileSync("grep", ["-rhoE", "process\\.env\\.[A-Z_]+", "reconciler", "bin", "scripts/install-native.mjs"], { encoding: "utf8" });
    const read = [...new Set(sources.split("\n").filter(Boolean).map((l) => l.replace("process.env.", "")))].filter((v) => !["XDG_CACHE_HOME", "PATH", "HOME"].includes(v));
    expect(read.length).toBeGreaterThan(3);
    const help = bpfops(["--help"]).stdout;
    const readme = readFileSync("README.md", "utf8");
    for (const v of read) {
      expect(help, `${v} in bpfops --help`).toContain(v);
      expect(readme, `${v} in README`).toContain(v);
    }
  });
});
