// Typed kernel errors: the native addon's errno-carrying errors become KernelError (code is
// the errno name), or VerifierRejectedError when the verifier said no, with its log.
import { hasBpfCapability } from "./capabilities.ts";
import { BpfopsError, type ErrorClass } from "../core/errors.ts";
import type { NativeErrnoError } from "../../native/native.d.ts";

// Errors that go away by themselves (a device appears, a busy hook frees up): retry later.
const WAITING = new Set(["ENODEV", "ENXIO", "EBUSY", "EAGAIN", "EINTR"]);

export class KernelError extends BpfopsError {
  readonly errno: number;
  readonly syscall: string;
  /** the errno's name, as code is (kept apart for errors whose code is a class) */
  readonly errnoCode: string;

  constructor(message: string, errnoCode: string, errno: number, syscall: string, opts: { errorClass?: ErrorClass; cause?: unknown; code?: string } = {}) {
    super(opts.code ?? errnoCode, message, { errorClass: opts.errorClass ?? (WAITING.has(errnoCode) ? "Waiting" : "Stalled"), cause: opts.cause });
    this.errnoCode = errnoCode;
    this.errno = errno;
    this.syscall = syscall;
  }
}

export class VerifierRejectedError extends BpfopsError {
  readonly program: string;
  readonly errno: number;
  readonly errnoCode: string;
  readonly verifierLog: string;

  constructor(message: string, program: string, errnoCode: string, errno: number, verifierLog: string, cause?: unknown) {
    super("VerifierRejected", message, { errorClass: "Stalled", cause });
    this.program = program;
    this.errno = errno;
    this.errnoCode = errnoCode;
    this.verifierLog = verifierLog;
  }

  /** The last lines of the verifier log: where it gave up, and why. */
  logTail(lines = 20): string {
    return this.verifierLog.trimEnd().split("\n").slice(-lines).join("\n");
  }
}

function isNativeError(e: unknown): e is NativeErrnoError {
  return e instanceof Error && typeof (e as NativeErrnoError).errno === "number" && typeof (e as NativeErrnoError).code === "string";
}

/** Converts an error thrown by the addon into a typed error; other errors pass through. */
export function fromNative(e: unknown): unknown {
  if (!isNativeError(e)) return e;
  // EPERM at load is the kernel refusing the program type or the caller's privileges, not the
  // verifier judging the code (it says EACCES or EINVAL, with a log that explains).
  if ((e.program || e.syscall === "BPF_PROG_LOAD") && e.code === "EPERM") {
    const privileged = hasBpfCapability();
    const why = privileged ? "this kernel does not allow this program type (e.g. trampolines for fentry, fexit and LSM)" : "loading programs needs CAP_BPF (or CAP_SYS_ADMIN)";
    return new KernelError(`${e.message}: ${why}`, e.code, e.errno, e.syscall, { cause: e, code: privileged ? "NotSupported" : "PermissionDenied" });
  }
  if (e.program && e.verifierLog) {
    return new VerifierRejectedError(e.message, e.program, e.code, e.errno, e.verifierLog, e);
  }
  const why = e.libbpfLog?.trim() ? explainingLine(e.libbpfLog) : "";
  const detail = why ? `${e.message} (libbpf: ${why})` : e.message;
  return new KernelError(detail, e.code, e.errno, e.syscall, { cause: e });
}

/**
 * The line of libbpf's log that says why: the first one that is not a generic "failed to load"
 * summary (those repeat what the error already says), without libbpf's own prefix.
 */
export function explainingLine(log: string): string {
  const lines = log
    .split("\n")
    .map((l) => l.replace(/^(libbpf: )+/, "").trim())
    .filter(Boolean);
  return lines.find((l) => !/^failed to load (object|BPF skeleton)/.test(l)) ?? lines.at(-1) ?? "";
}

/** Runs a native call and rethrows its error typed. */
export function kernelCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}
