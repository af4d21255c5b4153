// The installable package: `npm pack`, then `npm install -g` into a temporary prefix (the native
// addon is built at install time), then the installed `bpfops` works from another directory:
// --version, features, and a dry-run of a small repository.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { BPF, needs, tempPinRoot } from "./harness.ts";
import { HDR } from "./repos.ts";

describe("the package", () => {
  it("packs, installs with npm install -g into a fresh prefix, and runs from any directory", (ctx) => {
    needs(ctx);
    const work = mkdtempSync(join(tmpdir(), "bpfops-pkg-"));
    onTestFinished(() => rmSync(work, { recursive: true, force: true }));
    const npm = (args: string[], cwd: string) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const out = npm(["pack", "--pack-destination", work], process.cwd()).trim().split("\n").pop()!;
    const tarball = join(work, out);
    const prefix = join(work, "prefix");
    npm(["install", "-g", "--prefix", prefix, tarball], work);
    const bin = join(prefix, "bin/bpfops");
    const elsewhere = join(work, "elsewhere");
    mkdirSync(elsewhere);
    const run = (...args: string[]) => spawnSync(bin, args, { cwd: elsewhere, encoding: "utf8", env: { ...process.env, PATH: `${join(prefix, "bin")}:${process.env.PATH}` } });

    const version = run("--version");
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^bpfops \d+\.\d+\.\d+ \(commit [0-9a-f]{12}\)\nlibbpf \d+\.\d+\nkernel /);
    // The installed package runs compiled JavaScript, with no TypeScript loader.
    const installed = join(prefix, "lib/node_modules/bpfops");
    expect(readdirSync(installed).sort()).toEqual(expect.arrayContaining(["bin", "deploy", "dist", "native", "bpf", "manifests"]));
    expect(readdirSync(join(installed, "node_modules")).includes("tsx")).toBe(false);

    const features = run("features", "--output", "json");
    expect(features.status, features.stderr).toBe(0);
    const probed = JSON.parse(features.stdout) as { features: Array<{ feature: string }>; attachPaths: Array<{ hook: string; path: string }> };
    expect(probed.features.map((f) => f.feature)).toContain("tcx");
    expect(probed.attachPaths.find((p) => p.hook === "tcx")?.path).toMatch(/tcx link/);

    const repo = join(work, "repo");
    mkdirSync(repo);
    copyFileSync(BPF("tcx_counter.o"), join(repo, "counter.o"));
    writeFileSync(join(repo, "m.yaml"), `${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: counter.o, program: tcx_counter }\n`);
    const dry = run("reconcile", "--dry-run", "--path", repo, "--bpffs", tempPinRoot(), "--cache", join(work, "cache"));
    expect(dry.stderr).toBe("");
    expect(dry.status).toBe(1);
    expect(dry.stdout).toMatch(/\+ Program\/counter\s+load/);

    // The same manifests from a git commit: isomorphic-git is not in the bundle but a dependency
    // the installed package requires when a git source is read.
    const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, stdio: "ignore" });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("commit", "-q", "-m", "counter");
    const gitRoot = tempPinRoot();
    const fromGit = run("reconcile", "--dry-run", "--repo", repo, "--ref", "main", "--bpffs", gitRoot, "--cache", join(work, "cache"));
    expect(fromGit.stderr).toBe("");
    expect(fromGit.status).toBe(1);
    expect(fromGit.stdout).toMatch(/main@sha1:[0-9a-f]{40}|\+ Program\/counter\s+load/);
    // A second run of a command compiles nothing anew: V8's code cache, per command, beside the bundle.
    expect(readdirSync(join(installed, "dist")).filter((f) => f.startsWith(".code-cache-reconcile-"))).toHaveLength(1);
    // And so are the libraries the bundle requires from node_modules (isomorphic-git here), and
    // a command run with them cached gives the same answer.
    const modules = join(installed, "dist", `.code-cache-modules-${process.version}-${process.arch}`);
    expect(readdirSync(modules).length).toBeGreaterThan(0);
    const again = run("reconcile", "--dry-run", "--repo", repo, "--ref", "main", "--bpffs", gitRoot, "--cache", join(work, "cache"));
    expect([again.stderr, again.status, again.stdout]).toEqual([fromGit.stderr, fromGit.status, fromGit.stdout]);
  }, 600_000);
});
