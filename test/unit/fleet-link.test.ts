// An agent's bundles on disk (fleet/fleet-link.ts): fetched once and kept, so that a host builds
// with etcd away, and pruned to the newest few, never the target's or the one its entries apply
// to. A store that hands out bundles stands in for etcd. No root, no etcd.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeBundle, withDigest, type Bundle } from "../../reconciler/fleet/bundle.ts";
import { BUNDLES_ON_DISK, FleetLink } from "../../reconciler/fleet/fleet-link.ts";
import type { FleetStore } from "../../reconciler/fleet/fleet-store.ts";
import type { AgentLog } from "../../reconciler/agent/agent.ts";

const dir = mkdtempSync(join(tmpdir(), "bpfops-fleet-link-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("an agent's bundles on disk", () => {
  const bundles = Array.from({ length: BUNDLES_ON_DISK + 4 }, (_, i) => withDigest({ manifestDir: `fleet-${i}`, files: new Map(), prebuilt: new Set() }));
  const byDigest = new Map<string, Bundle>(bundles.map((b) => [b.digest, b]));
  let fetched = 0;
  const store = {
    fleet: "t",
    fetchBundle: async (d: string) => {
      fetched++;
      const bundle = byDigest.get(d)!;
      return { bundle, bytes: encodeBundle(bundle), meta: { size: 0, chunks: 1, revision: "r", createdAt: "" } };
    },
  } as unknown as FleetStore;
  const log = { warn: () => undefined, info: () => undefined, error: () => undefined } as unknown as AgentLog;
  const link = new FleetLink(store, "h0", {}, dir, log, () => undefined);
  const onDisk = () => readdirSync(join(dir, "fleet", "t", "bundles")).sort();
  const hex = (b: Bundle) => b.digest.slice("sha256:".length);

  it("keeps the newest ones, and the target's and the one its entries apply to however old", async () => {
    const [target, from, ...rest] = bundles as [Bundle, Bundle, ...Bundle[]];
    link.target = { digest: target.digest, revision: "r", entries: { from: from.digest, maps: {} } };
    for (const b of bundles) {
      await link.bundle(b.digest);
      // (apart in time: kept by age)
      await sleep(5);
    }
    expect(fetched).toBe(bundles.length);
    expect(onDisk()).toEqual([target, from, ...rest.slice(-BUNDLES_ON_DISK)].map(hex).sort());
    expect(link.hasBundle(target.digest)).toBe(true);
    expect(link.hasBundle(rest[0]!.digest)).toBe(false);
  });

  it("a bundle on disk is read from disk, not fetched again", async () => {
    const before = fetched;
    const b = await link.bundle(bundles.at(-1)!.digest);
    expect(b.manifestDir).toBe(`fleet-${bundles.length - 1}`);
    expect(fetched).toBe(before);
  });
});
