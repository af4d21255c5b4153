// One reconcile at a time per bpffs root: an exclusive flock on a file under /run/bpfops, which
// the kernel releases when the holder exits (or is killed). The file names the holder's pid.
import { mkdirSync, openSync, readFileSync, writeSync, ftruncateSync } from "node:fs";
import { createHash } from "node:crypto";
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { BpfopsError } from "../core/errors.ts";

export interface HostLock {
  path: string;
  release(): void;
}

export function lockPathFor(root: string): string {
  return `/run/bpfops/reconcile-${createHash("sha256").update(root).digest("hex").slice(0, 16)}.lock`;
}

/**
 * Takes the reconcile lock for a bpffs root. With wait, blocks until the holder is done;
 * without, throws LockHeld naming the holder's pid.
 */
export function acquireHostLock(root: string, opts: { wait: boolean }): HostLock {
  const path = lockPathFor(root);
  mkdirSync("/run/bpfops", { recursive: true });
  const fd = new OwnedFd(openSync(path, "a+"), `lock ${path}`);
  try {
    if (!kernelCall(() => native.flock(fd.fd, true, false))) {
      const holder = readFileSync(path, "utf8").trim() || "unknown";
      if (!opts.wait) throw new BpfopsError("LockHeld", `another reconcile of ${root} is running (pid ${holder}); lock ${path}`, { errorClass: "Waiting" });
      process.stderr.write(`bpfops: waiting for the reconcile of ${root} held by pid ${holder}\n`);
      kernelCall(() => native.flock(fd.fd, true, true));
    }
    ftruncateSync(fd.fd, 0);
    writeSync(fd.fd, `${process.pid}\n`);
  } catch (e) {
    fd.close();
    throw e;
  }
  return { path, release: () => fd.close() };
}
