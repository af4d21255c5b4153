// Progress of a long operation (compiling sources, verifying programs, apply steps, a large map
// write), reported to whoever shows it: the CLI on a terminal, nothing when piped. Pure type.

export interface Progress {
  phase: "compile" | "verify" | "apply" | "write";
  /** items done so far (the current one not included) */
  done: number;
  /** items in all, when known */
  total?: number;
  /** what is being done now: a source path, a program, a step */
  item: string;
}

export type OnProgress = (p: Progress) => void;
