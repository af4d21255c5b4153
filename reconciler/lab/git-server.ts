// A real git server for tests, benchmarks and the fleet demo: `git http-backend` (smart HTTP, as
// GitHub and Gitea speak it) behind a Node HTTP server, for every repository under a directory.
// It counts what it serves: fetches (upload-pack) and ref listings. Run as a program
// (`node git-server.ts DIR [HOST]`), it prints its URL, then a JSON line per request, so that it
// can serve from inside a network namespace.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";

export interface GitServer {
  url: string;
  /** requests served: ref listings (info/refs) and fetches (git-upload-pack) */
  served: { refs: number; fetches: number };
  close(): void;
}

export async function serveGit(projectRoot: string, host = "127.0.0.1", onRequest?: (kind: "refs" | "fetch" | "other", path: string) => void): Promise<GitServer> {
  const served = { refs: 0, fetches: 0 };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url!, "http://localhost");
    const kind = u.pathname.endsWith("/info/refs") ? "refs" : u.pathname.endsWith("/git-upload-pack") ? "fetch" : "other";
    if (kind === "refs") served.refs++;
    if (kind === "fetch") served.fetches++;
    onRequest?.(kind, u.pathname);
    const cgi = spawn("git", ["http-backend"], {
      env: { ...process.env, GIT_PROJECT_ROOT: projectRoot, GIT_HTTP_EXPORT_ALL: "1", PATH_INFO: u.pathname, QUERY_STRING: u.search.slice(1), REQUEST_METHOD: req.method!, CONTENT_TYPE: req.headers["content-type"] ?? "", REMOTE_ADDR: "127.0.0.1" },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let started = false;
    cgi.stdout.on("data", (d: Buffer) => {
      if (started) return void res.write(d);
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      let code = 200;
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const i = line.indexOf(":");
        if (line.slice(0, i).toLowerCase() === "status") code = parseInt(line.slice(i + 1), 10);
        else res.setHeader(line.slice(0, i), line.slice(i + 1).trim());
      }
      res.writeHead(code);
      started = true;
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on("end", () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${(server.address() as { port: number }).port}`, served, close: () => server.close() };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) {
  const s = await serveGit(process.argv[2]!, process.argv[3] ?? "127.0.0.1", (kind, path) => console.log(JSON.stringify({ kind, path })));
  console.log(JSON.stringify({ url: s.url }));
}
