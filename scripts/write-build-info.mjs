#!/usr/bin/env node
// After the TypeScript build: records what the package was built from (version, git commit, and
// the digest of its sources, which decides whose fleet bundles it trusts) in dist/build-info.json,
// which `bpfops --version` prints. `node scripts/write-build-info.mjs FILE` writes FILE instead.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

const root = new URL("..", import.meta.url);
const out = process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] ? process.argv[2] : new URL("dist/build-info.json", root);
const { version } = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
let commit = null;
try {
  commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
} catch {
  // Not built from a git checkout: the version alone says what it is.
}
// The runtime's own function (through tsx), so that the build and a checkout compute the same digest.
register();
const { sourcesDigest } = await import("../reconciler/package-root.ts");
const sources = sourcesDigest(fileURLToPath(root));
writeFileSync(out, JSON.stringify({ version, commit, sources, builtAt: new Date().toISOString() }, null, 2) + "\n");
