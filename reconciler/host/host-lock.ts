// One reconcile at a time per bpffs root: an exclusive flock on a file under /run/bpfops, keyed
// by the root's identity (its bpffs device and inode, so every spelling of one root shares one
// lock), released by the kernel when the holder exits. Waiting never blocks the event loop.
import { constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeSync, ftruncateSync } from "node:fs";
import { createHash } from "node:crypto";
import { OwnedFd, tryFlock } from "../kernel/fd.ts";
import { ensureBpffsDir } from "../kernel/pins.ts";
import { BpfopsError } from "../core/errors.ts";

/** Where the locks live; BPFOPS_LOCK_DIR moves it (tests point it at a directory of their own). */
const lockDir = () => process.env.BPFOPS_LOCK_DIR ?? "/run/bpfops";

export interface HostLock {
  path: string;
  release(): void;
}

/** The canonical identity of a bpffs root: its real path and its (device, inode). */
export function canonicalRoot(root: string): { path: string; key: string } {
  ensureBpffsDir(root);
  const path = realpathSync(root);
  const st = statSync(path);
  return { path, key: createHash("sha256").update(`${st.dev}:${st.ino}`).digest("hex").slice(0, 16) };
}

/** /run/bpfops must be a real directory of root's, writable by nobody else: a symlink or a file there is refused. */
function checkLockDir(): void {
  try {
    mkdirSync(lockDir(), { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new BpfopsError("LockUnavailable", `cannot create the lock directory ${lockDir()}: ${(e as Error).message}`, { cause: e });
  }
  const st = lstatSync(lockDir());
  if (st.isSymbolicLink() || !st.isDirectory()) throw new BpfopsError("LockUnavailable", `${lockDir()} is ${st.isSymbolicLink() ? "a symlink" : "not a directory"}; bpfops keeps its locks in a directory of its own there: remove it`);
  if (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new BpfopsError("LockUnavailable", `${lockDir()} is owned by uid ${st.uid} with mode ${(st.mode & 0o777).toString(8)}; it must be bpfops's own (uid ${process.getuid?.()}) and writable by nobody else`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the reconcile lock for a bpffs root. With wait, polls until the holder is done (calling
 * onWait once with the holder's pid); without, throws LockHeld naming the holder's pid.
 */
export async function acquireHostLock(root: string, opts: { wait: boolean; signal?: AbortSignal; onWait?: (holder: string) => void }): Promise<HostLock> {
  checkLockDir();
  const { path: canonical, key } = canonicalRoot(root);
  const path = `${lockDir()}/reconcile-${key}.lock`;
  let told = false;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const fd = new OwnedFd(openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600), `lock ${path}`);
    try {
      if (tryFlock(fd)) {
        // The holder before us may have removed the file after we opened it: lock the file that is there.
        let current: number | null = null;
        try {
          current = lstatSync(path).ino;
        } catch {
          current = null;
        }
        if (current === fstatSync(fd.fd).ino) {
          ftruncateSync(fd.fd, 0);
          writeSync(fd.fd, `${process.pid} ${canonical}\n`);
          return {
            path,
            release: () => {
              // Unlink while still holding the lock, so lock files do not accumulate and no one waits on a removed file unknowingly.
              try {
                unlinkSync(path);
              } catch {
                // already gone
              }
              fd.close();
            },
          };
        }
        fd.close();
        continue;
      }
      const holder = readHolder(path);
      fd.close();
      if (!opts.wait) throw new BpfopsError("LockHeld", `another reconcile of ${canonical} is running (pid ${holder}); lock ${path}`, { errorClass: "Waiting" });
      if (!told) opts.onWait?.(holder);
      told = true;
      opts.signal?.throwIfAborted();
      await sleep(delay);
    } catch (e) {
      fd.close();
      throw e;
    }
  }
}

function readHolder(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split(" ")[0] || "unknown";
  } catch {
    return "unknown";
  }
}

