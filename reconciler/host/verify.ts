// `--verify`: every new or changed program goes through the kernel verifier without being
// attached or pinned; the verdict, instruction count and (on rejection) the log tail come back,
// and everything loaded is released before returning.
import { loadDesiredProgram } from "./load-program.ts";
import { VerifierRejectedError } from "../kernel/errors.ts";
import type { DesiredProgram } from "../core/desired.ts";
import type { OnProgress } from "../core/progress.ts";
import type { LibbpfMessage } from "../kernel/object.ts";

export interface VerifyResult {
  program: string;
  source: string;
  verdict: "accepted" | "rejected" | "error";
  verifiedInstructions?: number;
  loadMs?: number;
  /** on rejection: the verifier log's last lines */
  logTail?: string;
  error?: string;
  code?: string;
  /** what libbpf printed opening and loading the object */
  libbpf?: LibbpfMessage[];
}


export async function verifyPrograms(programs: DesiredProgram[], objects: Map<string, Buffer>, root: string, onProgress?: OnProgress): Promise<VerifyResult[]> {
  const out: VerifyResult[] = [];
  for (const [i, d] of programs.entries()) {
    onProgress?.({ phase: "verify", done: i, total: programs.length, item: `Program/${d.name}` });
    const base = { program: d.name, source: d.source };
    try {
      const loaded = await loadDesiredProgram(d, objects.get(d.objectPath)!, { root, mode: "verify" });
      const info = loaded.program.info();
      out.push({ ...base, verdict: "accepted", verifiedInstructions: info.verifiedInstructions, loadMs: loaded.loadNs / 1e6, ...(loaded.libbpf.length ? { libbpf: loaded.libbpf } : {}) });
      loaded.program.close();
      for (const m of loaded.members.values()) m.close();
      for (const m of loaded.maps.values()) m.close();
    } catch (e) {
      if (e instanceof VerifierRejectedError) out.push({ ...base, verdict: "rejected", code: e.code, error: e.message, logTail: e.logTail(12) });
      else out.push({ ...base, verdict: "error", code: (e as { code?: string }).code ?? "Error", error: (e as Error).message });
    }
  }
  return out;
}
