#!/usr/bin/env node
// After the TypeScript build: records what the package was built from (version, git commit) in
// dist/build-info.json, which `bpfops --version` prints.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
let commit = null;
try {
  commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: new URL("..", import.meta.url), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
} catch {
  // Not built from a git checkout: the version alone says what it is.
}
writeFileSync(new URL("../dist/build-info.json", import.meta.url), JSON.stringify({ version, commit, builtAt: new Date().toISOString() }, null, 2) + "\n");
