// Parses manifest files (YAML, several documents each) into schema-checked manifests that remember
// where each field came from, collecting every problem instead of stopping at the first. Pure.
import { isMap, LineCounter, parseAllDocuments, type Document } from "yaml";
import type { z } from "zod";
import { API_VERSION, KINDS, type KindName, type Manifest } from "../../schemas/manifest.ts";
import { fieldPath, type ManifestIssue, type IssueCode } from "./manifest-issues.ts";

export const LIMITS = {
  fileBytes: 1 << 20,
  files: 10_000,
  documentsPerFile: 500,
  /** alias expansions per document: an alias bomb blows up long before this matters to real files */
  aliases: 100,
};

/** A manifest with the means to say where any of its fields was written. */
export interface LocatedManifest {
  manifest: Manifest;
  file: string;
  /** kind/name, e.g. Program/pod-filter */
  id: string;
  locate(path: ReadonlyArray<string | number>): { line: number; column: number };
}

export interface ParseResult {
  manifests: LocatedManifest[];
  issues: ManifestIssue[];
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

export function parseManifestFile(file: string, bytes: Uint8Array): ParseResult {
  const issues: ManifestIssue[] = [];
  const fail = (code: IssueCode, message: string, line = 1, column = 1): ParseResult => ({ manifests: [], issues: [{ code, file, line, column, message }] });
  if (bytes.length > LIMITS.fileBytes) return fail("FileTooLarge", `file has ${bytes.length} bytes; manifests are limited to ${LIMITS.fileBytes}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("NotText", "not UTF-8 text (a binary file?)");
  }
  const ctl = CONTROL.exec(text);
  if (ctl) {
    const before = text.slice(0, ctl.index);
    const line = before.split("\n").length;
    return fail("NotText", `control character U+${ctl[0].charCodeAt(0).toString(16).padStart(4, "0")} in the file`, line, ctl.index - before.lastIndexOf("\n"));
  }
  if (text.trim() === "" || text.split("\n").every((l) => l.trim() === "" || l.trim().startsWith("#") || l.trim() === "---")) {
    return fail("EmptyManifest", "the file holds no manifest");
  }
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const docList: Document.Parsed[] = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) return fail("YamlSyntax", "a YAML stream that is not a list of documents");
  if (docList.length > LIMITS.documentsPerFile) return fail("TooManyDocuments", `${docList.length} documents; a file may hold ${LIMITS.documentsPerFile}`);
  const pos = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const manifests: LocatedManifest[] = [];
  for (const doc of docList) {
    if (doc.errors.length) {
      for (const e of doc.errors) issues.push({ code: "YamlSyntax", file, ...pos(e.pos[0]), message: e.message.split("\n")[0]! });
      continue;
    }
    if (doc.contents === null) continue; // an empty document between separators
    const docStart = pos(doc.range[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: LIMITS.aliases });
    } catch (e) {
      issues.push({ code: "AliasLimit", file, ...docStart, message: `${(e as Error).message} (at most ${LIMITS.aliases} alias expansions)` });
      continue;
    }
    const locate = (path: ReadonlyArray<string | number>) => {
      // The deepest node that exists on the path: a missing field is reported at its parent.
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node && typeof node === "object" && node.range) return pos(node.range[0]);
      }
      return docStart;
    };
    if (!isMap(doc.contents) || typeof value !== "object" || value === null || Array.isArray(value)) {
      issues.push({ code: "SchemaViolation", file, ...docStart, message: "a manifest must be a mapping with apiVersion, kind, metadata and spec" });
      continue;
    }
    const obj = value as Record<string, unknown>;
    const kind = obj.kind;
    const rawName = (obj.metadata as Record<string, unknown> | undefined)?.name;
    const label = `${typeof kind === "string" ? kind : "?"}/${typeof rawName === "string" ? rawName : "?"}`;
    if (obj.apiVersion !== API_VERSION) {
      issues.push({ code: "UnsupportedApiVersion", file, ...locate(["apiVersion"]), manifest: label, field: "apiVersion", message: `expected "${API_VERSION}", got ${JSON.stringify(obj.apiVersion ?? null)}` });
      continue;
    }
    if (typeof kind !== "string" || !(kind in KINDS)) {
      issues.push({ code: "UnknownKind", file, ...locate(["kind"]), manifest: label, field: "kind", message: `expected one of ${Object.keys(KINDS).join(", ")}, got ${JSON.stringify(kind ?? null)}` });
      continue;
    }
    const schema = KINDS[kind as KindName] as z.ZodType<Manifest>;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      for (const iss of parsed.error.issues) {
        const path = iss.path.filter((p): p is string | number => typeof p !== "symbol");
        issues.push({ code: "SchemaViolation", file, ...locate(path), manifest: label, field: fieldPath(path) || undefined, message: describeZodIssue(iss) } as ManifestIssue);
      }
      continue;
    }
    manifests.push({ manifest: parsed.data, file, id: `${kind}/${parsed.data.metadata.name}`, locate });
  }
  return { manifests, issues: issues.map(dropUndefined) };
}

/**
 * Manifests parsed and checked before from these same bytes (a fleet bundle's, by the controller),
 * in the file's order: the YAML is parsed again only if a field's place is asked for (an error).
 */
export function locatedFromParsed(file: string, manifests: Manifest[], bytes: Uint8Array): LocatedManifest[] {
  let again: LocatedManifest[] | undefined;
  return manifests.map((manifest, i) => ({
    manifest,
    file,
    id: `${manifest.kind}/${manifest.metadata.name}`,
    locate: (path) => (again ??= parseManifestFile(file, bytes).manifests)[i]?.locate(path) ?? { line: 1, column: 1 },
  }));
}

function dropUndefined(i: ManifestIssue): ManifestIssue {
  return Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)) as unknown as ManifestIssue;
}

function describeZodIssue(iss: z.core.$ZodIssue): string {
  switch (iss.code) {
    case "unrecognized_keys":
      return `unknown field${iss.keys.length > 1 ? "s" : ""} ${iss.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    case "invalid_type":
      return `expected ${iss.expected}${"input" in iss && iss.input === undefined ? " (missing)" : ""}`;
    default:
      return iss.message;
  }
}
