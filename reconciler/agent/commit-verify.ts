// --verify-commits: a head commit is applied only when it carries a signature made by one of the
// trusted keys: OpenPGP keys (armored blocks) and SSH keys (allowed-signers lines) of one file.
// Unsigned, unknown or bad signatures are refused with the commit and the reason; the running state is kept.
import { readFileSync } from "node:fs";
import { createMessage, readKeys, readSignature, verify, type PublicKey } from "openpgp";
import { BpfopsError } from "../core/errors.ts";
import { parseAllowedSigners, SSH_ARMOR, verifySshSignature, type AllowedSigner } from "./ssh-signature.ts";

const PGP_BLOCK = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

export class CommitVerifier {
  private constructor(
    private readonly keys: PublicKey[],
    private readonly sshSigners: AllowedSigner[],
    readonly describe: string,
  ) {}

  /**
   * The keyring file: armored OpenPGP public key blocks, and (outside them) lines of git's
   * allowed-signers format for SSH keys. Either may be absent, not both.
   */
  static async fromFile(file: string): Promise<CommitVerifier> {
    const text = readFileSync(file, "utf8");
    const blocks = text.match(PGP_BLOCK) ?? [];
    let keys: PublicKey[] = [];
    try {
      if (blocks.length) keys = (await readKeys({ armoredKeys: blocks.join("\n") })) as PublicKey[];
    } catch (e) {
      throw new BpfopsError("InvalidArgument", `--verify-commits ${file}: an OpenPGP key block does not parse: ${(e as Error).message}`);
    }
    // Blocks blanked line for line, so that errors in SSH lines keep their line numbers.
    const rest = text.replace(PGP_BLOCK, (b) => b.replace(/[^\n]/g, ""));
    const ssh = parseAllowedSigners(rest, file);
    if (!keys.length && !ssh.length) {
      throw new BpfopsError("InvalidArgument", `--verify-commits ${file}: no keys: armored OpenPGP public keys and/or allowed-signers lines for SSH keys ("principal ssh-ed25519 AAAA…")`);
    }
    const names = [...keys.map((k) => `OpenPGP ${k.getKeyID().toHex()}`), ...ssh.map((s) => `SSH ${s.key.fingerprint("sha256").toString()}`)];
    return new CommitVerifier(keys, ssh, `${names.length} key${names.length === 1 ? "" : "s"} from ${file}: ${names.join(", ")}`);
  }

  /** Resolves when commit's signature verifies against one of the keys; throws a Stalled error otherwise. */
  async check(commit: string, signed: { signature: string; payload: string } | null): Promise<void> {
    if (!signed) throw new BpfopsError("UnsignedCommit", `commit ${commit} is not signed; only commits signed by the keyring's keys are applied`);
    if (signed.signature.trimStart().startsWith(SSH_ARMOR)) {
      verifySshSignature(signed.signature, signed.payload, this.sshSigners, committedAt(signed.payload), commit);
      return;
    }
    let keyIds: string[] = [];
    try {
      const signature = await readSignature({ armoredSignature: signed.signature });
      keyIds = signature.getSigningKeyIDs().map((k) => k.toHex());
      if (!this.keys.length) throw new Error("the keyring has no OpenPGP keys");
      // git signs the commit object's bytes as they are (a binary signature)
      const result = await verify({ message: await createMessage({ binary: Buffer.from(signed.payload, "utf8") }), signature, verificationKeys: this.keys });
      await result.signatures[0]!.verified;
    } catch (e) {
      const known = keyIds.some((id) => this.keys.some((k) => k.getKeys().some((sub) => sub.getKeyID().toHex() === id)));
      throw new BpfopsError(known ? "BadSignature" : "UntrustedSignature", `commit ${commit} ${known ? "has a signature that does not verify" : `is signed by ${keyIds.join(", ") || "an unreadable signature"}, not by a key of the keyring`}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
}

/** The committer's time of a commit object, in unix seconds (what a key's validity is checked against). */
function committedAt(payload: string): number {
  const m = /^committer .* (\d+) [+-]\d{4}$/m.exec(payload);
  return m ? Number(m[1]) : Math.floor(Date.now() / 1000);
}
