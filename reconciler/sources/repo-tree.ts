// Read-only views of a manifests repository: a directory on disk, or one commit of a git
// repository read with isomorphic-git. Paths are repository-relative and POSIX; nothing outside
// the repository can be reached, through '..' or through symlinks.
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import * as fs from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { posix } from "node:path";
import git from "isomorphic-git";
import http from "isomorphic-git/http/node";

export interface RepoTree {
  /** where it came from, for messages: a directory, or url@ref */
  describe: string;
  /** the commit, for trees read from git */
  revision?: string;
  /** every file under dir (repository-relative), sorted */
  listFiles(dir: string): string[];
  /** whether dir is a directory of the repository ("." is its top) */
  hasDir(dir: string): boolean;
  /** a file's bytes; null if there is no such file */
  read(path: string): Buffer | null;
  /** why path is not a plain file inside the repository (symlink out, escape), or null */
  whyOutside(path: string): string | null;
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
    listFiles(dir) {
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
    hasDir(dir) {
      const p = join(abs, dir);
      try {
        return (p === abs || p.startsWith(abs + sep)) && statSync(p).isDirectory();
      } catch {
        return false;
      }
    },
    read(path) {
      try {
        return statSync(join(abs, path)).isFile() ? readFileSync(join(abs, path)) : null;
      } catch {
        return null;
      }
    },
    whyOutside(path) {
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
 * is fetched (one branch, shallow) into cacheDir first.
 */
export async function gitTree(url: string, ref: string, cacheDir: string): Promise<RepoTree> {
  let dir: string;
  if (/^https?:\/\//.test(url)) {
    dir = join(cacheDir, url.replace(/[^A-Za-z0-9]+/g, "_"));
    const gitdir = join(dir, ".git");
    if (!fs.existsSync(gitdir)) await git.clone({ fs, http, dir, url, ref, singleBranch: true, depth: 1, noCheckout: true });
    else await git.fetch({ fs, http, dir, url, ref, singleBranch: true, depth: 1 });
  } else {
    dir = resolve(url.replace(/^file:\/\//, ""));
  }
  const oid = await resolveCommit(dir, ref);
  const files = new Map<string, { oid: string; mode: string }>();
  await git.walk({
    fs,
    dir,
    trees: [git.TREE({ ref: oid })],
    map: async (path, [entry]) => {
      if (!entry || path === ".") return undefined;
      const type = await entry.type();
      if (type === "blob") files.set(path, { oid: await entry.oid(), mode: (await entry.mode()).toString(8) });
      return true;
    },
  });
  const blobs = new Map<string, Buffer>();
  for (const [path, f] of files) {
    if (f.mode === "120000") continue; // symlinks: never followed out of a commit
    const { blob } = await git.readBlob({ fs, dir, oid: f.oid });
    blobs.set(path, Buffer.from(blob));
  }
  return {
    describe: `${url}@${ref}`,
    revision: oid,
    listFiles(sub) {
      const prefix = sub === "." || sub === "" ? "" : sub.replace(/\/$/, "") + "/";
      return [...files.keys()].filter((p) => p.startsWith(prefix)).sort();
    },
    hasDir(sub) {
      if (sub === "." || sub === "") return true;
      const prefix = sub.replace(/\/$/, "") + "/";
      return [...files.keys()].some((p) => p.startsWith(prefix));
    },
    read: (path) => blobs.get(path) ?? null,
    whyOutside: (path) => (files.get(path)?.mode === "120000" ? "is a symlink; symlinks in a commit are not followed" : null),
  };
}

async function resolveCommit(dir: string, ref: string): Promise<string> {
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
  try {
    return await git.findRoot({ fs, filepath: resolve(dir) });
  } catch {
    return null;
  }
}
