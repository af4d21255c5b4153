// Loads the native addon (native/build/Release/bpfops.node); the only module that requires it.
// When it is missing, the error says every place it looked and how to build it.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { packageRoot } from "../package-root.ts";
import type { NativeAddon } from "../../native/native.d.ts";
import { BpfopsError } from "../core/errors.ts";

const candidates = [
  process.env.BPFOPS_NATIVE,
  resolve(packageRoot(), "native/build/Release/bpfops.node"),
  resolve(packageRoot(), "native/build/Debug/bpfops.node"),
].filter((p): p is string => !!p);

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (existsSync(path)) return require(path) as NativeAddon;
  }
  throw new BpfopsError(
    "NativeAddonMissing",
    `bpfops native addon not found; looked in:\n  ${candidates.join("\n  ")}\nbuild it with scripts/bootstrap in a checkout, or reinstall the package (npm install -g bpfops builds it; it needs libbpf-dev and a C++ compiler)`,
  );
}

export const native: NativeAddon = load();
