// Where revisions come from: a git commit is read lazily (files outside the manifests and the
// objects they name are never read), and .bpf.c sources compile hermetically (no host file, no
// fifo, nothing outside the repository reaches clang) under a time limit.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { directoryTree } from "../../reconciler/sources/repo-tree.ts";
import { buildRevision } from "../../reconciler/agent/build.ts";
import { ManifestInvalidError } from "../../reconciler/core/manifest-issues.ts";
import { BPF, needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, planRepo } from "./repos.ts";

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe("git sources", () => {
  it("reads only the manifests directory and the objects it names: a broken blob elsewhere in the commit costs nothing", (ctx) => {
    needs(ctx);
    const repo = tempDir("bpfops-lazy-");
    mkdirSync(join(repo, "m"));
    mkdirSync(join(repo, "objs"));
    mkdirSync(join(repo, "elsewhere"));
    copyFileSync(BPF("tcx_counter.o"), join(repo, "objs/tcx_counter.o"));
    writeFileSync(join(repo, "m/p.yaml"), `${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: ../objs/tcx_counter.o, program: tcx_counter }\n`);
    writeFileSync(join(repo, "elsewhere/big.bin"), Buffer.alloc(8 << 20, 7));
    writeFileSync(join(repo, "elsewhere/p.yaml"), "this: is: not: yaml: [\n");
    const git = (...args: string[]) => execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8" }).trim();
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "one");
    // Remove the big blob's object: reading it would fail the revision.
    const oid = git("rev-parse", "HEAD:elsewhere/big.bin");
    unlinkSync(join(repo, ".git/objects", oid.slice(0, 2), oid.slice(2)));
    const r = spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", "--repo", repo, "--ref", "main", "--path", "m", "--bpffs", tempPinRoot(), "--cache", join(repo, ".cache")], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/\+ Program\/counter\s+load/);
    // The whole commit, read eagerly, would have failed on that blob.
    const all = spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", "--repo", repo, "--ref", "main", "--path", "elsewhere", "--bpffs", tempPinRoot()], { encoding: "utf8" });
    expect(all.status).toBe(2);
  });
});

describe("object identity", () => {
  it("a source edit that compiles to the same instructions and maps is unchanged; a code edit is a swap", async (ctx) => {
    needs(ctx, "tcxLinkUpdate");
    const dir = tempDir("bpfops-identity-");
    const src = readFileSync(BPF("tcx_counter.bpf.c"), "utf8");
    copyFileSync(BPF("common.bpf.h"), join(dir, "common.bpf.h"));
    const lab = tempLab();
    writeFileSync(join(dir, "m.yaml"), `${HDR}kind: Program\nmetadata: { name: c }\nspec: { object: c.bpf.c, program: tcx_counter }\n---\n${HDR}kind: Attachment\nmetadata: { name: c }\nspec: { program: c, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n`);
    writeFileSync(join(dir, "c.bpf.c"), src);
    const root = tempPinRoot();
    await applyRepo(dir, root);
    // Comments and moved lines: other object bytes, the same program.
    writeFileSync(join(dir, "c.bpf.c"), `/* counts packets */\n\n${src.replace("c->packets++;", "c->packets++; /* one more */")}`);
    expect((await planRepo(dir, root)).changes).toBe(false);
    // A change to the code: a new version, swapped in.
    writeFileSync(join(dir, "c.bpf.c"), src.replace("c->packets++;", "c->packets += 2;"));
    expect((await planRepo(dir, root)).actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}`)).toEqual(["load Program/c", "swap Attachment/c", "prune Program/c"]);
  });
});

describe("hermetic .bpf.c builds", () => {
  const SOURCE_OK = `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\nSEC("xdp") int p(struct xdp_md *c) { return 2; }\n`;
  async function build(source: string): Promise<string> {
    const dir = tempDir("bpfops-hermetic-");
    writeFileSync(join(dir, "p.bpf.c"), source);
    writeFileSync(join(dir, "p.yaml"), `${HDR}kind: Program\nmetadata: { name: p }\nspec: { object: p.bpf.c, program: p }\n`);
    try {
      await buildRevision(directoryTree(dir), { manifestDir: ".", labels: {}, cacheDir: join(dir, ".cache") });
      return "built";
    } catch (e) {
      if (e instanceof ManifestInvalidError) return e.issues.map((i) => `${i.code}: ${i.message}`).join("\n");
      throw e;
    }
  }

  it("builds a source that uses only the repository, vmlinux.h and libbpf's headers", async (ctx) => {
    needs(ctx);
    expect(await build(SOURCE_OK)).toBe("built");
  });

  it.each([
    ["#include of a host file", `#include "/etc/hostname"\n${SOURCE_OK}`, /CompileFailed: .*'\/etc\/hostname' file not found/],
    [".incbin of a host file", `${SOURCE_OK}asm(".incbin \\"/etc/passwd\\"");\n`, /CompileFailed: .*(could not find|No such file|error)/i],
    ["#include of a path outside the repository", `#include "../../../../../../etc/hostname"\n${SOURCE_OK}`, /CompileFailed: .*file not found/],
  ])("refuses %s", async (_, source, want) => {
    expect(await build(source)).toMatch(want);
  });

  it("cannot hang on a fifo of the host: it is not there", async (ctx) => {
    needs(ctx);
    const fifoDir = tempDir("bpfops-fifo-");
    const fifo = join(fifoDir, "hang");
    execFileSync("mkfifo", [fifo]);
    expect(readdirSync(fifoDir)).toEqual(["hang"]);
    expect(await build(`#include "${fifo}"\n${SOURCE_OK}`)).toMatch(/CompileFailed: .*file not found/);
  });
});

