// How errors from the native addon become typed errors, and which class each errno gets.
import { describe, expect, it } from "vitest";
import { fromNative, KernelError, VerifierRejectedError } from "../../reconciler/kernel/errors.ts";

function nativeError(props: Record<string, unknown>): Error {
  return Object.assign(new Error(String(props.message ?? "x")), props);
}

describe("fromNative", () => {
  it.each([
    ["ENODEV", 19, "Waiting"],
    ["EBUSY", 16, "Waiting"],
    ["EPERM", 1, "Stalled"],
    ["EINVAL", 22, "Stalled"],
  ] as const)("%s is a KernelError classed %s", (code, errno, cls) => {
    const e = fromNative(nativeError({ message: "attach xdp eth0: boom", code, errno, syscall: "BPF_LINK_CREATE" })) as KernelError;
    expect(e).toBeInstanceOf(KernelError);
    expect(e).toMatchObject({ code, errno, syscall: "BPF_LINK_CREATE", errorClass: cls, message: "attach xdp eth0: boom" });
  });

  it("a failed load with a program log is VerifierRejected", () => {
    const log = "0: R1=ctx()\n1: invalid access to packet\nprocessed 2 insns\n";
    const e = fromNative(nativeError({ message: "load program p of o: verifier rejected it", code: "EACCES", errno: 13, syscall: "BPF_PROG_LOAD", program: "p", verifierLog: log })) as VerifierRejectedError;
    expect(e).toBeInstanceOf(VerifierRejectedError);
    expect(e).toMatchObject({ code: "VerifierRejected", program: "p", errnoCode: "EACCES", errno: 13, errorClass: "Stalled" });
    expect(e.logTail(2)).toBe("1: invalid access to packet\nprocessed 2 insns");
  });

  it.each([
    ["one line", "libbpf: map 'm': failed to create: Invalid argument(-22)\n", "map 'm': failed to create: Invalid argument(-22)"],
    [
      "the line that explains, not the generic summary after it",
      "libbpf: couldn't reuse pinned map at '/sys/fs/bpf/x/m': parameter mismatch\nlibbpf: map 'm': error reusing pinned map\nlibbpf: failed to load object 'o.o'\n",
      "couldn't reuse pinned map at '/sys/fs/bpf/x/m': parameter mismatch",
    ],
    ["a doubled prefix", "libbpf: libbpf: failed to load object 'o.o'\n", "failed to load object 'o.o'"],
  ])("adds libbpf's explaining message to other load failures: %s", (_, log, why) => {
    const e = fromNative(nativeError({ message: "load object o: Invalid argument", code: "EINVAL", errno: 22, syscall: "BPF_PROG_LOAD", libbpfLog: log })) as KernelError;
    expect(e.message).toBe(`load object o: Invalid argument (libbpf: ${why})`);
  });

  it("an EPERM at load is the kernel refusing the program type (as root), never a verifier rejection", () => {
    const e = fromNative(nativeError({ message: "load program f of o: Operation not permitted", code: "EPERM", errno: 1, syscall: "BPF_PROG_LOAD", program: "f", verifierLog: "some log" })) as KernelError;
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(process.getuid?.() === 0 ? "NotSupported" : "PermissionDenied");
    expect(e.message).toMatch(/Operation not permitted: /);
  });

  it("passes through errors that did not come from the kernel", () => {
    const plain = new TypeError("not native");
    expect(fromNative(plain)).toBe(plain);
  });
});
