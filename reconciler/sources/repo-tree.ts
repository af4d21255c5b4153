// Read-only views of a manifests repository: a directory on disk, or one commit of a git
// repository read with isomorphic-git. Paths are repository-relative and POSIX; nothing outside
// the repository can be reached, through '..' or through symlinks. Git trees are read lazily:
// only the trees under the manifests directory and the blobs asked for are ever read, so files
// elsewhere in a large repository cost nothing.
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import * as fs from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { posix } from "node:path";
import type { Manifest } from "../../schemas/manifest.ts";
import type { InspectedFacts } from "../core/validate.ts";
// isomorphic-git is loaded only when a git source is read: a directory source never pays for it.
const loadGit = async () => ({ git: (await import("isomorphic-git")).default, http: (await import("isomorphic-git/http/node")).default });

export interface RepoTree {
  /** where it came from, for messages: a directory, or url@ref */
  describe: string;
  /** the commit, for trees read from git */
  revision?: string;
  /** every file under dir (repository-relative), sorted */
  listFiles(dir: string): Promise<string[]>;
  /** whether dir is a directory of the repository ("." is its top) */
  hasDir(dir: string): Promise<boolean>;
  /** a file's bytes; null if there is no such file */
  read(path: string): Promise<Buffer | null>;
  /** why path is not a plain file inside the repository (symlink out, escape), or null */
  whyOutside(path: string): Promise<string | null>;
  /** a .bpf.c source's object compiled already (a fleet bundle's), or null: compile it */
  prebuilt?(path: string): Buffer | null;
  /** a manifest file's manifests parsed and checked already (a fleet bundle's), or null: parse it */
  parsedManifests?(file: string): Manifest[] | null;
  /** what inspecting an object found already (a fleet bundle's), or null: inspect it */
  objectFacts?(path: string): InspectedFacts | null;
}

