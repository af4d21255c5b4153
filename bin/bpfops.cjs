#!/usr/bin/env node
// The bpfops command. An installed package runs the bundled JavaScript dist/bpfops.cjs (with V8's
// code cache, see code-cache.cjs); a checkout (where the TypeScript sources are) runs them through
// tsx. CommonJS: an ES module entry would cost every command the ESM loader's start-up.
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");

const sources = join(__dirname, "../reconciler/cli/main.ts");
if (existsSync(sources)) {
  import("tsx/esm/api").then(({ register }) => {
    register();
    return import(pathToFileURL(sources).href);
  });
} else {
  require("./code-cache.cjs").run(join(__dirname, "../dist/bpfops.cjs"));
}
