// What is wrong with a set of manifests: one ManifestIssue per problem (file, line, column,
// document kind/name, field path, what was expected), gathered in one pass and thrown together.
import { BpfopsError } from "./errors.ts";

export type IssueCode =
  | "FileTooLarge" | "TooManyFiles" | "TooManyDocuments" | "NotText" | "EmptyManifest" | "YamlSyntax" | "AliasLimit"
  | "SchemaViolation" | "UnknownKind" | "UnsupportedApiVersion"
  | "DuplicateName" | "UnknownReference" | "WrongProgramType" | "ChainCycle" | "ChainStageType" | "PathEscape"
  | "ObjectMissing" | "ObjectNotElf" | "ObjectUnreadable" | "CompileFailed" | "ProgramNotInObject" | "GlobalNotInObject"
  | "GlobalSize" | "GlobalValue" | "MapNotInObject" | "MapBindingMismatch" | "EntrySize" | "TooManyEntries" | "MapTooLarge" | "WrongAttachType" | "NotSelected" | "EntryPolicy" | "EntriesFile" | "EntryType" | "MapDefinition"
  | "OrderNotSupported" | "OrderCycle" | "OrderMismatch" | "WrongMapType";

export interface ManifestIssue {
  code: IssueCode;
  file: string;
  line: number;
  column: number;
  /** "Program/pod-filter", when the document got that far */
  manifest?: string;
  /** dotted field path, e.g. spec.hook.interfaces[0] */
  field?: string;
  message: string;
}

export function formatIssue(i: ManifestIssue): string {
  const where = `${i.file}:${i.line}:${i.column}`;
  const what = [i.manifest, i.field].filter(Boolean).join(" ");
  return `${where}: ${what ? what + ": " : ""}${i.message} [${i.code}]`;
}

export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** Thrown when manifests cannot be used; carries every issue found, sorted by file and line. */
export class ManifestInvalidError extends BpfopsError {
  readonly issues: ManifestIssue[];
  constructor(issues: ManifestIssue[]) {
    const sorted = [...issues].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
    super("ManifestInvalid", `${sorted.length} problem${sorted.length === 1 ? "" : "s"} in the manifests:\n${sorted.map((i) => "  " + formatIssue(i)).join("\n")}`, {
      errorClass: "Stalled",
      location: sorted[0] ? { file: sorted[0].file, line: sorted[0].line, column: sorted[0].column, ...(sorted[0].field ? { field: sorted[0].field } : {}) } : {},
    });
    this.issues = sorted;
  }
}
