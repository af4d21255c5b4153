// The agent's local HTTP endpoint: GET /status (the agent's status as JSON), GET /metrics
// (Prometheus text), POST /webhook (a signed push from the git host: check now). It listens on
// loopback unless told otherwise; a flood of webhook calls folds into one fetch (Agent.trigger).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Agent } from "./agent.ts";
import { DeliveryLog, verifyWebhook, WEBHOOK_MAX_BYTES } from "./webhook.ts";

export interface AgentHttpOptions {
  host: string;
  port: number;
  /** the webhook's shared secret; without it, POST /webhook is refused */
  webhookSecret?: Buffer;
}

export async function serveAgent(agent: Agent, opts: AgentHttpOptions): Promise<{ server: Server; address: AddressInfo }> {
  const deliveries = new DeliveryLog();
  const { metrics, log } = agent.config;
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = "application/json") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (req.method === "GET" && req.url === "/status") return send(200, JSON.stringify(agent.status, null, 2) + "\n");
    if (req.method === "GET" && req.url === "/metrics") {
      void metrics.registry.metrics().then((text) => send(200, text, metrics.registry.contentType));
      return;
    }
    if (req.method === "POST" && req.url === "/webhook") {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > WEBHOOK_MAX_BYTES) tooLarge = true;
        else chunks.push(c);
      });
      req.on("end", () => {
        const verdict = opts.webhookSecret
          ? tooLarge
            ? ({ ok: false, status: 413, reason: "TooLarge" } as const)
            : verifyWebhook(req.headers, Buffer.concat(chunks), opts.webhookSecret, deliveries)
          : ({ ok: false, status: 404, reason: "NoSecret" } as const);
        metrics.webhooks.inc({ outcome: verdict.ok ? "accepted" : verdict.reason });
        if (!verdict.ok) {
          log.warn({ reason: verdict.reason, from: req.socket.remoteAddress }, "webhook request refused");
          return send(verdict.status, JSON.stringify({ refused: verdict.reason }) + "\n");
        }
        log.info({ delivery: verdict.delivery }, "webhook: checking the repository now");
        agent.trigger();
        send(202, JSON.stringify({ accepted: verdict.delivery }) + "\n");
      });
      return;
    }
    send(404, JSON.stringify({ error: "not found: GET /status, GET /metrics, POST /webhook" }) + "\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return { server, address: server.address() as AddressInfo };
}
