#!/usr/bin/env node
// The package build: bundles the TypeScript sources into plain JavaScript under dist/ with
// esbuild (dist/bpfops.cjs, the CLI; dist/traffic-worker.js, the demo's traffic process).
import { build } from "esbuild";
import { rmSync } from "node:fs";

const root = new URL("..", import.meta.url);

// zod's namespace export carries every locale (half of zod's bytes, and so of the bundle's parse
// time at start-up). bpfops speaks English: `z.locales` is English only in the bundle.
const englishOnly = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes("/node_modules/zod/") ? { path: "zod-locales", namespace: "zod-english-only", pluginData: args.resolveDir } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-english-only" }, (args) => ({
      contents: 'export { default as en } from "../locales/en.js";',
      resolveDir: args.pluginData,
      loader: "js",
    }));
  },
};

// Minified (names kept: errors are told apart by their class names): a smaller file is read,
// parsed and code-cached faster at every start.
const common = { absWorkingDir: root.pathname, bundle: true, platform: "node", target: "node20", minify: true, keepNames: true, legalComments: "linked", logLevel: "warning" };

rmSync(new URL("dist", root), { recursive: true, force: true });
await build({
  ...common,
  entryPoints: ["reconciler/cli/main.ts"],
  outfile: "dist/bpfops.cjs",
  // Start-up is mostly module loading and compiling: one file, and CommonJS because V8 can cache
  // the compiled code of a script (bin/code-cache.cjs) but Node 20 cannot for an ES module.
  format: "cjs",
  // import.meta.resolve is only called on the sources (to find tsx), never in the bundle.
  define: { "import.meta.url": "__bpfopsModuleUrl", "import.meta.resolve": "undefined" },
  banner: { js: 'const __bpfopsModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // Libraries only some commands need stay dependencies, required when those run: isomorphic-git
  // (git sources), openpgp (--verify-commits), and the agent's prom-client, pino and chokidar.
  // Parsing them at every start would cost every command. Commands' own modules load lazily
  // inside the bundle.
  external: ["isomorphic-git", "isomorphic-git/*", "openpgp", "sshpk", "etcd3", "prom-client", "pino", "chokidar"],
  supported: { "dynamic-import": false },
  plugins: [englishOnly],
});
await build({
  ...common,
  entryPoints: ["reconciler/lab/traffic-worker.ts"],
  outfile: "dist/traffic-worker.js",
  format: "esm",
});
await import("./write-build-info.mjs");
