#!/usr/bin/env node
// The bpfops command. An installed package runs the bundled JavaScript dist/bpfops.cjs (with V8's
// code cache, see code-cache.cjs); a checkout (where the TypeScript sources are) runs them through tsx.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const sources = new URL("../reconciler/cli/main.ts", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else {
  createRequire(import.meta.url)("./code-cache.cjs").run(fileURLToPath(new URL("../dist/bpfops.cjs", import.meta.url)));
}
