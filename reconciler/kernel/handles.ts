// Typed handles over live kernel objects: ProgramHandle, MapHandle and LinkHandle each own one
// fd, and expose the operations later layers need (map I/O, slot updates, link swaps, pins).
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { perCpuStride } from "../core/map-types.ts";
import { isPerCpuMapType, MapType, MapUpdateFlags, progTypeName, mapTypeName, linkTypeName } from "../../schemas/kernel-names.ts";
import type { NativeLinkInfo, NativeMapInfo, NativeProgInfo } from "../../native/native.d.ts";

abstract class KernelHandle {
  protected readonly owned: OwnedFd;
  constructor(owned: OwnedFd) {
    this.owned = owned;
  }
  get fd(): number {
    return this.owned.fd;
  }
  get closed(): boolean {
    return this.owned.closed;
  }
  pin(path: string): void {
    kernelCall(() => native.objPin(this.fd, path));
  }
  close(): void {
    this.owned.close();
  }
}

export interface ProgramInfo extends NativeProgInfo {
  typeName: string;
}

export class ProgramHandle extends KernelHandle {
  readonly name: string;
  constructor(owned: OwnedFd, name: string) {
    super(owned);
    this.name = name;
  }
  static fromFd(fd: number, name: string): ProgramHandle {
    return new ProgramHandle(new OwnedFd(fd, `program ${name}`), name);
  }
  static fromId(id: number): ProgramHandle {
    return ProgramHandle.fromFd(kernelCall(() => native.fdById("prog", id)), `id ${id}`);
  }
  info(): ProgramInfo {
    const i = kernelCall(() => native.infoOfFd("prog", this.fd));
    return { ...i, typeName: progTypeName(i.type) };
  }
  get id(): number {
    return this.info().id;
  }
  dup(): ProgramHandle {
    return new ProgramHandle(this.owned.dup(), this.name);
  }
  /** Runs the program once on data with BPF_PROG_TEST_RUN (XDP/tc/skb programs). */
  testRun(data: Buffer, repeat = 1): { retval: number; durationNs: number; data: Buffer } {
    return kernelCall(() => native.testRun(this.fd, data, repeat));
  }
}

export interface MapInfo extends NativeMapInfo {
  typeName: string;
}

export interface MapEntry {
  key: Buffer;
  value: Buffer;
}

export class MapHandle extends KernelHandle {
  readonly name: string;
  readonly #info: MapInfo;
  /** Bytes a lookup returns: value size, or per-CPU: value size rounded to 8, times possible CPUs. */
  readonly valueBufferSize: number;

