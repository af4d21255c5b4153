// The options that say where a revision comes from and which host it is for, shared by the
// commands that read manifests (reconcile, doctor --path): --path | --repo/--ref, --labels, --cache.
import { resolve } from "node:path";
import { tmpdir } from "node:os";
import { accessSync, constants } from "node:fs";
import type { RevisionSource } from "../agent/reconcile-once.ts";
import { BpfopsError } from "../core/errors.ts";

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? "").split(",").filter(Boolean)) {
    const [k, v, ...rest] = part.split("=");
    if (!k?.trim() || v === undefined || rest.length || !/^[A-Za-z0-9._/-]+$/.test(k.trim()) || !/^[A-Za-z0-9._-]*$/.test(v.trim())) {
      throw new BpfopsError("InvalidArgument", `--labels: "${part}" is not key=value (letters, digits, '.', '_', '-')`);
    }
    out[k.trim()] = v.trim();
  }
  return out;
}

export function defaultCacheDir(): string {
  try {
    accessSync("/var/cache", constants.W_OK);
    return "/var/cache/bpfops";
  } catch {
    return resolve(tmpdir(), "bpfops-cache");
  }
}

/** --path or --repo: one of them is required (never the current directory by default). */
export function sourceOf(opts: { path?: string; repo?: string; ref?: string }): RevisionSource {
  if (opts.repo) return { kind: "git", repo: opts.repo, ref: opts.ref ?? "HEAD", ...(opts.path ? { path: opts.path } : {}) };
  if (opts.ref && opts.ref !== "HEAD") throw new BpfopsError("InvalidArgument", "--ref needs --repo");
  if (!opts.path) throw new BpfopsError("InvalidArgument", "say where the manifests are: --path DIR (a directory) or --repo URL|PATH [--ref REF] [--path DIR-IN-REPO]");
  return { kind: "directory", path: opts.path };
}
