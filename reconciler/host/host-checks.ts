// What `bpfops doctor` checks on a host, like `flux check --pre`: the kernel and its BTF, the
// filesystems bpfops needs mounted, the capabilities this process holds against what each command
// needs, memlock, the toolchain, and every feature probe with the attach path each hook type uses.
// Each failed check says the command that fixes it.
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { spawnSync } from "node:child_process";
import { isBpffs } from "../kernel/pins.ts";
import { probeFeature, type FeatureName } from "../kernel/features.ts";
import { native } from "../kernel/native.ts";
import { CAP, effectiveCapabilities, holdsCapability } from "../kernel/capabilities.ts";

export interface Check {
  name: string;
  status: "ok" | "warning" | "missing";
  detail: string;
  /** the command (or step) that fixes it */
  fix?: string;
  /** what needs it */
  neededBy?: string;
}

const CAPABILITIES: Array<{ bit: number; name: string; neededBy: string }> = [
  { bit: CAP.BPF, name: "CAP_BPF", neededBy: "loading programs and creating maps (reconcile, --verify, status)" },
  { bit: CAP.NET_ADMIN, name: "CAP_NET_ADMIN", neededBy: "attaching XDP and tcx programs, cgroup skb programs" },
  { bit: CAP.PERFMON, name: "CAP_PERFMON", neededBy: "tracepoint programs and reading kernel memory from programs" },
  { bit: CAP.SYS_ADMIN, name: "CAP_SYS_ADMIN", neededBy: "entering network namespaces (setns) for hooks in a netns, and BPF on kernels before 5.8" },
];

function toolVersion(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  return r.status === 0 ? (r.stdout || r.stderr).split("\n")[0]!.trim() : null;
}

function mounted(fstype: string): string | null {
  const line = readFileSync("/proc/mounts", "utf8").split("\n").find((l) => l.split(" ")[2] === fstype);
  return line ? line.split(" ")[1]! : null;
}

/** The attach path a hook type takes on this host, from the probes (none: every kernel bpfops runs on has it). */
const ATTACH_PATHS: Array<{ hook: string; feature?: FeatureName; path: string; otherwise: string }> = [
  { hook: "xdp", feature: "xdpLink", path: "BPF link, swapped with BPF_LINK_UPDATE", otherwise: "netlink XDP, swapped with XDP_FLAGS_REPLACE (no XDP links here)" },
  { hook: "tcx", feature: "tcx", path: "tcx link, swapped with BPF_LINK_UPDATE", otherwise: "TC clsact + cls_bpf, swapped with NLM_F_REPLACE (no tcx links here)" },
  { hook: "cgroup", feature: "cgroupLinkUpdate", path: "cgroup link, swapped with BPF_LINK_UPDATE", otherwise: "BPF_PROG_ATTACH, swapped with BPF_F_REPLACE (no cgroup links here)" },
  { hook: "tracepoint", feature: "tracefs", path: "perf-event link, make-before-break", otherwise: "blocked: tracefs is not mounted" },
  { hook: "raw_tracepoint", path: "raw tracepoint link, make-before-break", otherwise: "" },
  { hook: "tp_btf", feature: "btf", path: "tracing link, make-before-break", otherwise: "blocked: no kernel BTF" },
  { hook: "netfilter", feature: "netfilterLink", path: "netfilter link, make-before-break", otherwise: "blocked" },
  { hook: "sk_lookup/flow_dissector", path: "netns link, swapped with BPF_LINK_UPDATE", otherwise: "" },
  { hook: "perf_event", path: "perf-event link per CPU, make-before-break", otherwise: "" },
  { hook: "uprobe/uretprobe", feature: "uprobe", path: "perf-event link on the uprobe PMU, make-before-break", otherwise: "blocked" },
  { hook: "sk_msg/sk_skb", feature: "sockmapLink", path: "sockmap link, swapped with BPF_LINK_UPDATE (sockets added afterwards run the new program)", otherwise: "blocked: no sockmap links (kernel 6.10)" },
  { hook: "fentry/fexit", feature: "fentry", path: "blocked: bpfops does not attach fentry/fexit yet", otherwise: "blocked" },
  { hook: "kprobe", feature: "kprobe", path: "blocked: bpfops does not attach kprobes yet", otherwise: "blocked" },
  { hook: "lsm", feature: "lsm", path: "blocked: bpfops does not attach LSM programs yet", otherwise: "blocked" },
];

