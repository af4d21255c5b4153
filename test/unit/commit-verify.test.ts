// Commit signature checks as tables: SSH signatures made by ssh-keygen (the tool git calls for
// gpg.format=ssh) against allowed-signers keyrings, what is applied and what is refused and why,
// and keyrings that do not parse. No root, no repository: payloads are commit objects as text.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CommitVerifier } from "../../reconciler/agent/commit-verify.ts";

const dir = mkdtempSync(join(tmpdir(), "bpfops-sshsig-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COMMITTED = 1_700_000_000; // 2023-11-14T22:13:20Z
const payload = (msg: string) => `tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor t <t@t> ${COMMITTED} +0000\ncommitter t <t@t> ${COMMITTED} +0000\n\n${msg}\n`;

/** A key pair of this type; returns its public line ("ssh-ed25519 AAAA… comment"). */
function keyPair(name: string, type: "ed25519" | "ecdsa" | "rsa"): string {
  execFileSync("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", `${name}@example.test`, "-f", join(dir, name)]);
  return readFileSync(join(dir, `${name}.pub`), "utf8").trim();
}
/** The armored SSHSIG ssh-keygen makes of text with this key, in this namespace. */
function sign(name: string, text: string, namespace = "git"): string {
  const f = join(dir, `msg-${name}-${namespace}`);
  writeFileSync(f, text);
  execFileSync("ssh-keygen", ["-q", "-Y", "sign", "-n", namespace, "-f", join(dir, name), f], { stdio: "ignore" });
  return readFileSync(`${f}.sig`, "utf8");
}
async function verifier(keyring: string): Promise<CommitVerifier> {
  const f = join(dir, `keyring-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, keyring);
  return CommitVerifier.fromFile(f);
}

const keys = { ed: keyPair("ed", "ed25519"), ec: keyPair("ec", "ecdsa"), rsa: keyPair("rsa", "rsa"), stranger: keyPair("stranger", "ed25519") };
const good = payload("good");
// An OpenPGP public key, for keyrings that mix both kinds.
const PGP_KEY = (await (await import("openpgp")).generateKey({ type: "ecc", curve: "ed25519Legacy", userIDs: [{ name: "release", email: "release@example.test" }], format: "armored" })).publicKey.trim();

describe("SSH commit signatures", () => {
  it.each<[string, string, () => { signature: string; payload: string } | null, string | null]>([
    ["ed25519, allowed", `release@example.test ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), null],
    ["ECDSA P-256, allowed", `release@example.test ${keys.ec}`, () => ({ signature: sign("ec", good), payload: good }), null],
    ["RSA (rsa-sha2-512), allowed", `release@example.test ${keys.rsa}`, () => ({ signature: sign("rsa", good), payload: good }), null],
    ["a bare key line (authorized_keys style)", keys.ed, () => ({ signature: sign("ed", good), payload: good }), null],
    ["namespaces that include git", `release@example.test namespaces="file,git" ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), null],
    ["valid from before the commit", `release@example.test valid-after="20230101" ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), null],
    ["unsigned", `release@example.test ${keys.ed}`, () => null, "UnsignedCommit"],
    ["signed by a key not listed", `release@example.test ${keys.ed}`, () => ({ signature: sign("stranger", good), payload: good }), "UntrustedSignature"],
    ["the commit changed after signing", `release@example.test ${keys.ed}`, () => ({ signature: sign("ed", good), payload: payload("evil") }), "BadSignature"],
    ["signed in another namespace", `release@example.test ${keys.ed}`, () => ({ signature: sign("ed", good, "file"), payload: good }), "BadSignature"],
    ["a key allowed for other namespaces only", `release@example.test namespaces="file" ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), "UntrustedSignature"],
    ["a key that expired before the commit", `release@example.test valid-before="20230101Z" ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), "UntrustedSignature"],
    ["a key valid only after the commit", `release@example.test valid-after="20240101Z" ${keys.ed}`, () => ({ signature: sign("ed", good), payload: good }), "UntrustedSignature"],
    ["a truncated signature", `release@example.test ${keys.ed}`, () => ({ signature: sign("ed", good).replace(/\n[^\n]+\n-----END/, "\n-----END"), payload: good }), "BadSignature"],
    ["an SSH signature against OpenPGP keys only", PGP_KEY, () => ({ signature: sign("ed", good), payload: good }), "UntrustedSignature"],
  ])("%s", async (_, keyring, signed, refused) => {
    const v = await verifier(keyring);
    const r = v.check("c0ffee", signed());
    if (refused === null) await expect(r).resolves.toBeUndefined();
    else await expect(r).rejects.toMatchObject({ code: refused });
  });

  it.each<[string, string, RegExp]>([
    ["an empty file", "# nothing\n", /keyring-\w+: no keys/],
    ["a line without a key", "release@example.test\n", /keyring-\w+:1: not an allowed-signers line/],
    ["a key that does not parse", `# keys\nrelease@example.test ssh-ed25519 AAAAnotbase64!!\n`, /keyring-\w+:2: the ssh-ed25519 key does not parse/],
    ["an unknown option", `release@example.test no-touch-required ${keys.ed}\n`, /keyring-\w+:1: unknown option no-touch-required/],
    ["a certificate authority", `*@example.test cert-authority ${keys.ed}\n`, /keyring-\w+:1: cert-authority keys .* are not supported/],
    ["a bad date", `release@example.test valid-before="tomorrow" ${keys.ed}\n`, /keyring-\w+:1: valid-before="tomorrow" is not YYYYMMDD/],
  ])("a keyring with %s is refused, naming the file and line", async (_, keyring, message) => {
    await expect(verifier(keyring)).rejects.toMatchObject({ code: "InvalidArgument", message: expect.stringMatching(message) });
  });

  it("one keyring holds OpenPGP and SSH keys; SSH lines after a key block keep their line numbers", async () => {
    const v = await verifier(`${PGP_KEY}\nrelease@example.test ${keys.ed}\n`);
    expect(v.describe).toMatch(/^2 keys from .*: OpenPGP [0-9a-f]{16}, SSH SHA256:/);
    await expect(v.check("c0ffee", { signature: sign("ed", good), payload: good })).resolves.toBeUndefined();
    await expect(verifier(`${PGP_KEY}\nrelease@example.test bogus-option ${keys.ed}\n`)).rejects.toThrow(new RegExp(`:${PGP_KEY.split("\n").length + 1}: unknown option bogus-option`));
  });
});