/** Normalizes a repository-relative path; null when it climbs out of the repository. */
export function repoPath(path: string): string | null {
  if (path.startsWith("/")) return null;
  const n = posix.normalize(path);
  return n === ".." || n.startsWith("../") ? null : n.replace(/^\.\//, "");
}

export function directoryTree(root: string): RepoTree {
  const abs = realpathSync(resolve(root));
  const inside = (p: string) => p === abs || p.startsWith(abs + sep);
  return {
    describe: abs,
    async listFiles(dir) {
      const out: string[] = [];
      const walk = (d: string) => {
        for (const name of readdirSync(d).sort()) {
          if (name === ".git" || name === "node_modules") continue;
          const p = join(d, name);
          const st = lstatSync(p);
          if (st.isDirectory()) walk(p);
          else if (st.isFile() || st.isSymbolicLink()) out.push(relative(abs, p).split(sep).join("/"));
        }
      };
      walk(join(abs, dir));
      return out;
    },
    async hasDir(dir) {
      const p = join(abs, dir);
      try {
        return (p === abs || p.startsWith(abs + sep)) && statSync(p).isDirectory();
      } catch {
        return false;
      }
    },
    async read(path) {
      try {
        return statSync(join(abs, path)).isFile() ? readFileSync(join(abs, path)) : null;
      } catch {
        return null;
      }
    },
    async whyOutside(path) {
      try {
        const real = realpathSync(join(abs, path));
        return inside(real) ? null : `resolves (through a symlink) to ${real}, outside the repository ${abs}`;
      } catch {
        return null; // missing files are reported as missing, not as escapes
      }
    },
  };
}

/**
 * One commit of a git repository: a local repository is read in place; a remote one (http/https)
 * is fetched (one branch, shallow) into cacheDir first. Trees and blobs are read when asked for.
 */
export async function gitTree(url: string, ref: string, cacheDir: string, opts: GitAccess & { /** read this commit (fetched with ref) rather than ref's head */ commit?: string } = {}): Promise<RepoTree> {
  const { git, http } = await loadGit();
  let dir: string;
  let fetched: string | undefined;
  if (isRemote(url)) {
    dir = join(cacheDir, url.replace(/[^A-Za-z0-9]+/g, "_"));
    const gitdir = join(dir, ".git");
    const onAuth = opts.auth ? () => opts.auth! : undefined;
    // A commit fetched before (the last applied one, healed after a bad head) is read without fetching.
    if (!opts.commit || !(await hasCommit(dir, opts.commit))) {
      if (!fs.existsSync(gitdir)) await git.clone({ fs, http, dir, url, ref, singleBranch: true, depth: 1, noCheckout: true, ...(onAuth ? { onAuth } : {}) });
      // (a fetch moves the remote-tracking ref, not the local branch the clone made: its head is what it fetched)
      else fetched = (await git.fetch({ fs, http, dir, url, ref, singleBranch: true, depth: 1, ...(onAuth ? { onAuth } : {}) })).fetchHead ?? undefined;
    }
  } else {
    dir = resolve(url.replace(/^file:\/\//, ""));
  }
  const oid = await resolveCommit(dir, opts.commit ?? fetched ?? ref);
  const cache = {};
  // Tree entries by directory ("" is the top), read once each.
  const trees = new Map<string, Promise<Map<string, { oid: string; type: string; mode: string }> | null>>();
  const treeAt = (sub: string) => {
    const key = sub === "." ? "" : sub.replace(/\/$/, "");
    let t = trees.get(key);
    if (!t) {
      t = git
        .readTree({ fs, dir, oid, ...(key ? { filepath: key } : {}), cache })
        .then((r) => new Map(r.tree.map((e) => [e.path, { oid: e.oid, type: e.type, mode: e.mode }])))
        .catch(() => null);
      trees.set(key, t);
    }
    return t;
  };
  const entryOf = async (path: string) => (await treeAt(posix.dirname(path) === "." ? "" : posix.dirname(path)))?.get(posix.basename(path)) ?? null;
  return {
    describe: `${url}@${ref}`,
    revision: oid,
    async listFiles(sub) {
      const out: string[] = [];
      const walk = async (d: string) => {
        const t = await treeAt(d);
        for (const [name, e] of t ?? []) {
          const p = d ? `${d}/${name}` : name;
          if (e.type === "tree") await walk(p);
          else if (e.type === "blob") out.push(p);
        }
      };
      await walk(sub === "." ? "" : sub.replace(/\/$/, ""));
      return out.sort();
    },
    async hasDir(sub) {
      return (await treeAt(sub)) !== null;
    },
    async read(path) {
      const e = await entryOf(path);
      if (!e || e.type !== "blob" || e.mode === "120000") return null; // symlinks: never followed out of a commit
      const { blob } = await git.readBlob({ fs, dir, oid: e.oid, cache });
      return Buffer.from(blob);
    },
    async whyOutside(path) {
      return (await entryOf(path))?.mode === "120000" ? "is a symlink; symlinks in a commit are not followed" : null;
    },
  };
}

/** Credentials for a remote repository (read from a file by the caller, never from the command line). */
export interface GitAccess {
  auth?: { username: string; password: string };
}

const isRemote = (url: string) => /^https?:\/\//.test(url);

async function hasCommit(dir: string, oid: string): Promise<boolean> {
  const { git } = await loadGit();
  try {
    await git.readCommit({ fs, dir, oid });
    return true;
  } catch {
    return false;
  }
}

/**
 * The commit a ref names now, without fetching anything: the remote's refs (ls-refs) for a remote
 * repository, the ref itself for a local one. Cheap enough to ask at every poll.
 */
export async function headOf(url: string, ref: string, opts: GitAccess = {}): Promise<string> {
  const { git, http } = await loadGit();
  if (!isRemote(url)) return resolveCommit(resolve(url.replace(/^file:\/\//, "")), ref);
  const refs = await git.listServerRefs({ http, url, prefix: ref.startsWith("refs/") ? ref : `refs/heads/${ref}`, ...(opts.auth ? { onAuth: () => opts.auth! } : {}) });
  const want = ref.startsWith("refs/") ? ref : `refs/heads/${ref}`;
  const hit = refs.find((r) => r.ref === want) ?? refs.find((r) => r.ref === `refs/tags/${ref}`);
  if (!hit) throw new Error(`${url} has no ref ${ref}`);
  return hit.oid;
}

async function resolveCommit(dir: string, ref: string): Promise<string> {
  const { git } = await loadGit();
  for (const candidate of [ref, `refs/heads/${ref}`, `refs/tags/${ref}`, `refs/remotes/origin/${ref}`]) {
    try {
      return await git.resolveRef({ fs, dir, ref: candidate });
    } catch {
      // try the next form
    }
  }
  if (/^[0-9a-f]{4,40}$/.test(ref)) return git.expandOid({ fs, dir, oid: ref });
  throw new Error(`git ref "${ref}" not found in ${dir}`);
}

/** The top of the git work tree holding dir, or null. */
export async function gitTopLevel(dir: string): Promise<string | null> {
  for (let d = resolve(dir); ; d = resolve(d, "..")) {
    if (fs.existsSync(join(d, ".git"))) return d;
    if (resolve(d, "..") === d) return null;
  }
}

/**
 * A commit's signature and the text it signs (the commit object without its gpgsig header), or
 * null for an unsigned commit. The commit must be in the repository already (gitTree fetched it).
 */
export async function commitSignature(url: string, oid: string, cacheDir: string): Promise<{ signature: string; payload: string } | null> {
  const { git } = await loadGit();
  const dir = isRemote(url) ? join(cacheDir, url.replace(/[^A-Za-z0-9]+/g, "_")) : resolve(url.replace(/^file:\/\//, ""));
  const { commit } = await git.readCommit({ fs, dir, oid });
  if (!commit.gpgsig) return null;
  // The payload as git makes it: the object with the gpgsig header and its continuation lines
  // taken out. (isomorphic-git's own payload cuts at an OpenPGP armor's end, so an SSH
  // signature's payload would keep the signature in it.)
  const { object } = await git.readObject({ fs, dir, oid, format: "content" });
  const text = Buffer.from(object as Uint8Array).toString("utf8");
  const end = text.indexOf("\n\n");
  const headers = (end < 0 ? text : text.slice(0, end)).split("\n");
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i++) {
    if (!headers[i]!.startsWith("gpgsig ")) kept.push(headers[i]!);
    else while (headers[i + 1]?.startsWith(" ")) i++;
  }
  return { signature: commit.gpgsig, payload: kept.join("\n") + (end < 0 ? "" : text.slice(end)) };
}
