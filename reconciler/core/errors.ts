// The error classes every layer of bpfops throws: a stable `code`, a class that decides what
// happens next (Stalled: a person must act; Waiting: retry with backoff), and structured data.

export type ErrorClass = "Stalled" | "Waiting";

/** Where a user caused an error: the manifest file, position and field. */
export interface SourceLocation {
  file?: string;
  line?: number;
  column?: number;
  manifest?: string;
  field?: string;
}

export class BpfopsError extends Error {
  readonly code: string;
  readonly errorClass: ErrorClass;
  readonly location?: SourceLocation;

  constructor(code: string, message: string, opts: { errorClass?: ErrorClass; location?: SourceLocation; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.errorClass = opts.errorClass ?? "Stalled";
    if (opts.location) this.location = opts.location;
  }
}

/** The feature this kernel lacks, and the kernel version that first has it. */
export class NotSupportedError extends BpfopsError {
  readonly feature: string;
  constructor(feature: string, detail: string, opts: { minKernel?: string; cause?: unknown } = {}) {
    super("NotSupported", `${feature} is not supported by this kernel${opts.minKernel ? ` (needs ${opts.minKernel}+)` : ""}: ${detail}`, { cause: opts.cause });
    this.feature = feature;
  }
}
