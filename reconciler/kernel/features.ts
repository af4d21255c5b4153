// Feature probes, cached per process: each answers supported / unsupported / unknown by trying
// the real thing on a tiny program (in a private network namespace where a device is needed).
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { native } from "./native.ts";
import { AttachType, MapType, ProgType } from "../../schemas/kernel-names.ts";
import { NotSupportedError } from "../core/errors.ts";

export type FeatureName = "btf" | "xdpLink" | "xdpLinkUpdate" | "tcx" | "tcxLinkUpdate" | "cgroupLinkUpdate" | "fentry" | "lsm" | "kprobe" | "bpfStats" | "tracefs" | "netfilterLink" | "uprobe" | "sockmapLink";

export interface FeatureStatus {
  feature: FeatureName;
  status: "supported" | "unsupported" | "unknown";
  detail: string;
  minKernel: string;
}

const MIN_KERNEL: Record<FeatureName, string> = {
  btf: "5.4", xdpLink: "5.9", xdpLinkUpdate: "5.9", tcx: "6.6", tcxLinkUpdate: "6.6",
  cgroupLinkUpdate: "5.7", fentry: "5.5", lsm: "5.7", kprobe: "4.1", bpfStats: "5.8", tracefs: "4.1",
  netfilterLink: "6.4", uprobe: "4.17", sockmapLink: "6.10",
};

const cache = new Map<FeatureName, FeatureStatus>();

/**
 * Features hidden from bpfops by BPFOPS_HIDE_FEATURES (comma-separated names), for tests only: on
 * a new kernel they make bpfops take the attach paths of older ones (tcx -> TC cls_bpf, xdpLink ->
 * netlink XDP, cgroupLinkUpdate -> BPF_PROG_ATTACH).
 */
function hidden(feature: FeatureName): boolean {
  const env = process.env.BPFOPS_HIDE_FEATURES;
  return !!env && env.split(",").some((f) => f.trim() === feature);
}

export function probeFeature(feature: FeatureName): FeatureStatus {
  if (hidden(feature)) return { feature, status: "unsupported", detail: "hidden by BPFOPS_HIDE_FEATURES (a test override)", minKernel: MIN_KERNEL[feature] };
  let s = cache.get(feature);
  if (!s) {
    const [status, detail] = runProbe(feature);
    s = { feature, status, detail, minKernel: MIN_KERNEL[feature] };
    cache.set(feature, s);
  }
  return s;
}

export function isSupported(feature: FeatureName): boolean {
  return probeFeature(feature).status === "supported";
}

/** Throws NotSupportedError (with the minimum kernel) unless the feature is supported. */
export function requireFeature(feature: FeatureName): void {
  const s = probeFeature(feature);
  if (s.status !== "supported") throw new NotSupportedError(feature, s.detail, { minKernel: s.minKernel });
}

// --- probes -------------------------------------------------------------------------------

type Verdict = ["supported" | "unsupported" | "unknown", string];

function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8((src << 4) | dst, 1);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}
/** r0 = imm; exit */
function returnImm(imm: number): Buffer {
  return Buffer.concat([insn(0xb7, 0, 0, 0, imm), insn(0x95, 0, 0, 0, 0)]);
}

function errCode(e: unknown): string {
  return (e as { code?: string }).code ?? String(e);
}

/** Kernel answers that mean "this kernel cannot", as opposed to "this call was wrong". */
function isRefusal(e: unknown): boolean {
  return ["EINVAL", "EOPNOTSUPP", "ENOTSUP", "EPERM", "E524", "ENOTSUPP"].includes(errCode(e));
}

function withFds<T>(fn: (track: (fd: number) => number) => T): T {
  const fds: number[] = [];
  try {
    return fn((fd) => (fds.push(fd), fd));
  } finally {
    for (const fd of fds.reverse()) native.closeFd(fd);
  }
}

function probeInterfaceLink(kind: "xdp" | "tcx", update: boolean): Verdict {
  return withFds((track) => {
    const type = kind === "xdp" ? ProgType.xdp : ProgType.sched_cls;
    const ret = kind === "xdp" ? 2 /* XDP_PASS */ : -1; /* TCX_NEXT */
    const opts = { name: "bpfops_probe" };
    const p1 = track(native.loadRawProgram(type, returnImm(ret), opts));
    const p2 = track(native.loadRawProgram(type, returnImm(ret), opts));
    const ns = track(native.privateNetns());
    let link: number;
    try {
      link = track(kind === "xdp" ? native.attachXdp(p1, "lo", ns, 0).fd : native.attachTcx(p1, "lo", ns, "ingress").fd);
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `${kind} link create: ${errCode(e)}`];
      throw e;
    }
    if (!update) return ["supported", `${kind} link created on lo in a private netns`];
    try {
      native.linkUpdate(link, p2, p1);
      return ["supported", `${kind} link updated with BPF_F_REPLACE`];
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `${kind} link update: ${errCode(e)}`];
      throw e;
    }
  });
}

function cgroup2Mount(): string | null {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const parts = line.split(" ");
    const sep = parts.indexOf("-");
    if (sep > 0 && parts[sep + 1] === "cgroup2") return parts[4] ?? null;
  }
  return null;
}

