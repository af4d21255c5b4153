// Progress on a terminal: one line on stderr, rewritten in place ("compile 2/5 src/x.bpf.c"),
// cleared when the command prints its result. Nothing at all when stderr is not a terminal.
import { writeSync } from "node:fs";
import { isatty } from "node:tty";
import type { OnProgress } from "../core/progress.ts";

export interface ProgressLine {
  report: OnProgress;
  /** erase the line (before printing the result) */
  clear(): void;
}

/** A progress line for stderr, or undefined when stderr is piped or redirected. */
export function progressLine(fd = 2): ProgressLine | undefined {
  if (!isatty(fd)) return undefined;
  const width = () => Math.max(20, (process.stderr.columns || 80) - 1);
  let shown = false;
  return {
    // writeSync: a large map write holds the event loop, and the line must move while it does.
    report(p) {
      const count = p.total !== undefined ? `${p.done + 1 > p.total ? p.total : p.done + 1}/${p.total}` : `${p.done + 1}`;
      const text = p.phase === "write" ? `${p.phase} ${p.item}: ${p.done}/${p.total} entries` : `${p.phase} ${count} ${p.item}`;
      writeSync(fd, `\r\x1b[K${text.slice(0, width())}`);
      shown = true;
    },
    clear() {
      if (shown) writeSync(fd, "\r\x1b[K");
      shown = false;
    },
  };
}
