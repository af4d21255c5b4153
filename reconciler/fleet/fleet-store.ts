// The fleet's state in etcd, under /bpfops/<fleet>/: members (each agent under a lease), bundles
// (chunked under etcd's request limit), each host's target, each agent's status, and rollouts.
// Git stays the source of truth; etcd only coordinates.
import { readFileSync } from "node:fs";
import { Etcd3, type IOptions, type Lease, type Watcher } from "etcd3";
import { BpfopsError } from "../core/errors.ts";
import { decodeBundle, encodeBundle, type Bundle } from "./bundle.ts";
import type { Sample } from "./rollout-rings.ts";
import type { EntriesDelta } from "./entries-delta.ts";

/**
 * Bundles live in etcd, not on a controller's HTTP server: agents need no second endpoint, TLS
 * setup or reachable controller (any controller may be down or failing over while agents fetch),
 * and a bundle is kilobytes to a few megabytes. Chunks stay well under etcd's default 1.5 MiB
 * request limit.
 */
export const CHUNK_BYTES = 1 << 20;
/** Bundles kept besides the ones some host targets or applied; older ones are deleted. */
export const BUNDLES_KEPT = 8;

export interface EtcdOptions {
  endpoints: string[];
  /** client certificates (files): ca, and cert + key for mutual TLS */
  ca?: string;
  cert?: string;
  key?: string;
  /** a file holding "user:password" for etcd authentication */
  authFile?: string;
}

export interface Member {
  host: string;
  labels: Record<string, string>;
  kernel: string;
  /** feature probes: true, or the reason the kernel lacks it */
  features: Record<string, true | string>;
  since: string;
}

export interface Target {
  digest: string;
  /** what the bundle was built from, for people: main@sha1:<sha> */
  revision: string;
  rollout?: string;
  /** the bundle changes only Map entries of the one named: a host running that one applies these */
  entries?: EntriesDelta;
}

export interface HostStatus {
  host: string;
  ready: boolean;
  reason: string;
  message: string;
  lastAppliedRevision?: string;
  lastAttemptedRevision?: string;
  /** how long the last new revision took, fetch to enforced */
  applyMs?: number;
  /** the class of the last failure: Stalled (a person must act), Waiting, or Blocked (the kernel lacks a feature) */
  errorClass?: string;
  /** the revision the last failure was about */
  failedRevision?: string;
  /** figures the health gates read: declared map metrics, and program run statistics */
  metrics?: Sample[];
  at: string;
}

export interface BundleMeta {
  size: number;
  chunks: number;
  revision: string;
  createdAt: string;
}

/** The etcd flags every fleet command takes (agent, controller, rollout, fleet status). */
export interface EtcdFlags {
  etcd: string;
  fleet: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdAuthFile?: string;
}

/** The fleet's store from the command-line flags. */
export function openFleetStore(o: EtcdFlags): FleetStore {
  return new FleetStore(
    etcdClient({
      endpoints: o.etcd.split(",").map((e) => e.trim()),
      ...(o.etcdCa ? { ca: o.etcdCa } : {}),
      ...(o.etcdCert ? { cert: o.etcdCert } : {}),
      ...(o.etcdKey ? { key: o.etcdKey } : {}),
      ...(o.etcdAuthFile ? { authFile: o.etcdAuthFile } : {}),
    }),
    o.fleet,
  );
}

export function etcdClient(o: EtcdOptions): Etcd3 {
  const opts: IOptions = { hosts: o.endpoints, dialTimeout: 3000 };
  if (o.ca || o.cert || o.key) {
    if (!o.ca) throw new BpfopsError("InvalidArgument", "--etcd-ca: TLS to etcd needs the CA certificate");
    if (!!o.cert !== !!o.key) throw new BpfopsError("InvalidArgument", "--etcd-cert and --etcd-key go together");
    opts.credentials = { rootCertificate: readFileSync(o.ca), ...(o.cert ? { certChain: readFileSync(o.cert), privateKey: readFileSync(o.key!) } : {}) };
  }
  if (o.authFile) {
    const text = readFileSync(o.authFile, "utf8").trim();
    const at = text.indexOf(":");
    if (at < 1) throw new BpfopsError("InvalidArgument", `--etcd-auth-file ${o.authFile}: "user:password"`);
    opts.auth = { username: text.slice(0, at), password: text.slice(at + 1) };
  }
  return new Etcd3(opts);
}

export class FleetStore {
  readonly prefix: string;

