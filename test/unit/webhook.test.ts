// Webhook verification as a table: what is accepted and what is refused, and why. No network.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DeliveryLog, verifyWebhook, WEBHOOK_MAX_BYTES } from "../../reconciler/agent/webhook.ts";
import { parseDuration } from "../../reconciler/cli/agent.ts";

const secret = Buffer.from("a-webhook-secret-of-some-length");
const body = Buffer.from('{"ref":"refs/heads/main"}');
const hmac = (b: Buffer, s = secret) => createHmac("sha256", s).update(b).digest("hex");

describe("webhook", () => {
  it.each<[string, Record<string, string>, Buffer, string | null]>([
    ["GitHub, signed", { "x-hub-signature-256": `sha256=${hmac(body)}`, "x-github-delivery": "a" }, body, null],
    ["Gitea, signed", { "x-gitea-signature": hmac(body), "x-gitea-delivery": "b" }, body, null],
    ["unsigned", { "x-github-delivery": "c" }, body, "Unsigned"],
    ["signed with another secret", { "x-hub-signature-256": `sha256=${hmac(body, Buffer.from("another"))}` }, body, "BadSignature"],
    ["a body changed after signing", { "x-hub-signature-256": `sha256=${hmac(body)}` }, Buffer.concat([body, Buffer.from(" ")]), "BadSignature"],
    ["a signature that is not hex", { "x-hub-signature-256": "sha256=zz" }, body, "BadSignature"],
    ["too large", { "x-hub-signature-256": `sha256=${hmac(body)}` }, Buffer.alloc(WEBHOOK_MAX_BYTES + 1), "TooLarge"],
  ])("%s", (_, headers, b, refused) => {
    const v = verifyWebhook(headers, b, secret, new DeliveryLog());
    if (refused === null) expect(v.ok).toBe(true);
    else expect(v).toMatchObject({ ok: false, reason: refused });
  });

  it("a delivery seen before is a replay, by id or (without one) by the body's signature", () => {
    const log = new DeliveryLog();
    const h = { "x-hub-signature-256": `sha256=${hmac(body)}` };
    expect(verifyWebhook({ ...h, "x-github-delivery": "x" }, body, secret, log).ok).toBe(true);
    expect(verifyWebhook({ ...h, "x-github-delivery": "x" }, body, secret, log)).toMatchObject({ ok: false, reason: "Replayed" });
    expect(verifyWebhook(h, body, secret, log).ok).toBe(true);
    expect(verifyWebhook(h, body, secret, log)).toMatchObject({ ok: false, reason: "Replayed" });
  });

  it.each<[string, number | null]>([
    ["500ms", 500],
    ["1s", 1000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["50ms", null],
    ["soon", null],
  ])("duration %s", (text, ms) => {
    if (ms === null) expect(() => parseDuration(text, "--interval")).toThrow(/is not a duration/);
    else expect(parseDuration(text, "--interval")).toBe(ms);
  });
});
