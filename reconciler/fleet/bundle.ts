// A revision built once for the whole fleet (make-bundle.ts): the manifests, the entries files and
// the object bytes (compiled .bpf.c included) that a host's build reads, with what the controller's
// build found in them, content-addressed by a digest, and its encoding. Agents apply a bundle as
// they would a commit, with no clang and no git server.
import { createHash } from "node:crypto";
import { BpfopsError } from "../core/errors.ts";
import type { Manifest } from "../../schemas/manifest.ts";
import type { InspectedFacts } from "../core/validate.ts";

export interface Bundle {
  /** "sha256:<hex>" of the encoding: the same manifests and objects give the same digest */
  digest: string;
  manifestDir: string;
  /** repository path -> bytes; a .bpf.c path holds its compiled object */
  files: Map<string, Buffer>;
  /** the .bpf.c paths whose bytes are compiled objects */
  prebuilt: Set<string>;
  /**
   * What the controller's build found, for hosts running the same bpfops (`by`, its codeIdentity:
   * version and sources): the manifests of each file as it parsed and checked them, and what
   * inspecting each object found (its identity, programs, maps and BTF types). Parsing YAML and
   * checking the schema was most of a host's build, and inspecting a new object most of the rest.
   * The files' YAML is still here, parsed again only to say where an error is. Another bpfops
   * parses and inspects itself: its schema may differ.
   */
  parsed?: { by: string; files: Record<string, Manifest[]>; objects?: Record<string, InspectedFacts> };
}

const MAGIC = "bpfops-bundle/1\n";

/** The canonical bytes: a JSON index (paths sorted) and the files' bytes in that order. */
export function encodeBundle(b: Omit<Bundle, "digest">): Buffer {
  const paths = [...b.files.keys()].sort();
  const index = { manifestDir: b.manifestDir, files: paths.map((p) => ({ path: p, size: b.files.get(p)!.length, ...(b.prebuilt.has(p) ? { prebuilt: true } : {}) })), ...(b.parsed ? { parsed: b.parsed } : {}) };
  return Buffer.concat([Buffer.from(MAGIC), Buffer.from(JSON.stringify(index) + "\n"), ...paths.map((p) => b.files.get(p)!)]);
}

export function bundleDigest(encoded: Buffer): string {
  return `sha256:${createHash("sha256").update(encoded).digest("hex")}`;
}

export function withDigest(b: Omit<Bundle, "digest">): Bundle {
  return { ...b, digest: bundleDigest(encodeBundle(b)) };
}

/** Reads a bundle's bytes, refusing any whose digest is not the one asked for. */
export function decodeBundle(encoded: Buffer, digest: string): Bundle {
  const actual = bundleDigest(encoded);
  if (actual !== digest) throw new BpfopsError("BundleDigestMismatch", `bundle ${digest}: the bytes fetched have digest ${actual}; refused`, { errorClass: "Waiting" });
  const bad = (why: string): never => {
    throw new BpfopsError("BundleUnreadable", `bundle ${digest}: ${why}`);
  };
  if (!encoded.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) bad("not a bpfops bundle");
  const nl = encoded.indexOf(10, MAGIC.length);
  if (nl < 0) bad("no index");
  const index = JSON.parse(encoded.subarray(MAGIC.length, nl).toString("utf8")) as { manifestDir: string; files: Array<{ path: string; size: number; prebuilt?: true }>; parsed?: Bundle["parsed"] };
  const files = new Map<string, Buffer>();
  const prebuilt = new Set<string>();
  let off = nl + 1;
  for (const f of index.files) {
    if (off + f.size > encoded.length) bad(`truncated at ${f.path}`);
    files.set(f.path, encoded.subarray(off, off + f.size));
    off += f.size;
    if (f.prebuilt) prebuilt.add(f.path);
  }
  if (off !== encoded.length) bad("trailing bytes after the last file");
  return { digest, manifestDir: index.manifestDir, files, prebuilt, ...(index.parsed ? { parsed: index.parsed } : {}) };
}
