// `bpfops events NAME`: records from a pinned ring buffer or perf event array, decoded by the
// struct its Map manifest names (recordType, from the BTF of a program using it), one JSON
// line each, until interrupted, --count records or --seconds.
import { mapPin, openMap, recordTypeOf } from "../host/map-reader.ts";
import { decodeTyped } from "../core/typed-values.ts";
import { native } from "../kernel/native.ts";
import { kernelCall } from "../kernel/errors.ts";
import { BpfopsError } from "../core/errors.ts";

export interface EventsCliOptions {
  bpffs: string;
  count?: number;
  seconds?: number;
  type?: string;
}

const POLL_MS = 100;

export async function runEvents(name: string, opts: EventsCliOptions): Promise<number> {
  const pin = mapPin(opts.bpffs, name);
  const m = openMap(opts.bpffs, name);
  const kind = m.info().typeName;
  if (kind !== "ringbuf" && kind !== "perf_event_array") {
    m.close();
    throw new BpfopsError("InvalidArgument", `${name} is a ${kind} map; events reads a ringbuf or a perf_event_array`);
  }
  const record = recordTypeOf(opts.bpffs, m, pin, opts.type);
  if (opts.type && !record) {
    m.close();
    throw new BpfopsError("NotFound", `no struct ${opts.type} in the BTF of a program bpfops loaded that uses ${name}`);
  }
  const decode = (b: Buffer) => (record && b.length >= record.type.size ? decodeTyped(b.subarray(0, record.type.size), record.type) : { hex: b.toString("hex") });
  let printed = 0;
  let lost = 0;
  let stop = false;
  const end = opts.seconds ? Date.now() + opts.seconds * 1000 : Infinity;
  const onSignal = () => (stop = true);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const perf = kind === "perf_event_array" ? kernelCall(() => native.perfBufferOpen(m.fd, 64)) : null;
  try {
    while (!stop && Date.now() < end && (opts.count === undefined || printed < opts.count)) {
      let records: Buffer[];
      if (perf !== null) {
        const r = kernelCall(() => native.perfBufferPoll(perf, 0));
        records = r.records;
        lost += r.lost;
      } else records = m.drainRingbuf();
      for (const b of records) {
        if (opts.count !== undefined && printed >= opts.count) break;
        process.stdout.write(JSON.stringify(decode(b)) + "\n");
        printed++;
      }
      if (!records.length) await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    if (perf !== null) native.perfBufferClose(perf);
    m.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (lost) process.stderr.write(`bpfops: the kernel lost ${lost} records (the reader was too slow)\n`);
  return 0;
}
