// `bpfops doctor [--path DIR | --repo URL]`: checks this host for what bpfops needs (see
// host/host-checks.ts) and prints each check with the command that fixes it. Given manifests, a
// check that any of them needs (a hook's attach path, a tool for .bpf.c builds, a capability) is
// required. Exit 0 when nothing required is missing, 1 otherwise.
import { runHostChecks, type Check } from "../host/host-checks.ts";
import { manifestNeeds } from "../core/manifest-needs.ts";
import { ManifestInvalidError } from "../core/manifest-issues.ts";

export interface DoctorOptions {
  output: "text" | "json";
  path?: string;
  repo?: string;
  ref?: string;
  labels?: string;
  cache?: string;
}

/** What the manifests need, joined to the host's checks: a needed check that is not ok is missing. */
async function withManifestNeeds(checks: Check[], opts: DoctorOptions): Promise<Check[]> {
  const { sourceOf, parseLabels, defaultCacheDir } = await import("./source-options.ts");
  const { fetchRevision } = await import("../agent/reconcile-once.ts");
  const { readManifests } = await import("../agent/build.ts");
  const { tree, manifestDir } = await fetchRevision(sourceOf(opts), opts.cache ?? defaultCacheDir());
  const { manifests, issues } = await readManifests(tree, manifestDir);
  if (issues.length) throw new ManifestInvalidError(issues);
  const byCheck = new Map<string, string[]>();
  for (const n of manifestNeeds(manifests, parseLabels(opts.labels))) byCheck.set(n.check, [...(byCheck.get(n.check) ?? []), n.by]);
  return checks.map((c) => {
    const by = byCheck.get(c.name);
    if (!by) return c;
    // A hook type bpfops cannot attach yet is as missing as one the kernel lacks.
    const required = c.status !== "ok" || c.detail.startsWith("blocked");
    return { ...c, status: required ? "missing" : c.status, neededBy: [...new Set(by)].join(", ") };
  });
}

export async function runDoctor(opts: DoctorOptions): Promise<number> {
  let checks = runHostChecks();
  if (opts.path || opts.repo) checks = await withManifestNeeds(checks, opts);
  const missing = checks.filter((c) => c.status === "missing");
  if (opts.output === "json") {
    console.log(JSON.stringify({ ok: missing.length === 0, checks }, null, 2));
    return missing.length ? 1 : 0;
  }
  const mark = { ok: "ok  ", warning: "warn", missing: "FAIL" } as const;
  for (const c of checks) {
    console.log(`${mark[c.status]}  ${c.name.padEnd(18)} ${c.detail}`);
    if (c.status !== "ok" && c.neededBy) console.log(`${" ".repeat(25)}needed for: ${c.neededBy}`);
    if (c.status !== "ok" && c.fix) console.log(`${" ".repeat(25)}fix: ${c.fix}`);
  }
  console.log(missing.length ? `${missing.length} check(s) failed: ${missing.map((c) => c.name).join(", ")}` : "all required checks passed");
  return missing.length ? 1 : 0;
}