function probeCgroupLinkUpdate(): Verdict {
  const mount = cgroup2Mount();
  if (!mount) return ["unknown", "no cgroup2 mount to probe on"];
  const dir = join(mount, `bpfops-probe-${process.pid}`);
  mkdirSync(dir);
  try {
    return withFds((track) => {
      const p1 = track(native.loadRawProgram(ProgType.cgroup_skb, returnImm(1), { expectedAttachType: AttachType.cgroup_inet_egress }));
      const p2 = track(native.loadRawProgram(ProgType.cgroup_skb, returnImm(1), { expectedAttachType: AttachType.cgroup_inet_egress }));
      const link = track(native.attachCgroup(p1, dir, AttachType.cgroup_inet_egress));
      try {
        native.linkUpdate(link, p2, p1);
        return ["supported", "cgroup link updated with BPF_F_REPLACE"];
      } catch (e) {
        if (isRefusal(e)) return ["unsupported", `cgroup link update: ${errCode(e)}`];
        throw e;
      }
    });
  } finally {
    rmdirSync(dir);
  }
}

function probeFentry(): Verdict {
  const target = native.vmlinuxBtfId("bpf_fentry_test1", "func");
  if (target < 0) return ["unknown", "bpf_fentry_test1 not in vmlinux BTF"];
  return withFds((track) => {
    try {
      track(native.loadRawProgram(ProgType.tracing, returnImm(0), { expectedAttachType: AttachType.trace_fentry, attachBtfId: target }));
      return ["supported", "fentry program loaded"];
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `fentry load: ${errCode(e)} (BPF trampolines refused)`];
      throw e;
    }
  });
}

function probeLsm(): Verdict {
  const target = native.vmlinuxBtfId("bpf_lsm_file_open", "func");
  if (target < 0) return ["unsupported", "bpf_lsm_file_open not in vmlinux BTF (CONFIG_BPF_LSM off)"];
  return withFds((track) => {
    try {
      track(native.loadRawProgram(ProgType.lsm, returnImm(0), { expectedAttachType: AttachType.lsm_mac, attachBtfId: target }));
      return ["supported", "LSM program loaded"];
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `LSM load: ${errCode(e)} (BPF trampolines refused)`];
      throw e;
    }
  });
}

/** Kprobes attach through the kprobe perf PMU, which a kernel built without CONFIG_KPROBES lacks. */
function probeKprobe(): Verdict {
  return existsSync("/sys/bus/event_source/devices/kprobe/type") ? ["supported", "kprobe PMU present"] : ["unsupported", "no kprobe PMU (/sys/bus/event_source/devices/kprobe): kprobes are compiled out (CONFIG_KPROBES off)"];
}

/** A netfilter link: a program returning NF_ACCEPT on ipv4 input, in a private network namespace. */
function probeNetfilterLink(): Verdict {
  return withFds((track) => {
    let prog: number;
    try {
      prog = track(native.loadRawProgram(ProgType.netfilter, returnImm(1), { expectedAttachType: AttachType.netfilter }));
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `netfilter program load: ${errCode(e)}`];
      throw e;
    }
    const ns = track(native.privateNetns());
    try {
      track(native.attachNetfilter(prog, ns, 2, 1, -128));
      return ["supported", "netfilter link made on ipv4 input in a private netns"];
    } catch (e) {
      if (isRefusal(e) || errCode(e) === "ENOENT") return ["unsupported", `netfilter link create: ${errCode(e)} (CONFIG_NETFILTER_BPF_LINK off?)`];
      throw e;
    }
  });
}

/** A sockmap link (kernel 6.10): an sk_msg program linked to a fresh sockmap. */
function probeSockmapLink(): Verdict {
  return withFds((track) => {
    const map = track(native.mapCreate(MapType.sockmap, 4, 4, 1, 0, "bpfops_probe"));
    const prog = track(native.loadRawProgram(ProgType.sk_msg, returnImm(1), { expectedAttachType: AttachType.sk_msg_verdict }));
    try {
      track(native.attachMap(prog, map, AttachType.sk_msg_verdict));
      return ["supported", "sk_msg program linked to a sockmap"];
    } catch (e) {
      if (isRefusal(e)) return ["unsupported", `sockmap link create: ${errCode(e)}`];
      throw e;
    }
  });
}

function runProbe(feature: FeatureName): Verdict {
  try {
    switch (feature) {
      case "btf":
        return existsSync("/sys/kernel/btf/vmlinux") ? ["supported", "/sys/kernel/btf/vmlinux present"] : ["unsupported", "/sys/kernel/btf/vmlinux missing"];
      case "tracefs":
        return existsSync("/sys/kernel/tracing/events") ? ["supported", "tracefs mounted at /sys/kernel/tracing"] : ["unsupported", "tracefs not mounted at /sys/kernel/tracing"];
      case "xdpLink":
        return probeInterfaceLink("xdp", false);
      case "xdpLinkUpdate":
        return probeInterfaceLink("xdp", true);
      case "tcx":
        return probeInterfaceLink("tcx", false);
      case "tcxLinkUpdate":
        return probeInterfaceLink("tcx", true);
      case "cgroupLinkUpdate":
        return probeCgroupLinkUpdate();
      case "fentry":
        return probeFentry();
      case "lsm":
        return probeLsm();
      case "kprobe":
        return probeKprobe();
      case "uprobe":
        return existsSync("/sys/bus/event_source/devices/uprobe/type") ? ["supported", "uprobe PMU present"] : ["unsupported", "no uprobe PMU (/sys/bus/event_source/devices/uprobe): CONFIG_UPROBES off"];
      case "netfilterLink":
        return probeNetfilterLink();
      case "sockmapLink":
        return probeSockmapLink();
      case "bpfStats":
        return withFds((track) => {
          try {
            track(native.enableStats());
            return ["supported", "BPF_ENABLE_STATS accepted"];
          } catch (e) {
            if (isRefusal(e)) return ["unsupported", `BPF_ENABLE_STATS: ${errCode(e)}`];
            throw e;
          }
        });
    }
  } catch (e) {
    return ["unknown", `probe failed: ${(e as Error).message}`];
  }
}
