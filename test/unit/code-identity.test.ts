// Which bpfops this is (package-root.ts codeIdentity), for trusting what another one found in a
// fleet bundle: the version and a digest of the sources, recorded by the build for an installed
// package. Tables of source trees; the build script run into a temporary file. No root.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { codeIdentity, packageRoot, packageVersion, sourcesDigest } from "../../reconciler/package-root.ts";

const dir = mkdtempSync(join(tmpdir(), "bpfops-code-identity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the digest of bpfops's sources", () => {
  const base = join(dir, "base");
  mkdirSync(join(base, "reconciler/core"), { recursive: true });
  mkdirSync(join(base, "schemas"), { recursive: true });
  writeFileSync(join(base, "reconciler/core/a.ts"), "export const a = 1;\n");
  writeFileSync(join(base, "schemas/manifest.ts"), "export const schema = {};\n");
  let n = 0;
  const variant = (change: (root: string) => void) => {
    const root = join(dir, `v${n++}`);
    cpSync(base, root, { recursive: true });
    change(root);
    return sourcesDigest(root);
  };

  it.each<[string, (root: string) => void, boolean]>([
    ["a copy of the same sources", () => undefined, true],
    ["a file that is not TypeScript added", (r) => writeFileSync(join(r, "reconciler/notes.md"), "x"), true],
    ["TypeScript outside reconciler/ and schemas/ added", (r) => writeFileSync(join(r, "bench.ts"), "x"), true],
    ["a byte of a schema changed", (r) => writeFileSync(join(r, "schemas/manifest.ts"), "export const schema = {} ;\n"), false],
    ["a source added", (r) => writeFileSync(join(r, "reconciler/core/b.ts"), ""), false],
    ["a source moved", (r) => renameSync(join(r, "reconciler/core/a.ts"), join(r, "reconciler/a.ts")), false],
  ])("%s: the same digest %s", (_, change, same) => {
    expect(variant(change) === sourcesDigest(base)).toBe(same);
  });

  it("a checkout's identity is its version and its sources' digest", () => {
    expect(codeIdentity()).toBe(`${packageVersion()}+${sourcesDigest()}`);
  });

  it("the build records the digest of the sources it was built from (an installed package has none to read)", () => {
    const out = join(dir, "build-info.json");
    execFileSync(process.execPath, [join(packageRoot(), "scripts/write-build-info.mjs"), out]);
    const info = JSON.parse(readFileSync(out, "utf8")) as { version: string; sources: string };
    expect(info).toMatchObject({ version: packageVersion(), sources: sourcesDigest() });
  });
});
