// A Map's entries kept in a data file of the repository (`entriesFile:`), for sets too large to
// write as YAML (a 100k-prefix blocklist parses in milliseconds as JSON Lines, in seconds as
// YAML): one entry per line, `{"key": K, "value": V}` with K and V written as in `entries:`.
// Blank lines and lines starting with # are skipped. Pure: text in, entries and issues out.
import type { ManifestIssue } from "./manifest-issues.ts";

export const ENTRIES_FILE_LIMITS = { bytes: 64 << 20, entries: 1 << 20 };

export interface RawEntry {
  /** absent for maps of values only (queue, stack, bloom filter) */
  key?: unknown;
  value: unknown;
}

/** Entries of a file, each with the line it is on. */
export interface EntriesFile {
  file: string;
  entries: RawEntry[];
  lines: number[];
}

export function parseEntriesFile(file: string, bytes: Uint8Array): { parsed: EntriesFile; issues: ManifestIssue[] } {
  const parsed: EntriesFile = { file, entries: [], lines: [] };
  const issues: ManifestIssue[] = [];
  const issue = (line: number, message: string, field?: string) => issues.push({ code: "EntriesFile", file, line, column: 1, ...(field ? { field } : {}), message });
  if (bytes.length > ENTRIES_FILE_LIMITS.bytes) {
    issue(1, `file has ${bytes.length} bytes; an entries file is limited to ${ENTRIES_FILE_LIMITS.bytes}`);
    return { parsed, issues };
  }
  const text = Buffer.from(bytes).toString("utf8");
  let n = 0;
  for (const raw of text.split("\n")) {
    n++;
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (parsed.entries.length >= ENTRIES_FILE_LIMITS.entries) {
      issue(n, `more than ${ENTRIES_FILE_LIMITS.entries} entries`);
      break;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      issue(n, `not JSON: ${(e as Error).message}`);
      if (issues.length >= 20) break;
      continue;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v) || !("value" in v) || Object.keys(v).some((k) => k !== "key" && k !== "value")) {
      issue(n, 'each line is one entry: {"key": ..., "value": ...}');
      if (issues.length >= 20) break;
      continue;
    }
    parsed.entries.push("key" in v ? { key: (v as RawEntry).key, value: (v as RawEntry).value } : { value: (v as RawEntry).value });
    parsed.lines.push(n);
  }
  return { parsed, issues };
}