  constructor(owned: OwnedFd, name: string) {
    super(owned);
    this.name = name;
    const i = kernelCall(() => native.infoOfFd("map", owned.fd));
    this.#info = { ...i, typeName: mapTypeName(i.type) };
    this.valueBufferSize = isPerCpuMapType(i.type) ? perCpuStride(i.valueSize) * possibleCpus() : i.valueSize;
  }
  static fromFd(fd: number, name: string): MapHandle {
    return new MapHandle(new OwnedFd(fd, `map ${name}`), name);
  }
  /** A new, unpinned map (a map-in-map takes a map of its inner definition as the template). */
  static create(def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags?: number }, name: string, inner?: MapHandle): MapHandle {
    return MapHandle.fromFd(kernelCall(() => (inner ? native.mapCreate(def.type, def.keySize, def.valueSize, def.maxEntries, def.flags ?? 0, name, inner.fd) : native.mapCreate(def.type, def.keySize, def.valueSize, def.maxEntries, def.flags ?? 0, name))), name);
  }
  /** A new, unpinned map carrying its key and value types (raw BTF and the two type ids). */
  static createWithBtf(def: { type: number; keySize: number; valueSize: number; maxEntries: number; flags?: number }, name: string, btf: { btf: Buffer; keyTypeId: number; valueTypeId: number }): MapHandle {
    return MapHandle.fromFd(kernelCall(() => native.mapCreateWithBtf(def.type, def.keySize, def.valueSize, def.maxEntries, def.flags ?? 0, name, btf.btf, btf.keyTypeId, btf.valueTypeId)), name);
  }
  /** A hash from char[keySize] to char[valueSize] with BTF (bpftool prints both as text), allocated per entry. */
  static createStringHash(keySize: number, valueSize: number, maxEntries: number, name: string): MapHandle {
    return MapHandle.fromFd(kernelCall(() => native.mapCreateStringHash(keySize, valueSize, maxEntries, name)), name);
  }
  static fromId(id: number): MapHandle {
    return MapHandle.fromFd(kernelCall(() => native.fdById("map", id)), `id ${id}`);
  }
  info(): MapInfo {
    return { ...this.#info, id: this.#info.id };
  }
  get id(): number {
    return this.#info.id;
  }
  get keySize(): number {
    return this.#info.keySize;
  }
  get valueSize(): number {
    return this.#info.valueSize;
  }
  get perCpu(): boolean {
    return isPerCpuMapType(this.#info.type);
  }
  dup(): MapHandle {
    return new MapHandle(this.owned.dup(), this.name);
  }

  lookup(key: Buffer): Buffer | null {
    this.checkKey(key);
    return kernelCall(() => native.mapLookup(this.fd, key, this.valueBufferSize));
  }
  /**
   * Writes one entry. netns: written from inside that network namespace, for values the kernel
   * resolves in the writer's namespace (a devmap's or cpumap's ifindex).
   */
  update(key: Buffer, value: Buffer, flags = 0, netns?: string): void {
    this.checkKey(key);
    if (value.length !== this.valueBufferSize) {
      throw new RangeError(`map ${this.name}: value has ${value.length} bytes, the map takes ${this.valueBufferSize}`);
    }
    kernelCall(() => native.mapUpdate(this.fd, key, value, flags, netns));
  }
  delete(key: Buffer): boolean {
    this.checkKey(key);
    return kernelCall(() => native.mapDelete(this.fd, key));
  }
  *keys(): Generator<Buffer> {
    let key: Buffer | null = null;
    for (;;) {
      const prev: Buffer | null = key;
      key = kernelCall(() => native.mapNextKey(this.fd, prev, this.keySize));
      if (!key) return;
      yield key;
    }
  }
  /** Every entry: one BPF_MAP_LOOKUP_BATCH where the map supports it, else key iteration. */
  entries(): MapEntry[] {
    try {
      const b = kernelCall(() => native.mapLookupBatch(this.fd, this.keySize, this.valueBufferSize, this.#info.maxEntries));
      const out: MapEntry[] = [];
      for (let i = 0; i < b.count; i++) {
        out.push({
          key: b.keys.subarray(i * this.keySize, (i + 1) * this.keySize),
          value: b.values.subarray(i * this.valueBufferSize, (i + 1) * this.valueBufferSize),
        });
      }
      return out;
    } catch (e) {
      if (!isBatchUnsupported(e)) throw e;
    }
    const out: MapEntry[] = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) out.push({ key, value });
    }
    return out;
  }
  /**
   * Writes many entries with BPF_MAP_UPDATE_BATCH where the map has it (entry by entry where not),
   * in chunks so that onChunk can report a long write. With BPF_NOEXIST a key that exists is
   * skipped, not an error. Returns how many were written.
   */
  updateMany(entries: MapEntry[], flags = 0, onChunk?: (done: number) => void): number {
    let written = 0;
    for (let start = 0; start < entries.length; ) {
      onChunk?.(start);
      const chunk = entries.slice(start, start + BATCH_CHUNK);
      try {
        written += kernelCall(() => native.mapUpdateBatch(this.fd, Buffer.concat(chunk.map((e) => e.key)), Buffer.concat(chunk.map((e) => e.value)), chunk.length, flags));
        start += chunk.length;
        continue;
      } catch (e) {
        const done = (e as { updated?: number }).updated ?? 0;
        if ((e as { code?: string }).code === "EEXIST" && flags & MapUpdateFlags.noExist) {
          // the kernel stopped at an existing key: skip it and go on after it
          written += done;
          start += done + 1;
          continue;
        }
        if (!isBatchUnsupported(e) || done) throw e;
      }
      for (const e of chunk) {
        try {
          this.update(e.key, e.value, flags);
          written++;
        } catch (err) {
          if (!((err as { code?: string }).code === "EEXIST" && flags & MapUpdateFlags.noExist)) throw err;
        }
      }
      start += chunk.length;
    }
    return written;
  }
  /**
   * Deletes keys with BPF_MAP_DELETE_BATCH where the map has it (key by key where not); a key that
   * is already gone is skipped. Returns how many were deleted.
   */
  deleteMany(keys: Buffer[]): number {
    for (const k of keys) this.checkKey(k);
    let deleted = 0;
    for (let start = 0; start < keys.length; ) {
      const chunk = keys.slice(start, start + BATCH_CHUNK);
      try {
        deleted += kernelCall(() => native.mapDeleteBatch(this.fd, Buffer.concat(chunk), chunk.length));
        start += chunk.length;
        continue;
      } catch (e) {
        const done = (e as { deleted?: number }).deleted ?? 0;
        if ((e as { code?: string }).code === "ENOENT") {
          deleted += done;
          start += done + 1;
          continue;
        }
        if (!isBatchUnsupported(e) || done) throw e;
      }
      for (const k of chunk) if (this.delete(k)) deleted++;
      start += chunk.length;
    }
    return deleted;
  }
  /** Per-CPU maps: one value Buffer per possible CPU. */
  splitPerCpu(value: Buffer): Buffer[] {
    const stride = perCpuStride(this.valueSize);
    const out: Buffer[] = [];
    for (let off = 0; off + this.valueSize <= value.length; off += stride) out.push(value.subarray(off, off + this.valueSize));
    return out;
  }
  /**
   * Adds u64 deltas to the values of existing keys inside the kernel (atomically, on each CPU for
   * per-CPU maps), so that what the datapath counts meanwhile is never overwritten. Each delta
   * has the layout of a lookup's value (per CPU, for per-CPU maps).
   */
  addToValues(entries: MapEntry[]): void {
    if (!entries.length) return;
    for (const e of entries) {
      this.checkKey(e.key);
      if (e.value.length !== this.valueBufferSize) throw new RangeError(`map ${this.name}: delta has ${e.value.length} bytes, the map's values take ${this.valueBufferSize}`);
    }
    kernelCall(() => native.mapAddValues(this.fd, Buffer.concat(entries.map((e) => e.key)), Buffer.concat(entries.map((e) => e.value)), entries.length));
  }
  /** One atomic prog-array slot update (null empties the slot). */
  setProgramSlot(slot: number, program: ProgramHandle | null): void {
    if (this.#info.type !== MapType.prog_array) throw new TypeError(`map ${this.name} is a ${this.#info.typeName}, not a prog_array`);
    kernelCall(() => native.progArraySet(this.fd, slot, program ? program.fd : -1));
  }
  /** Records waiting in a ring buffer map. */
  drainRingbuf(): Buffer[] {
    return kernelCall(() => native.ringbufDrain(this.fd));
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.keySize) throw new RangeError(`map ${this.name}: key has ${key.length} bytes, the map takes ${this.keySize}`);
  }
}

export interface LinkInfo extends NativeLinkInfo {
  typeName: string;
}

export class LinkHandle extends KernelHandle {
  readonly hook: string;
  constructor(owned: OwnedFd, hook: string) {
    super(owned);
    this.hook = hook;
  }
  static fromFd(fd: number, hook: string): LinkHandle {
    return new LinkHandle(new OwnedFd(fd, `link ${hook}`), hook);
  }
  static fromId(id: number): LinkHandle {
    return LinkHandle.fromFd(kernelCall(() => native.fdById("link", id)), `id ${id}`);
  }
  info(): LinkInfo {
    const i = kernelCall(() => native.infoOfFd("link", this.fd));
    return { ...i, typeName: linkTypeName(i.type) };
  }
  /**
   * Atomically replaces the link's program (BPF_LINK_UPDATE). With expectedOld it is a
   * compare-and-swap: the kernel refuses (EPERM) if the link no longer runs that program.
   */
  update(program: ProgramHandle, expectedOld?: ProgramHandle): void {
    kernelCall(() => native.linkUpdate(this.fd, program.fd, expectedOld ? expectedOld.fd : -1));
  }
  /** Detaches the link from its hook even while pins or other fds still hold it. */
  detach(): void {
    kernelCall(() => native.linkDetach(this.fd));
  }
}

/** A u32 map key (array index, prog-array slot) in the kernel's byte order. */
export function u32Key(n: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(n);
  return k;
}

/** Sums a per-CPU array of u64 at index. */
export function readPerCpuU64(map: MapHandle, index: number, fieldOffset = 0): bigint {
  const v = map.lookup(u32Key(index));
  if (!v) return 0n;
  return map.splitPerCpu(v).reduce((a, cpu) => a + cpu.readBigUInt64LE(fieldOffset), 0n);
}

let cpus = 0;
export function possibleCpus(): number {
  if (!cpus) cpus = kernelCall(() => native.possibleCpus());
  return cpus;
}


/** Entries per batch call: bounded memory per call, and a place to report progress between calls. */
const BATCH_CHUNK = 4096;

function isBatchUnsupported(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "EINVAL" || code === "ENOTSUP" || code === "EOPNOTSUPP";
}
