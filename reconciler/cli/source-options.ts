// The options that say where a revision comes from and which host it is for, shared by the
// commands that read manifests (reconcile, doctor --path, agent, controller): --path | --repo/--ref, --labels, --cache, git credentials.
import { resolve } from "node:path";
import { tmpdir } from "node:os";
import { accessSync, constants, readFileSync } from "node:fs";
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

/** Credentials for an http(s) repository, from a file: "user:password", or a token alone. */
export function readGitAuth(file: string): { username: string; password: string } {
  const text = readFileSync(file, "utf8").trim();
  const i = text.indexOf(":");
  return i > 0 ? { username: text.slice(0, i), password: text.slice(i + 1) } : { username: "x-access-token", password: text };
}
