// SSH commit signatures (git's gpg.format=ssh): the SSHSIG envelope of OpenSSH's PROTOCOL.sshsig
// read and checked against an allowed-signers list (git's gpg.ssh.allowedSignersFile format).
// Keys and the inner signature are parsed and verified by sshpk; the envelope is ours.
import { createHash } from "node:crypto";
import sshpk from "sshpk";
import { BpfopsError } from "../core/errors.ts";

export const SSH_ARMOR = "-----BEGIN SSH SIGNATURE-----";
const MAGIC = Buffer.from("SSHSIG");
const HASHES = new Set(["sha256", "sha512"]);

/** One line of an allowed-signers file: who, which key, and where and when it may sign. */
export interface AllowedSigner {
  principals: string[];
  key: sshpk.Key;
  /** the key's wire encoding, compared with the key a signature names */
  blob: Buffer;
  namespaces?: string[];
  validAfter?: number;
  validBefore?: number;
  line: number;
}

/**
 * Parses an allowed-signers text: `principals [options] keytype base64 [comment]`, with options
 * namespaces="git,…", valid-after=YYYYMMDD[HHMM[SS]] and valid-before=…; an authorized_keys line
 * without principals is taken as a key trusted for any principal. Errors name the file and line.
 */
export function parseAllowedSigners(text: string, file: string): AllowedSigner[] {
  const out: AllowedSigner[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fail = (why: string): never => {
      throw new BpfopsError("InvalidArgument", `--verify-commits ${file}:${i + 1}: ${why}`);
    };
    const fields = splitFields(line);
    // The key type is the first field that sshpk knows as one; before it, principals and options.
    const at = fields.findIndex((f, j) => j + 1 < fields.length && /^(ssh-|ecdsa-|sk-|rsa-)/.test(f));
    if (at < 0) fail("not an allowed-signers line (principals [options] keytype key)");
    let key: sshpk.Key;
    try {
      key = sshpk.parseKey(`${fields[at]} ${fields[at + 1]}`, "ssh");
    } catch (e) {
      return fail(`the ${fields[at]} key does not parse: ${(e as Error).message}`);
    }
    const signer: AllowedSigner = { principals: at > 0 ? fields[0]!.split(",") : ["*"], key, blob: key.toBuffer("rfc4253"), line: i + 1 };
    for (const opt of fields.slice(at > 0 ? 1 : 0, at).flatMap((o) => o.match(/(?:[^,"]+|"[^"]*")+/g) ?? [])) {
      const [name, value = ""] = opt.split(/=(.*)/s) as [string, string?];
      const v = value.replace(/^"(.*)"$/s, "$1");
      if (name === "namespaces") signer.namespaces = v.split(",");
      else if (name === "valid-after") signer.validAfter = sshTime(v) ?? fail(`valid-after="${v}" is not YYYYMMDD[HHMM[SS]][Z]`);
      else if (name === "valid-before") signer.validBefore = sshTime(v) ?? fail(`valid-before="${v}" is not YYYYMMDD[HHMM[SS]][Z]`);
      else if (name === "cert-authority") fail("cert-authority keys (signatures by certificates) are not supported; list the signing keys themselves");
      else fail(`unknown option ${name}`);
    }
    out.push(signer);
  }
  return out;
}

/** What a verified SSH signature was made by. */
export interface SshSigned {
  principals: string[];
  fingerprint: string;
}

/**
 * Verifies an armored SSHSIG over payload (the commit object without its gpgsig header) in the
 * "git" namespace against the allowed signers; signedAt (unix seconds, the committer's time) is
 * checked against a signer's validity. Throws a Stalled BpfopsError saying why it was refused.
 */
export function verifySshSignature(armored: string, payload: string, signers: AllowedSigner[], signedAt: number, commit: string): SshSigned {
  const sig = readEnvelope(armored, commit);
  let signingKey: sshpk.Key;
  try {
    signingKey = sshpk.parseKey(sig.publicKey, "rfc4253");
  } catch (e) {
    throw new BpfopsError("BadSignature", `commit ${commit}: the SSH signature names a key that does not parse: ${(e as Error).message}`);
  }
  const fingerprint = signingKey.fingerprint("sha256").toString();
  const candidates = signers.filter((s) => s.blob.equals(sig.publicKey));
  if (!candidates.length) throw new BpfopsError("UntrustedSignature", `commit ${commit} is signed by SSH key ${fingerprint}, not by a key of the allowed signers`);
  if (sig.namespace !== "git") throw new BpfopsError("BadSignature", `commit ${commit}: the SSH signature is for namespace "${sig.namespace}", not "git"`);
  const signer = candidates.find((s) => (!s.namespaces || s.namespaces.includes("git")) && (s.validAfter === undefined || signedAt >= s.validAfter) && (s.validBefore === undefined || signedAt < s.validBefore));
  if (!signer) {
    throw new BpfopsError("UntrustedSignature", `commit ${commit} is signed by SSH key ${fingerprint}, which the allowed signers (line ${candidates.map((c) => c.line).join(", ")}) do not allow for git commits at ${new Date(signedAt * 1000).toISOString()}`);
  }
  // What was signed: the envelope's fields and the hash of the message, not the message itself.
  const signed = Buffer.concat([MAGIC, sshString(Buffer.from(sig.namespace)), sshString(sig.reserved), sshString(Buffer.from(sig.hashAlgorithm)), sshString(createHash(sig.hashAlgorithm).update(payload, "utf8").digest())]);
  let ok = false;
  try {
    const parsed = sshpk.parseSignature(sig.signature, signingKey.type as sshpk.AlgorithmType, "ssh");
    // RSA names its hash in the signature (rsa-sha2-512); the curves fix theirs by the key.
    const verifier = signingKey.type === "rsa" ? signingKey.createVerify(parsed.hashAlgorithm ?? "sha512") : signingKey.createVerify();
    verifier.update(signed);
    ok = verifier.verify(parsed);
  } catch (e) {
    throw new BpfopsError("BadSignature", `commit ${commit}: the SSH signature by ${fingerprint} does not parse: ${(e as Error).message}`);
  }
  if (!ok) throw new BpfopsError("BadSignature", `commit ${commit} has an SSH signature by ${fingerprint} that does not verify`);
  return { principals: signer.principals, fingerprint };
}

interface Envelope {
  publicKey: Buffer;
  namespace: string;
  reserved: Buffer;
  hashAlgorithm: string;
  signature: Buffer;
}

function readEnvelope(armored: string, commit: string): Envelope {
  const bad = (why: string): never => {
    throw new BpfopsError("BadSignature", `commit ${commit}: not a readable SSH signature: ${why}`);
  };
  const body = armored.trim();
  if (!body.startsWith(SSH_ARMOR) || !body.endsWith("-----END SSH SIGNATURE-----")) bad("no BEGIN/END SSH SIGNATURE armor");
  const bytes = Buffer.from(body.slice(SSH_ARMOR.length, -"-----END SSH SIGNATURE-----".length).replace(/\s+/g, ""), "base64");
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) bad("no SSHSIG magic");
  if (bytes.readUInt32BE(6) !== 1) bad(`version ${bytes.readUInt32BE(6)}, not 1`);
  let off = 10;
  const next = (what: string): Buffer => {
    if (off + 4 > bytes.length) bad(`truncated before the ${what}`);
    const n = bytes.readUInt32BE(off);
    if (off + 4 + n > bytes.length) bad(`truncated in the ${what}`);
    const b = bytes.subarray(off + 4, off + 4 + n);
    off += 4 + n;
    return b;
  };
  const env: Envelope = { publicKey: next("public key"), namespace: next("namespace").toString(), reserved: next("reserved field"), hashAlgorithm: next("hash algorithm").toString(), signature: next("signature") };
  if (!HASHES.has(env.hashAlgorithm)) bad(`hash algorithm "${env.hashAlgorithm}" (sha256 or sha512)`);
  return env;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** Fields split on blanks, with double-quoted runs (option values) kept whole. */
function splitFields(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/** YYYYMMDD[HHMM[SS]][Z] as unix seconds (UTC with Z, else the host's time zone, as OpenSSH reads it). */
function sshTime(v: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(v);
  if (!m) return undefined;
  const [y, mo, d, h = "0", mi = "0", s = "0"] = m.slice(1, 7).map((x) => x ?? "0") as string[];
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  return (m[7] ? Date.UTC(...parts) : new Date(...parts).getTime()) / 1000;
}