/** Each hook type's attach path on this host: what bpfops will use, or why it cannot attach there. */
export function attachPaths(): Array<{ hook: string; ok: boolean; path: string }> {
  return ATTACH_PATHS.map((a) => {
    if (!a.feature) return { hook: a.hook, ok: true, path: a.path };
    const s = probeFeature(a.feature);
    const path = s.status === "supported" ? a.path : s.status === "unknown" ? `could not tell without privileges (probe ${a.feature}: ${s.detail})` : `${a.otherwise} (probe ${a.feature}: ${s.detail})`;
    return { hook: a.hook, ok: s.status === "supported", path };
  });
}

export function runHostChecks(): Check[] {
  const checks: Check[] = [];
  const kernel = release();
  const [major = 0, minor = 0] = kernel.split(".").map((x) => parseInt(x, 10));
  checks.push({ name: "kernel", status: major > 5 || (major === 5 && minor >= 15) ? "ok" : "warning", detail: kernel, ...(major < 5 || (major === 5 && minor < 15) ? { fix: "bpfops is tested on 5.15 and later" } : {}) });
  checks.push(existsSync("/sys/kernel/btf/vmlinux") ? { name: "BTF", status: "ok", detail: "/sys/kernel/btf/vmlinux" } : { name: "BTF", status: "missing", detail: "no /sys/kernel/btf/vmlinux", fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y", neededBy: "CO-RE programs and .bpf.c builds (vmlinux.h)" });
  checks.push(isBpffs("/sys/fs/bpf") ? { name: "bpffs", status: "ok", detail: "mounted at /sys/fs/bpf" } : { name: "bpffs", status: "missing", detail: "/sys/fs/bpf is not a bpf filesystem", fix: "mount -t bpf bpf /sys/fs/bpf", neededBy: "every pin bpfops makes" });
  checks.push(existsSync("/sys/kernel/tracing/events") ? { name: "tracefs", status: "ok", detail: "mounted at /sys/kernel/tracing" } : { name: "tracefs", status: "warning", detail: "/sys/kernel/tracing is not mounted", fix: "mount -t tracefs tracefs /sys/kernel/tracing", neededBy: "tracepoint attachments" });
  const cg2 = mounted("cgroup2");
  checks.push(cg2 ? { name: "cgroup2", status: "ok", detail: `mounted at ${cg2}` } : { name: "cgroup2", status: "warning", detail: "no cgroup2 mount", fix: "mount -t cgroup2 none /sys/fs/cgroup (or a directory of your choice)", neededBy: "cgroup attachments" });
  const caps = effectiveCapabilities();
  for (const c of CAPABILITIES) {
    const held = holdsCapability(c.bit, caps);
    checks.push(held ? { name: c.name, status: "ok", detail: "held", neededBy: c.neededBy } : { name: c.name, status: "missing", detail: "not held by this process", neededBy: c.neededBy, fix: `run as root, or grant it: setcap ${c.name.toLowerCase()}+ep $(command -v node), or AmbientCapabilities=${c.name} in the systemd unit` });
  }
  const memlock = /^Max locked memory\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? "unknown";
  checks.push({ name: "memlock", status: "ok", detail: `${memlock} (kernels 5.11+ account BPF memory to the cgroup, not memlock)` });
  let libbpf = "unknown";
  try {
    libbpf = native.libbpfVersion();
  } catch {
    // reported as unknown
  }
  checks.push({ name: "libbpf", status: "ok", detail: libbpf });
  const clang = toolVersion("clang", ["--version"]);
  checks.push(clang ? { name: "clang", status: "ok", detail: clang } : { name: "clang", status: "warning", detail: "not found", fix: "apt install clang llvm", neededBy: ".bpf.c sources in manifests" });
  const bwrap = toolVersion("bwrap", ["--version"]);
  checks.push(bwrap ? { name: "bubblewrap", status: "ok", detail: bwrap } : { name: "bubblewrap", status: "warning", detail: "not found", fix: "apt install bubblewrap", neededBy: "hermetic .bpf.c builds" });
  const bpftool = toolVersion("bpftool", ["version"]);
  checks.push(bpftool ? { name: "bpftool", status: "ok", detail: bpftool } : { name: "bpftool", status: "warning", detail: "not found", fix: "apt install bpftool", neededBy: "vmlinux.h for .bpf.c sources" });
  for (const a of attachPaths()) checks.push({ name: `hook ${a.hook}`, status: a.ok ? "ok" : "warning", detail: a.path });
  return checks;
}
