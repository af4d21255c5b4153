// The revisions an agent applied, kept in the kernel state map as a note ("agent/history"), read by
// the agent at start and by `bpfops rollback`, which must not load the agent to read it.
import { readNote, writeNote } from "../host/provenance.ts";

// A note holds eight revisions in a state map value (511 bytes): commit ids fit as they are,
// fleet bundle digests ("sha256:" and 64 hex) only written as base64url ("s:" and 43).
const packRevision = (r: string) => (/^sha256:[0-9a-f]{64}$/.test(r) ? `s:${Buffer.from(r.slice(7), "hex").toString("base64url")}` : r);
const unpackRevision = (r: string) => (r.startsWith("s:") ? `sha256:${Buffer.from(r.slice(2), "base64url").toString("hex")}` : r);

/** The revisions this root's agent applied, newest first (the last eight). */
export function appliedHistory(root: string): string[] {
  return (readNote<{ h: string[] }>(root, "agent/history")?.h ?? []).map(unpackRevision);
}

/** Records the applied revisions, newest first; throws when the kernel state map cannot take it. */
export function writeHistory(root: string, history: string[]): void {
  writeNote(root, "agent/history", { h: history.map(packRevision) });
}