describe(".bpf.c build options", () => {
  const DROP = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ports.h"
char LICENSE[] SEC("license") = "GPL";
SEC("xdp") int drop_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(0x0800)) return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != 17) return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end) return XDP_PASS;
	return bpf_ntohs(udp->dest) == DROP_PORT + PORT_OFFSET ? XDP_DROP : XDP_PASS;
}
`;
  /** A repository: the source in src/, a header in include/, the manifests in m/. */
  function repo(build: string, hook = ""): string {
    const dir = tempDir("bpfops-build-opts-");
    // A git work tree: the repository (what the manifests may reach) is all of it, not m/.
    execFileSync("git", ["init", "-q", dir]);
    for (const d of ["src", "include", "m"]) mkdirSync(join(dir, d));
    writeFileSync(join(dir, "src/drop.bpf.c"), DROP);
    writeFileSync(join(dir, "include/ports.h"), "#pragma once\n#define PORT_OFFSET 0\n");
    writeFileSync(join(dir, "m/p.yaml"), `${HDR}kind: Program\nmetadata: { name: drop }\nspec:\n  object: ../src/drop.bpf.c\n  program: drop_port\n  build: ${build}\n${hook}`);
    return dir;
  }

  it("include directories and defines reach clang: the define decides what the program drops", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const dir = repo(`{ includes: [../include], defines: { DROP_PORT: 7777 }, cflags: [-Wextra, -O2] }`, `---\n${HDR}kind: Attachment\nmetadata: { name: drop }\nspec: { program: drop, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`);
    await applyRepo(join(dir, "m"), tempPinRoot(), { cacheDir: join(dir, ".cache") });
    const { runTraffic } = await import("../../reconciler/lab/traffic.ts");
    const t = await runTraffic(lab, { flows: [{ name: "dropped", dport: 7777, payload: Buffer.from("d") }, { name: "kept", dport: 7778, payload: Buffer.from("k") }], pps: 5000, count: 1000 });
    expect([t.received.dropped, t.received.kept]).toEqual([0, t.sent.kept]);
  });

  it("the same commit builds the same bytes with another cache; another define is another object", async (ctx) => {
    needs(ctx);
    const dir = repo(`{ includes: [../include], defines: { DROP_PORT: 7777 } }`);
    const bytes = async (cache: string) => [...(await buildRevision(directoryTree(dir), { manifestDir: "m", labels: {}, cacheDir: join(dir, cache) })).objects.values()][0]!;
    const a = await bytes(".cache-a");
    expect((await bytes(".cache-b")).equals(a)).toBe(true);
    writeFileSync(join(dir, "m/p.yaml"), readFileSync(join(dir, "m/p.yaml"), "utf8").replace("7777", "7000"));
    expect((await bytes(".cache-a")).equals(a)).toBe(false);
  });

  it("a vmlinux.h the repository ships is the one compiled against (not one generated from this host's kernel)", async (ctx) => {
    needs(ctx);
    const dir = repo(`{ includes: [../include], defines: { DROP_PORT: 1 } }`);
    writeFileSync(join(dir, "include/vmlinux.h"), `${readFileSync(BPF("vmlinux.h"), "utf8")}\n#define VMLINUX_FROM_THE_REPOSITORY 1\n`);
    writeFileSync(join(dir, "src/drop.bpf.c"), DROP.replace('#include "ports.h"', '#include "ports.h"\n#ifndef VMLINUX_FROM_THE_REPOSITORY\n#error "not the repository\'s vmlinux.h"\n#endif'));
    const build = await buildRevision(directoryTree(dir), { manifestDir: "m", labels: {}, cacheDir: join(dir, ".cache") });
    expect(build.objects.size).toBe(1);
  });

  it.each([
    ["an output file", "{ cflags: [-o, /tmp/x] }", /spec\.build\.cflags\[0\] not a flag a manifest may give/],
    ["a compiler plugin", "{ cflags: [-fplugin=/tmp/evil.so] }", /spec\.build\.cflags\[0\] not a flag/],
    ["an include path by flag", "{ cflags: [-I/etc] }", /spec\.build\.cflags\[0\] not a flag/],
    ["a define that is not an identifier", "{ defines: { 'A B': 1 } }", /spec\.build\.defines/],
    ["an include directory outside the repository", "{ includes: [../../../etc] }", /build\.includes\[0\]: "\.\.\/\.\.\/\.\.\/etc" leaves the repository/],
    ["an include directory that is not there", "{ includes: [../nowhere] }", /build\.includes\[0\]: "\.\.\/nowhere" is not a directory/],
  ])("refuses %s, naming the field", async (_, build, message) => {
    const dir = repo(build);
    const err = await buildRevision(directoryTree(dir), { manifestDir: "m", labels: {}, cacheDir: join(dir, ".cache") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestInvalidError);
    expect((err as ManifestInvalidError).issues.map((i) => `${i.file}:${i.line} ${i.field ?? ""} ${i.message}`).join("\n")).toMatch(message);
  });
});
