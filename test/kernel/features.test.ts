// Feature probes on the real kernel: what this kernel (6.18 on these machines) must report.
import { describe, expect, it } from "vitest";
import { probeFeature, requireFeature } from "../../reconciler/kernel/features.ts";
import { NotSupportedError } from "../../reconciler/core/errors.ts";
import { needs } from "./harness.ts";

describe("feature probes", () => {
  it.for(["btf", "xdpLink", "xdpLinkUpdate", "tcx", "tcxLinkUpdate", "cgroupLinkUpdate", "bpfStats", "tracefs", "netfilterLink", "uprobe", "sockmapLink"] as const)(
    "%s is supported on a 6.10+ kernel",
    (f, ctx) => {
      needs(ctx);
      const s = probeFeature(f);
      expect(s, s.detail).toMatchObject({ feature: f, status: "supported" });
    },
  );

  it("fentry gets a definite answer, and requireFeature turns 'unsupported' into NotSupported", (ctx) => {
    needs(ctx);
    const s = probeFeature("fentry");
    expect(["supported", "unsupported"]).toContain(s.status);
    if (s.status === "unsupported") {
      expect(() => requireFeature("fentry")).toThrow(NotSupportedError);
      try {
        requireFeature("fentry");
      } catch (e) {
        expect((e as NotSupportedError).code).toBe("NotSupported");
        expect((e as Error).message).toMatch(/fentry is not supported by this kernel \(needs 5\.5\+\)/);
      }
    }
  });

  it("caches each answer", (ctx) => {
    needs(ctx);
    expect(probeFeature("tcx")).toBe(probeFeature("tcx"));
  });
});
