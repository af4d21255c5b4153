#!/usr/bin/env node
// npm's install step of the bpfops package: builds the native addon against the system libbpf
// and this Node's headers, unless it is already built. Says which Debian package is missing.
import { existsSync, realpathSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(root, "native/build/Release/bpfops.node");
if (existsSync(addon) && !process.env.BPFOPS_REBUILD_NATIVE) process.exit(0);

const missing = [];
if (!existsSync("/usr/include/bpf/libbpf.h")) missing.push("libbpf-dev (the libbpf headers and library)");
for (const [tool, pkg] of [["c++", "g++"], ["make", "make"], ["python3", "python3"], ["pkg-config", "pkg-config"]]) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(`${pkg} (${tool})`);
}
if (missing.length) {
  console.error(`bpfops: the native addon cannot be built; missing: ${missing.join(", ")}.\n  On Debian or Ubuntu: apt install libbpf-dev g++ make python3 pkg-config`);
  process.exit(1);
}
// node-gyp cannot download headers on every machine: point it at the ones installed with this Node.
const nodedir = dirname(dirname(realpathSync(process.execPath)));
const gyp = join(dirname(fileURLToPath(import.meta.resolve("node-gyp/package.json"))), "bin/node-gyp.js");
const args = [gyp, "rebuild", "--loglevel=warn", ...(existsSync(join(nodedir, "include/node/node_api.h")) ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { cwd: join(root, "native"), stdio: "inherit" });
process.exit(r.status ?? 1);
