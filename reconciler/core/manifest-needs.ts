// What a repository of manifests needs of a host, for `bpfops doctor --path`: the doctor check
// (by name) each manifest depends on, from its hooks and objects. Pure: reads parsed manifests only.
import type { LocatedManifest } from "./parse-manifests.ts";
import type { Hook } from "../../schemas/manifest.ts";
import { selects } from "./desired.ts";

export interface Need {
  /** the doctor check this depends on (host/host-checks.ts names) */
  check: string;
  /** the manifest that needs it, and what for */
  by: string;
}

/** The checks a hook depends on: its attach path's probe, the filesystems, the capabilities. */
function hookNeeds(hook: Hook): string[] {
  switch (hook.type) {
    case "xdp":
    case "tcx":
      return [`hook ${hook.type}`, "CAP_BPF", "CAP_NET_ADMIN", ...(hook.netns ? ["CAP_SYS_ADMIN"] : [])];
    case "cgroup":
      return ["hook cgroup", "cgroup2", "CAP_BPF", "CAP_NET_ADMIN"];
    case "tracepoint":
      return ["hook tracepoint", "tracefs", "CAP_BPF", "CAP_PERFMON"];
    case "raw_tracepoint":
      return ["CAP_BPF", "CAP_PERFMON"];
    case "tp_btf":
      return ["BTF", "CAP_BPF", "CAP_PERFMON"];
    case "fentry":
    case "fexit":
      return ["hook fentry/fexit", "BTF", "CAP_BPF", "CAP_PERFMON"];
    case "kprobe":
    case "kretprobe":
      return ["hook kprobe", "CAP_BPF", "CAP_PERFMON"];
    case "lsm":
      return ["hook lsm", "BTF", "CAP_BPF", "CAP_SYS_ADMIN"];
    case "netfilter":
    case "sk_lookup":
    case "flow_dissector":
      return ["CAP_BPF", "CAP_NET_ADMIN", ...(hook.netns ? ["CAP_SYS_ADMIN"] : [])];
    case "uprobe":
    case "uretprobe":
      return ["CAP_BPF", "CAP_PERFMON"];
    case "sk_msg":
    case "sk_skb":
      return ["CAP_BPF", "CAP_NET_ADMIN"];
    case "perf_event":
      return ["CAP_BPF", "CAP_PERFMON"];
  }
}

/** The needs of the manifests this host (by its labels) selects. */
export function manifestNeeds(manifests: readonly LocatedManifest[], labels: Record<string, string> = {}): Need[] {
  const needs: Need[] = [];
  for (const m of manifests) {
    const spec = m.manifest.spec as { hook?: Hook; object?: string; hostSelector?: { matchLabels: Record<string, string> } };
    if (!selects(spec.hostSelector, labels)) continue;
    if ((m.manifest.kind === "Attachment" || m.manifest.kind === "Chain") && spec.hook) {
      for (const check of hookNeeds(spec.hook)) needs.push({ check, by: `${m.id} (${spec.hook.type} hook)` });
    }
    if (m.manifest.kind === "Program" && spec.object) {
      needs.push({ check: "CAP_BPF", by: `${m.id} (loading ${spec.object})` });
      if (spec.object.endsWith(".bpf.c")) {
        for (const check of ["clang", "bubblewrap", "bpftool", "BTF"]) needs.push({ check, by: `${m.id} (compiling ${spec.object})` });
      }
    }
    if (m.manifest.kind === "Map") needs.push({ check: "CAP_BPF", by: `${m.id} (creating the map)` });
  }
  return needs;
}
