// objectIdentity: bytes that change what the kernel runs change the identity; debug and line
// information do not. Table over the sections of a real object, one byte flipped at a time.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { objectIdentity } from "../../reconciler/core/object-identity.ts";
import { elfSections } from "../../reconciler/core/elf.ts";

const OBJ = readFileSync(new URL("../../bpf/tcx_counter.o", import.meta.url));

function flipIn(section: string, at = 0.5): Buffer {
  const s = elfSections(OBJ).find((x) => x.name === section);
  if (!s) throw new Error(`no ${section} in the object (it has ${elfSections(OBJ).map((x) => x.name).join(", ")})`);
  const copy = Buffer.from(OBJ);
  const off = s.offset + Math.floor(s.size * at);
  copy[off] = copy[off]! ^ 0xff;
  return copy;
}

describe("objectIdentity", () => {
  const base = objectIdentity(OBJ);
  it.each([
    ["tc", true],
    [".maps", true],
    [".rodata", true],
    ["license", true],
    [".debug_line", false],
    [".debug_str", false],
    [".debug_info", false],
  ])("a byte changed in %s changes the identity: %s", (section, changes) => {
    expect(objectIdentity(flipIn(section)) !== base).toBe(changes);
  });

  it("is stable, and falls back to the file's digest for what is not an ELF object", () => {
    expect(objectIdentity(Buffer.from(OBJ))).toBe(base);
    expect(objectIdentity(Buffer.from("not an object"))).toMatch(/^[0-9a-f]{64}$/);
  });
});
