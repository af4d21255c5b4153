// Runs the bundled CLI (dist/bpfops.cjs) with V8's code cache, so that a command compiles its
// JavaScript once rather than at every start (most of a short command's time otherwise).
"use strict";
// Node 20 has no module.enableCompileCache (22.1+), and v8-compile-cache takes the cache before
// the script runs, which leaves out every function compiled lazily while it runs: measured on a
// cached dry-run, 175 ms with that against 150 ms with the cache taken at exit, as here.
const { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } = require("node:fs");
const { createHash } = require("node:crypto");
const Module = require("node:module");
const { homedir } = require("node:os");
const { dirname, join } = require("node:path");
const vm = require("node:vm");

const COMMANDS = new Set(["demo", "reconcile", "status", "doctor", "features", "completion", "map", "events", "agent", "rollback", "suspend", "resume", "rollout", "controller"]);

/** A directory only this user can write: V8 trusts a cache it accepts, so another user's file would be their code. */
function cacheDir(bundle) {
  const uid = process.getuid();
  const owned = (dir) => {
    try {
      const st = statSync(dir);
      return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
    } catch {
      return false;
    }
  };
  const beside = dirname(bundle);
  if (owned(beside)) return beside;
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "bpfops");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  return owned(dir) ? dir : undefined;
}

function readOwned(path) {
  let fd;
  try {
    fd = openSync(path, "r");
    const st = fstatSync(fd);
    if (st.uid !== process.getuid() || (st.mode & 0o022) !== 0) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The libraries the bundle leaves out (etcd3 and gRPC, isomorphic-git, pino: see scripts/build.mjs)
 * are compiled from node_modules at every start as well: a fleet command spent half its start-up
 * on etcd3's. Their code is cached the same way, a file per module, taken at exit.
 */
function cacheModules(dir, tag) {
  const modules = join(dir, `.code-cache-modules-${tag}`);
  try {
    mkdirSync(modules, { recursive: true, mode: 0o700 });
  } catch {
    return;
  }
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    // (a shebang is only valid at the very start of a script, not inside Module.wrap's function)
    if (!filename.includes("/node_modules/") || content.startsWith("#!")) return compile.call(this, content, filename);
    let file;
    try {
      const st = statSync(filename);
      file = join(modules, createHash("sha256").update(`${filename}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 32));
    } catch {
      return compile.call(this, content, filename);
    }
    let script;
    try {
      script = compileCached(content, filename, file);
    } catch {
      return compile.call(this, content, filename); // Node's own compile reports it as Node does
    }
    const mod = this;
    const require = (id) => mod.require(id);
    require.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
    require.main = process.mainModule;
    require.extensions = Module._extensions;
    require.cache = Module._cache;
    return script.runInThisContext({ displayErrors: true }).call(mod.exports, mod.exports, require, mod, filename, dirname(filename));
  };
}

/** Scripts compiled without a usable cache, with the file each one's cache is written to at exit. */
const fresh = [];

/**
 * source as a CommonJS module's wrapper, compiled with V8's code cache from file when there is
 * one; without it (or when V8 rejects it), the cache is written to file at exit, with what ran lazily.
 */
function compileCached(source, filename, file) {
  const cachedData = file && readOwned(file);
  const script = new vm.Script(Module.wrap(source), { filename, ...(cachedData ? { cachedData } : {}) });
  if (file && (!cachedData || script.cachedDataRejected)) {
    if (!fresh.length) process.once("exit", writeFresh);
    fresh.push([file, script]);
  }
  return script;
}

/** Writes the code cache of each script compiled without one (at exit). */
function writeFresh() {
  for (const [file, script] of fresh) {
    try {
      const tmp = `${file}.${process.pid}`;
      writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // A cache that cannot be written costs time, nothing else.
    }
  }
}

exports.run = function run(bundle) {
  const source = readFileSync(bundle, "utf8");
  const dir = process.env.BPFOPS_NO_CODE_CACHE ? undefined : cacheDir(bundle);
  // One cache per command: each holds the functions its command compiled.
  const command = process.argv.slice(2).find((a) => !a.startsWith("-"));
  const st = statSync(bundle);
  const key = `${COMMANDS.has(command) ? command : "other"}-${process.version}-${process.arch}-${st.size}-${Math.floor(st.mtimeMs)}`;
  if (dir) cacheModules(dir, `${process.version}-${process.arch}`);
  const script = compileCached(source, bundle, dir && join(dir, `.code-cache-${key}`));
  const mod = new Module(bundle, module);
  mod.filename = bundle;
  mod.paths = Module._nodeModulePaths(dirname(bundle));
  script.runInThisContext()(mod.exports, Module.createRequire(bundle), mod, bundle, dirname(bundle));
};
