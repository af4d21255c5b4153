// Loads the native addon (native/build/Release/bpfops.node); the only module that requires it.
// When it is missing, the error says every place it looked and how to build it.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import type { NativeAddon } from "../../native/native.d.ts";
import { BpfopsError } from "../core/errors.ts";

const here = dirname(fileURLToPath(import.meta.url));
const candidates = [
  process.env.BPFOPS_NATIVE,
  resolve(here, "../../native/build/Release/bpfops.node"),
  resolve(here, "../../native/build/Debug/bpfops.node"),
].filter((p): p is string => !!p);

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (existsSync(path)) return require(path) as NativeAddon;
  }
  throw new BpfopsError(
    "NativeAddonMissing",
    `bpfops native addon not found; looked in:\n  ${candidates.join("\n  ")}\nbuild it with scripts/bootstrap (or npm run build:native)`,
  );
}

export const native: NativeAddon = load();
