// OwnedFd: the one owner of a kernel file descriptor. close() releases it; an fd whose owner is
// garbage-collected unclosed is closed by the finalizer, so handles never leak descriptors.
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";

const finalizer = new FinalizationRegistry<number>((fd) => {
  try {
    native.closeFd(fd);
  } catch {
    // Already gone: nothing else can own this number, since only OwnedFd closes fds.
  }
});

export class OwnedFd {
  #fd: number;
  readonly what: string;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.what = what;
    finalizer.register(this, fd, this);
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.what}: used after close`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** A second, independently owned descriptor for the same kernel object. */
  dup(): OwnedFd {
    return new OwnedFd(kernelCall(() => native.dupFd(this.fd)), this.what);
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    finalizer.unregister(this);
    native.closeFd(fd);
  }
}

/** flock(2) on an owned fd without blocking: true when the lock was taken, false when another holds it. */
export function tryFlock(fd: OwnedFd, exclusive = true): boolean {
  return kernelCall(() => native.flock(fd.fd, exclusive, false));
}
