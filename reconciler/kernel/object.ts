// ObjectFile: an eBPF ELF object opened from a path or bytes, configured before load (globals,
// program types, map sizes, map reuse, pin paths), then loaded off the main thread.
import { native } from "./native.ts";
import { fromNative, kernelCall } from "./errors.ts";
import { MapHandle, ProgramHandle } from "./handles.ts";
import { AttachType, ProgType, type AttachTypeName, type ProgTypeName } from "../../schemas/kernel-names.ts";
import { encodeInteger } from "../core/bytes.ts";
import type { BpfObject, LibbpfLevel, LibbpfMessage, NativeGlobal, NativeObjectMap, NativeObjectProgram } from "../../native/native.d.ts";

export type { LibbpfMessage };

export interface OpenOptions {
  /** bpffs directory where maps declared with LIBBPF_PIN_BY_NAME are pinned and reused. */
  pinRoot: string;
  /** Object name (prefix of internal map names); defaults to the file name. */
  name?: string;
}

export interface LoadOptions {
  /** Verifier log level for every program: 0 logs only on rejection; 1 or 2 always (plus 4 for stats). */
  logLevel?: number;
  /** Bytes of log buffer per program (default 16 MiB; level 2 needs large buffers). */
  logSize?: number;
}

export type GlobalValue = Buffer | number | bigint | boolean;

export class ObjectFile {
  readonly label: string;
  readonly #obj: BpfObject;
  #state: "open" | "loaded" | "closed" = "open";
  #logs: Record<string, string> = {};

  private constructor(obj: BpfObject, label: string) {
    this.#obj = obj;
    this.label = label;
  }

  static open(source: string | Buffer, opts: OpenOptions): ObjectFile {
    const obj = kernelCall(() => new native.BpfObject(source, { pinRoot: opts.pinRoot, ...(opts.name ? { name: opts.name } : {}) }));
    return new ObjectFile(obj, opts.name ?? (typeof source === "string" ? source : "<buffer>"));
  }

  get loaded(): boolean {
    return this.#state === "loaded";
  }

  programs(): NativeObjectProgram[] {
    return this.#obj.programs();
  }
  maps(): NativeObjectMap[] {
    return this.#obj.maps();
  }
  /** Variables of a data section (".rodata" for `const volatile`, ".data", ".bss"). */
  globals(section = ".rodata"): NativeGlobal[] {
    return this.#obj.globals(section);
  }

  /** Sets a global's initial value; numbers are encoded little-endian at the variable's size. */
  setGlobal(name: string, value: GlobalValue, section = ".rodata"): this {
    const v = this.globals(section).find((g) => g.name === name);
    // An unknown variable still goes to the addon, whose error names the object and the section.
    const buf = Buffer.isBuffer(value) ? value : v ? encodeScalar(value, v.size, `${this.label}: global ${name}`) : Buffer.alloc(0);
    kernelCall(() => this.#obj.setGlobal(section, name, buf));
    return this;
  }
  setProgramType(program: string, type: ProgTypeName | number, expectedAttachType?: AttachTypeName | number): this {
    const t = typeof type === "number" ? type : ProgType[type];
    const a = expectedAttachType === undefined ? undefined : typeof expectedAttachType === "number" ? expectedAttachType : AttachType[expectedAttachType];
    kernelCall(() => this.#obj.setProgramType(program, t, a));
    return this;
  }
  setAutoload(program: string, autoload: boolean): this {
    kernelCall(() => this.#obj.setAutoload(program, autoload));
    return this;
  }
  setMaxEntries(map: string, maxEntries: number): this {
    kernelCall(() => this.#obj.setMaxEntries(map, maxEntries));
    return this;
  }
  /** Binds the object's map to an existing map (the kernel checks the definitions agree). */
  reuseMap(map: string, existing: MapHandle): this {
    kernelCall(() => this.#obj.reuseMap(map, existing.fd));
    return this;
  }
  /** Pins the map at path on load (reusing what is pinned there); null: do not pin. */
  setMapPinPath(map: string, path: string | null): this {
    kernelCall(() => this.#obj.setMapPinPath(map, path));
    return this;
  }

  /** Loads every program through the verifier on a worker thread. Rejects with VerifierRejectedError. */
  async load(opts: LoadOptions = {}): Promise<void> {
    try {
      this.#logs = await this.#obj.load(opts);
      this.#state = "loaded";
    } catch (e) {
      this.#state = "closed";
      throw fromNative(e);
    }
  }

  /** The verifier log of each program from a load with logLevel > 0. */
  verifierLogs(): Record<string, string> {
    return { ...this.#logs };
  }

  /** What libbpf printed while opening and loading this object (taken: each message once). */
  libbpfMessages(): LibbpfMessage[] {
    return this.#obj.libbpfMessages();
  }

  /** A handle of its own to a loaded program; it stays loaded after the object is closed. */
  program(name: string): ProgramHandle {
    return ProgramHandle.fromFd(kernelCall(() => this.#obj.programFd(name)), name);
  }
  /** A handle of its own to one of the object's maps. */
  map(name: string): MapHandle {
    return MapHandle.fromFd(kernelCall(() => this.#obj.mapFd(name)), name);
  }

  close(): void {
    this.#obj.close();
    this.#state = "closed";
  }
}

/** Opens, configures (through the callback) and loads an object; closes it if anything fails. */
export async function loadObject(source: string | Buffer, opts: OpenOptions & LoadOptions, configure?: (o: ObjectFile) => void): Promise<ObjectFile> {
  const o = ObjectFile.open(source, opts);
  try {
    configure?.(o);
    await o.load(opts);
    return o;
  } catch (e) {
    o.close();
    throw e;
  }
}

/** The most verbose libbpf messages kept from now on, process-wide: debug is every relocation. */
export function setLibbpfLogLevel(level: LibbpfLevel): void {
  native.setLibbpfLogLevel(level);
}

function encodeScalar(value: number | bigint | boolean, size: number, what: string): Buffer {
  if (size === 0 || size > 8) throw new RangeError(`${what}: a number cannot fill a ${size}-byte variable; pass a Buffer`);
  const b = encodeInteger(value, size);
  if (!b) throw new RangeError(`${what}: ${BigInt(value)} does not fit in ${size} bytes`);
  return b;
}
