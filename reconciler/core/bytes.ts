// Keys, values and globals written as bytes in manifests: "hex:..." or an integer,
// little-endian at the field's size. The escape hatch under the typed encoders. Pure.

const HEX_BYTES = /^hex:(\s*[0-9a-fA-F]{2})+\s*$/;

/** An entry's key or value as bytes of the given size, or why not (entries files are not schema-checked). */
export function encodeEntryBytes(v: unknown, size: number): Buffer | string {
  if (typeof v === "string") {
    if (!HEX_BYTES.test(v)) return `"${v.length > 40 ? v.slice(0, 40) + "..." : v}" is not hex:<bytes> or an unsigned integer`;
    return encodeValue(v, size) ?? `${v} does not fit`;
  }
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return encodeInteger(v, size) ?? `${v} does not fit`;
  return `${JSON.stringify(v)} is not hex:<bytes> or an unsigned integer`;
}

/** Encodes a key, value or global as bytes of the given size; null when it does not fit. */
export function encodeValue(v: string | number | boolean, size: number): Buffer | null {
  if (typeof v === "string") {
    const b = Buffer.from(v.slice(4).replace(/\s+/g, ""), "hex");
    return b.length === size ? b : null;
  }
  return encodeInteger(v, size);
}

/** An integer (or boolean) little-endian in size bytes, signed or unsigned; null when it does not fit. */
export function encodeInteger(v: number | bigint | boolean, size: number): Buffer | null {
  // The common case (an unsigned number up to 48 bits) without BigInt: large entry sets are mostly this.
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && size >= 1 && size <= 6) {
    if (v >= 2 ** (8 * size)) return null;
    const b = Buffer.alloc(size);
    b.writeUIntLE(v, 0, size);
    return b;
  }
  const n = typeof v === "boolean" ? (v ? 1n : 0n) : BigInt(v);
  if (size > 8 || size < 1) return null;
  const bits = BigInt(size * 8);
  if (n >= 1n << bits || n < -(1n << (bits - 1n))) return null;
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, n));
  return b.subarray(0, size);
}

