#!/usr/bin/env node
// The bpfops command. An installed package runs the compiled JavaScript under dist/; a checkout
// (where the TypeScript sources are) runs them through tsx, a development dependency.
import { existsSync } from "node:fs";

const sources = new URL("../reconciler/cli/main.ts", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else {
  await import("../dist/reconciler/cli/main.js");
}