  constructor(
    readonly client: Etcd3,
    readonly fleet: string,
  ) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(fleet)) throw new BpfopsError("InvalidArgument", `--fleet "${fleet}": lower-case letters, digits and dashes`);
    this.prefix = `/bpfops/${fleet}/`;
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join("/");
  }

  // JSON values: the controller's rollout state, and everything below.
  async putJson(key: string, value: unknown): Promise<void> {
    await this.client.put(key).value(JSON.stringify(value));
  }
  async getJson<T>(key: string): Promise<T | undefined> {
    const s = await this.client.get(key).string();
    return s === null ? undefined : (JSON.parse(s) as T);
  }
  /** Every value under dir/, by the rest of its key. */
  async allJson<T>(dir: string): Promise<Map<string, T>> {
    const all = await this.client.getAll().prefix(this.key(dir, "")).strings();
    return new Map(Object.entries(all).map(([k, v]) => [k.slice(this.key(dir, "").length), JSON.parse(v) as T]));
  }

  // Members

  /** Registers under a lease: the member disappears when the agent stops renewing it. */
  async register(m: Member, ttlSeconds = 10): Promise<Lease> {
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    await lease.put(this.key("members", m.host)).value(JSON.stringify(m));
    return lease;
  }
  members(): Promise<Map<string, Member>> {
    return this.allJson<Member>("members");
  }

  // Bundles

  /** Publishes a bundle's chunks, then its meta (the meta's presence says the bundle is whole). */
  async publishBundle(b: Bundle, revision: string): Promise<void> {
    if (await this.client.get(this.key("bundles", b.digest)).string()) return;
    const bytes = encodeBundle(b);
    const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
    for (let i = 0; i < chunks; i++) {
      await this.client.put(this.key("bundle-chunks", b.digest, String(i).padStart(6, "0"))).value(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
    }
    const meta: BundleMeta = { size: bytes.length, chunks, revision, createdAt: new Date().toISOString() };
    await this.client.put(this.key("bundles", b.digest)).value(JSON.stringify(meta));
  }

  /** Fetches a bundle by digest and checks its bytes against the digest. */
  async fetchBundle(digest: string): Promise<{ bundle: Bundle; meta: BundleMeta; bytes: Buffer }> {
    const meta = await this.getJson<BundleMeta>(this.key("bundles", digest));
    if (!meta) throw new BpfopsError("BundleMissing", `bundle ${digest} is not in etcd (fleet ${this.fleet})`, { errorClass: "Waiting" });
    const parts = await this.client.getAll().prefix(this.key("bundle-chunks", digest, "")).sort("Key", "Ascend").buffers();
    const chunks = Object.keys(parts).sort().map((k) => parts[k]!);
    if (chunks.length !== meta.chunks) throw new BpfopsError("BundleMissing", `bundle ${digest}: ${chunks.length} of ${meta.chunks} chunks in etcd`, { errorClass: "Waiting" });
    const bytes = Buffer.concat(chunks);
    return { bundle: decodeBundle(bytes, digest), meta, bytes };
  }

  async bundleMeta(digest: string): Promise<BundleMeta | undefined> {
    return this.getJson<BundleMeta>(this.key("bundles", digest));
  }

  /** Deletes bundles no host targets or last applied, beyond the newest BUNDLES_KEPT. */
  async collectBundles(): Promise<number> {
    const metas = await this.allJson<BundleMeta>("bundles");
    const used = new Set<string>();
    for (const t of (await this.targets()).values()) used.add(t.digest);
    for (const s of (await this.statuses()).values()) for (const r of [s.lastAppliedRevision, s.lastAttemptedRevision]) if (r) used.add(r);
    const old = [...metas.entries()].sort((a, b) => b[1].createdAt.localeCompare(a[1].createdAt)).slice(BUNDLES_KEPT).filter(([d]) => !used.has(d));
    for (const [d] of old) {
      await this.client.delete().key(this.key("bundles", d));
      await this.client.delete().prefix(this.key("bundle-chunks", d, ""));
    }
    return old.length;
  }

  // Targets and status

  async setTarget(host: string, t: Target): Promise<void> {
    await this.client.put(this.key("targets", host)).value(JSON.stringify(t));
  }
  target(host: string): Promise<Target | undefined> {
    return this.getJson<Target>(this.key("targets", host));
  }
  targets(): Promise<Map<string, Target>> {
    return this.allJson<Target>("targets");
  }
  /** Calls back with the host's target now and on every change (a watch, not a poll). */
  async watchTarget(host: string, onTarget: (t: Target | undefined) => void): Promise<Watcher> {
    const w = await this.client.watch().key(this.key("targets", host)).create();
    w.on("put", (kv) => onTarget(JSON.parse(kv.value.toString()) as Target));
    w.on("delete", () => onTarget(undefined));
    onTarget(await this.target(host));
    return w;
  }

  async writeStatus(s: HostStatus): Promise<void> {
    await this.client.put(this.key("status", s.host)).value(JSON.stringify(s));
  }
  statuses(): Promise<Map<string, HostStatus>> {
    return this.allJson<HostStatus>("status");
  }

  close(): void {
    this.client.close();
  }
}
