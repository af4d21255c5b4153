// `bpfops controller`: runs the fleet's rollout controller (fleet/controller.ts) until SIGTERM or
// SIGINT, logging JSON lines; apart from the other fleet commands, which need neither pino nor the build.
import pino from "pino";
import { BpfopsError } from "../core/errors.ts";
import { openFleetStore, type EtcdFlags } from "../fleet/fleet-store.ts";
import { Controller } from "../fleet/controller.ts";
import { defaultCacheDir, readGitAuth } from "./source-options.ts";

export async function runController(o: EtcdFlags & { repo: string; ref: string; path?: string; cache?: string; authFile?: string; verifyCommits?: string; allowUnsigned?: boolean; logLevel: string }): Promise<number> {
  const remote = /^https?:\/\//.test(o.repo);
  const verifier = o.verifyCommits ? await (await import("../agent/commit-verify.ts")).CommitVerifier.fromFile(o.verifyCommits) : undefined;
  if (remote && !verifier && !o.allowUnsigned) throw new BpfopsError("InvalidArgument", `rolling out ${o.repo} loads its code into every kernel of the fleet: without --verify-commits KEYRING, say --allow-unsigned`);
  const log = pino({ level: o.logLevel, base: { pid: process.pid } }, pino.destination(1));
  const store = openFleetStore(o);
  const auth = o.authFile ? readGitAuth(o.authFile) : undefined;
  const controller = new Controller({ store, repo: o.repo, ref: o.ref, ...(o.path ? { path: o.path } : {}), ...(auth ? { auth } : {}), cacheDir: o.cache ?? defaultCacheDir(), log, ...(verifier ? { verifier } : {}) });
  controller.start();
  log.info({ fleet: o.fleet, repo: o.repo, ref: o.ref, controller: controller.id }, "controller started: campaigning to lead");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await controller.stop();
  store.close();
  return 0;
}
