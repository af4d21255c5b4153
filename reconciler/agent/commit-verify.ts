// --verify-commits: a head commit is applied only when it carries an OpenPGP signature made by one
// of the keys of the keyring (an armored file of public keys). Unsigned, unknown or bad signatures
// are refused with the commit and the reason, and the running state is kept.
import { readFileSync } from "node:fs";
import { createMessage, readKeys, readSignature, verify, type PublicKey } from "openpgp";
import { BpfopsError } from "../core/errors.ts";

export class CommitVerifier {
  private constructor(private readonly keys: PublicKey[], readonly describe: string) {}

  static async fromFile(file: string): Promise<CommitVerifier> {
    let keys: PublicKey[];
    try {
      keys = (await readKeys({ armoredKeys: readFileSync(file, "utf8") })) as PublicKey[];
    } catch (e) {
      throw new BpfopsError("InvalidArgument", `--verify-commits ${file}: not an armored OpenPGP keyring: ${(e as Error).message}`);
    }
    return new CommitVerifier(keys, `${keys.length} key${keys.length === 1 ? "" : "s"} from ${file}: ${keys.map((k) => k.getKeyID().toHex()).join(", ")}`);
  }

  /** Resolves when commit's signature verifies against one of the keys; throws a Stalled error otherwise. */
  async check(commit: string, signed: { signature: string; payload: string } | null): Promise<void> {
    if (!signed) throw new BpfopsError("UnsignedCommit", `commit ${commit} is not signed; only commits signed by the keyring's keys are applied`);
    let keyIds: string[] = [];
    try {
      const signature = await readSignature({ armoredSignature: signed.signature });
      keyIds = signature.getSigningKeyIDs().map((k) => k.toHex());
      // git signs the commit object's bytes as they are (a binary signature)
      const result = await verify({ message: await createMessage({ binary: Buffer.from(signed.payload, "utf8") }), signature, verificationKeys: this.keys });
      await result.signatures[0]!.verified;
    } catch (e) {
      const known = keyIds.some((id) => this.keys.some((k) => k.getKeys().some((sub) => sub.getKeyID().toHex() === id)));
      throw new BpfopsError(known ? "BadSignature" : "UntrustedSignature", `commit ${commit} ${known ? "has a signature that does not verify" : `is signed by ${keyIds.join(", ") || "an unreadable signature"}, not by a key of the keyring`}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
}
