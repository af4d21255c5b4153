// Webhook requests from a git host (GitHub's X-Hub-Signature-256, Gitea's X-Gitea-Signature):
// accepted only when signed with the shared secret over the exact body, not seen before (by
// delivery id), and small. Pure apart from the clock: headers and body in, a verdict out.
import { createHmac, timingSafeEqual } from "node:crypto";

export const WEBHOOK_MAX_BYTES = 1 << 20;

export type WebhookVerdict = { ok: true; delivery: string } | { ok: false; status: number; reason: "Unsigned" | "BadSignature" | "Replayed" | "TooLarge" };

/** Delivery ids seen lately: a replayed request is refused. */
export class DeliveryLog {
  readonly #seen = new Map<string, number>();
  constructor(readonly ttlMs = 3_600_000, readonly max = 10_000) {}
  /** true when id was new (and is now remembered) */
  remember(id: string, now = Date.now()): boolean {
    for (const [k, t] of this.#seen) {
      if (now - t < this.ttlMs && this.#seen.size <= this.max) break;
      this.#seen.delete(k); // oldest first: insertion order
    }
    if (this.#seen.has(id)) return false;
    this.#seen.set(id, now);
    return true;
  }
}

const header = (h: Record<string, string | string[] | undefined>, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function verifyWebhook(headers: Record<string, string | string[] | undefined>, body: Buffer, secret: Buffer, log: DeliveryLog): WebhookVerdict {
  if (body.length > WEBHOOK_MAX_BYTES) return { ok: false, status: 413, reason: "TooLarge" };
  const given = header(headers, "x-hub-signature-256")?.replace(/^sha256=/, "") ?? header(headers, "x-gitea-signature");
  if (!given) return { ok: false, status: 401, reason: "Unsigned" };
  const want = createHmac("sha256", secret).update(body).digest();
  const got = /^[0-9a-f]{64}$/i.test(given) ? Buffer.from(given, "hex") : Buffer.alloc(0);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, status: 401, reason: "BadSignature" };
  // Without a delivery id the body's digest stands in: the same signed request twice is a replay.
  const delivery = header(headers, "x-github-delivery") ?? header(headers, "x-gitea-delivery") ?? want.toString("hex");
  if (!log.remember(delivery)) return { ok: false, status: 409, reason: "Replayed" };
  return { ok: true, delivery };
}
