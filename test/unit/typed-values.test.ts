// Typed keys and values as tables: types read from a real object's BTF (every type class), the
// encoders byte for byte, the decoders back to the same structures, errors with field paths, and
// layouts declared in manifests. No kernel, no root.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mapTypesById, mapTypesInObject, objectBtf, parseBtf } from "../../reconciler/core/btf.ts";
import { mapBtf } from "../../reconciler/core/btf-write.ts";
import { parseDeclaredType, typeName, type TypeDesc } from "../../reconciler/core/type-desc.ts";
import { decodeTyped, encodeTyped, intFieldAt, parseCidr, readIntField } from "../../reconciler/core/typed-values.ts";

const btf = objectBtf(readFileSync(new URL("../../bpf/test/t_types.o", import.meta.url)))!;
const typed = mapTypesInObject(btf, "t_typed")!;
const prefixes = mapTypesInObject(btf, "t_prefixes")!;
const key = typed.key!;
const value = typed.value!;
const member = (t: TypeDesc, name: string) => (t.kind === "struct" || t.kind === "union" ? t.members.find((m) => m.name === name)! : null)!;
const declared = (v: unknown) => {
  const t = parseDeclaredType(v);
  if (typeof t === "string") throw new Error(t);
  return t;
};
const hex = (b: Buffer) => b.toString("hex");

describe("BTF of a real object", () => {
  it("gives each map's key and value types with C's layout: padding, bitfields, unions, enums, big-endian typedefs", () => {
    expect(key).toMatchObject({ kind: "struct", name: "t_key", size: 28 });
    expect(member(key, "saddr")).toMatchObject({ bitOffset: 0, type: { kind: "int", size: 4, bigEndian: true } });
    expect(member(key, "daddr")).toMatchObject({ bitOffset: 32, type: { kind: "struct", name: "in6_addr", size: 16 } });
    expect(member(key, "zone")).toMatchObject({ bitOffset: 192, type: { kind: "int", size: 4, signed: true } }); // after 3 bytes of padding
    expect(member(value, "action").type).toMatchObject({ kind: "enum", size: 4, values: { ACTION_PASS: 0, ACTION_DROP: 1, ACTION_REDIRECT: 7 } });
    expect(member(value, "flags")).toMatchObject({ bitOffset: 32, bitSize: 3 });
    expect(member(value, "level")).toMatchObject({ bitOffset: 35, bitSize: 5 });
    expect(member(value, "rules").type).toMatchObject({ kind: "array", count: 2, elem: { kind: "struct", name: "port_rule", size: 8 } });
    expect(member(value, "target").type).toMatchObject({ kind: "union", size: 8 });
    expect(prefixes.key).toMatchObject({ kind: "struct", name: "lpm_v4_key", size: 8 });
    expect(prefixes.value).toMatchObject({ kind: "int", size: 4, signed: false });
  });

  it("a map the object does not declare, or declares without types, says so", () => {
    expect(mapTypesInObject(btf, "nosuch")).toBeNull();
  });
});

describe("encoding", () => {
  it.each<[string, TypeDesc, unknown, string]>([
    ["u8", declared("u8"), 255, "ff"],
    ["u16 little-endian", declared("u16"), 0x1234, "3412"],
    ["u32", declared("u32"), 1, "01000000"],
    ["u64 beyond 2^53 as a string", declared("u64"), "18446744073709551615", "ffffffffffffffff"],
    ["s8 negative", declared("s8"), -1, "ff"],
    ["s32 negative", declared("s32"), -2, "feffffff"],
    ["__be16 port in network order", declared("__be16"), 53, "0035"],
    ["__be32 as an address", declared("__be32"), "10.1.2.3", "0a010203"],
    ["u32 as an address stays in network order", declared("u32"), "10.1.2.3", "0a010203"],
    ["bool", declared("bool"), true, "01"],
    ["hex escape", declared("u32"), "hex:de ad be ef", "deadbeef"],
    ["char array as a string, NUL-padded", declared("char[8]"), "eth0", "6574683000000000"],
    ["ipv6", declared("ipv6"), "2001:db8::1", "20010db8000000000000000000000001"],
    ["ipv6 with an IPv4 tail", declared("ipv6"), "::ffff:10.0.0.1", "00000000000000000000ffff0a000001"],
    ["mac", declared("mac"), "aa:bb:cc:00:11:22", "aabbcc001122"],
    ["array of integers, the rest zero", declared("u16[3]"), [1, 2], "010002000000"],
    ["enum by name", member(value, "action").type, "ACTION_REDIRECT", "07000000"],
    ["enum by number", member(value, "action").type, 1, "01000000"],
    ["in6_addr struct from an address", member(key, "daddr").type, "fe80::1", "fe800000000000000000000000000001"],
    ["LPM key as one CIDR string", prefixes.key!, "10.0.0.0/8", "080000000a000000"],
    ["LPM key by its address field: prefixlen is set", prefixes.key!, { addr: "192.168.1.0/24" }, "18000000c0a80100"],
    ["LPM key with prefixlen given", prefixes.key!, { prefixlen: 16, addr: "172.16.0.0" }, "10000000ac100000"],
    ["declared struct with C alignment", declared([{ a: "u8" }, { b: "u32" }, { c: "u16" }]), { a: 1, b: 2, c: 3 }, "010000000200000003000000"],
    ["proto by name in a proto field", declared([{ port: "__be16" }, { proto: "u8" }, { pad: "u8" }]), { port: 53, proto: "udp" }, "00351100"],
  ])("%s", (_, t, v, want) => {
    expect(hex(encodeTyped(v, t, "entries[0].key"))).toBe(want);
  });

  it("a whole struct from BTF: nested structs, arrays, a union member, bitfields, padding left zero", () => {
    const v = { action: "ACTION_DROP", flags: 5, level: 17, label: "web", rules: [{ port: 80, proto: "tcp", hits: 0 }, { port: 443, proto: 6 }], target: { ifindex: 4 }, delta: -5, small: 65535, tiny: -128 };
    const b = encodeTyped(v, value, "value");
    expect(b.length).toBe(value.size);
    expect(hex(b.subarray(0, 4))).toBe("01000000"); // action
    expect(b[4]).toBe(5 | (17 << 3)); // flags:3 then level:5 in one byte
    expect(b.toString("utf8", 5, 8)).toBe("web");
    expect(decodeTyped(b, value)).toEqual({ ...v, rules: [{ port: 80, proto: "tcp", hits: 0 }, { port: 443, proto: "tcp", hits: 0 }] });
  });

  it.each<[string, TypeDesc, unknown, string]>([
    ["a port that does not fit __be16, deep in a BTF value", value, { rules: [{ port: 70000 }] }, "entries[3].value.rules[0].port: 70000 does not fit __be16"],
    ["the same in a declared nested struct", declared([{ rule: [{ port: "__be16" }] }]), { rule: { port: 70000 } }, "entries[3].value.rule.port: 70000 does not fit __be16"],
    ["in an array element", declared([{ ports: "__be16[2]" }]), { ports: [1, 70000] }, "entries[3].value.ports[1]: 70000 does not fit __be16"],
    ["an unknown field", member(value, "rules").type, [{ prot: 6 }], "entries[3].value[0].prot: struct port_rule has no field prot (fields: port, proto, hits)"],
    ["an enum name it does not have", member(value, "action").type, "ACTION_NOPE", 'entries[3].value: "ACTION_NOPE" is not one of enum action: ACTION_PASS, ACTION_DROP, ACTION_REDIRECT'],
    ["a union given two members", member(value, "target").type, { ifindex: 1, mac: "aa:bb:cc:dd:ee:ff" }, "entries[3].value: a union: give exactly one of ifindex, mac"],
    ["a bitfield too wide", value, { flags: 8 }, "entries[3].value.flags: 8 does not fit 3 bits"],
    ["a negative unsigned", declared("u32"), -1, "entries[3].value: -1 does not fit u32"],
    ["a string too long for its char array", declared("char[4]"), "eth10", 'entries[3].value: "eth10" is 5 bytes; char[4] holds 4'],
    ["hex of the wrong size", declared("u32"), "hex:0102", "entries[3].value: hex:0102 is not 4 bytes of hex (u32)"],
    ["too many array elements", declared("u8[2]"), [1, 2, 3], "entries[3].value: 3 elements; u8[2] holds 2"],
    ["a CIDR that does not fit the field", prefixes.key!, { addr: "2001:db8::/32" }, 'entries[3].value.addr: "2001:db8::/32" is not a CIDR prefix that fits __be32'],
    ["a fraction", declared("u16"), 1.5, "entries[3].value: 1.5 is not an integer (u16)"],
  ])("error: %s", (_, t, v, message) => {
    expect(() => encodeTyped(v, t, "entries[3].value")).toThrow(message);
  });
});

describe("decoding", () => {
  it.each<[string, TypeDesc, string, unknown, string?]>([
    ["an address field reads as an address", declared([{ saddr: "__be32" }]), "0a000001", { saddr: "10.0.0.1" }],
    ["a port reads in host order", declared([{ dport: "__be16" }]), "0050", { dport: 80 }],
    ["an LPM key reads as its prefix", prefixes.key!, "180000000a010200", { addr: "10.1.2.0/24" }],
    ["in6_addr reads as IPv6, zero runs collapsed", member(key, "daddr").type, "20010db8000000000000000000000001", "2001:db8::1"],
    ["u64 beyond 2^53 reads as a string", declared("u64"), "ffffffffffffffff", "18446744073709551615"],
    ["an unknown enum value reads as its number", member(value, "action").type, "05000000", 5],
  ])("%s", (_, t, bytes, want) => {
    expect(decodeTyped(Buffer.from(bytes, "hex"), t)).toEqual(want);
  });

  it("decodes what it encodes: a BTF key", () => {
    const k = { saddr: "192.0.2.1", daddr: "2001:db8::5", proto: "udp", zone: -3 };
    expect(decodeTyped(encodeTyped(k, key, "key"), key)).toEqual(k);
  });
});

describe("integer fields read without decoding (map metrics)", () => {
  const v = { action: "ACTION_DROP", flags: 5, level: 17, label: "web", rules: [{ port: 80, proto: "tcp", hits: 0 }, { port: 443, proto: "tcp", hits: 9 }], target: { ifindex: 4 }, delta: -5, small: 65535, tiny: -128 };
  const k = { saddr: "192.0.2.1", daddr: "2001:db8::5", proto: "udp", zone: -3 };
  const u32 = declared("u32");
  const bits: TypeDesc = { kind: "struct", name: "", size: 4, members: [{ name: "lo", bitOffset: 0, bitSize: 3, type: u32 }, { name: "hi", bitOffset: 3, bitSize: 29, type: u32 }] };
  const at = (x: unknown, path: string): unknown => (path ? path.split(".").reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], x) : x);
  it.each<[string, TypeDesc, unknown, string, number | undefined]>([
    ["a signed 64-bit member", value, v, "delta", -5],
    ["a 16-bit member after a 64-bit one", value, v, "small", 65535],
    ["a member of an array element", value, v, "rules.1.hits", 9],
    ["a signed key member after padding", key, k, "zone", -3],
    ["a whole value that is an integer", declared("u64"), 7, "", 7],
    ["an element of a declared array", declared("u32[4]"), [1, 2, 3, 4], "2", 3],
    ["an enum (shown by name)", value, v, "action", undefined],
    ["a bitfield of a byte", value, v, "level", undefined],
    ["a bitfield of a 32-bit integer", bits, { lo: 5, hi: 17 }, "hi", undefined],
    ["a character array", value, v, "label", undefined],
    ["a member of a union", value, v, "target.ifindex", undefined],
    ["one byte (maybe a protocol)", value, v, "tiny", undefined],
    ["a port in network byte order", value, v, "rules.0.port", undefined],
    ["an address", key, k, "saddr", undefined],
    ["an element past the array's end", value, v, "rules.2.hits", undefined],
    ["a member that is not there", value, v, "nosuch", undefined],
    ["a struct, not an integer", value, v, "rules.0", undefined],
  ])("%s", (_, t, x, path, expected) => {
    const f = intFieldAt(t, path);
    if (expected === undefined) return expect(f).toBeUndefined();
    expect(f).toBeDefined();
    // Read from the bytes, the field is what decoding the whole value shows.
    const bytes = encodeTyped(x, t, "value");
    expect(readIntField(bytes, f!)).toBe(expected);
    expect(at(decodeTyped(bytes, t), path)).toBe(expected);
  });
});

describe("declared layouts", () => {
  it.each<[string, unknown, string]>([
    ["an unknown type name", "u24", 'type: unknown type "u24"'],
    ["a field declared twice", [{ a: "u8" }, { a: "u8" }], "[1]: field a is declared twice"],
    ["a field that is not one mapping", [{ a: "u8", b: "u8" }], "[0]: a field is one mapping, name: type"],
    ["an empty struct", [], "a struct needs at least one field"],
  ])("error: %s", (_, v, message) => {
    expect(parseDeclaredType(v)).toContain(message);
  });

  it("names types the way C does, for messages", () => {
    expect(typeName(declared([{ saddr: "__be32" }, { ports: "__be16[2]" }]))).toBe("struct { __be32 saddr; __be16[2] ports; }");
  });

  it("parses CIDR prefixes of both families and refuses the rest", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ bits: 8 });
    expect(parseCidr("2001:db8::/32")).toMatchObject({ bits: 32 });
    expect(parseCidr("10.0.0.0/33")).toBeNull();
    expect(parseCidr("10.0.0.0")).toBeNull();
  });
});

describe("BTF for a map bpfops creates", () => {
  it.each<[string, { key?: TypeDesc; value?: TypeDesc }, unknown, unknown]>([
    ["the types of a real object, every class", { key, value }, { saddr: "192.0.2.1", daddr: "2001:db8::5", proto: "udp", zone: -3 }, { action: "ACTION_DROP", flags: 5, level: 17, label: "web", rules: [{ port: 80, proto: "tcp", hits: 0 }, { port: 443, proto: "tcp", hits: 9 }], target: { ifindex: 4 }, delta: -5, small: 65535, tiny: -128 }],
    ["declared types: addresses, ports, a protocol", { key: declared([{ saddr: "ipv4" }, { dport: "__be16" }, { proto: "u8" }, { pad: "u8" }]), value: declared("u32") }, { saddr: "10.0.0.1", dport: 53, proto: "udp", pad: 0 }, 1],
    ["an LPM key and an IPv6 value", { key: prefixes.key!, value: declared([{ via: "ipv6" }, { mac: "mac" }]) }, { addr: "10.1.0.0/16" }, { via: "fe80::1", mac: "aa:bb:cc:dd:ee:ff" }],
  ])("%s: written as BTF and read back, the types encode and decode the same", (_, types, k, v) => {
    const { btf, keyTypeId, valueTypeId } = mapBtf(types, types.key!.size, types.value!.size);
    const back = mapTypesById(parseBtf(btf), keyTypeId, valueTypeId);
    expect(back.key!.size).toBe(types.key!.size);
    expect(back.value!.size).toBe(types.value!.size);
    expect(hex(encodeTyped(k, back.key!, "key"))).toBe(hex(encodeTyped(k, types.key!, "key")));
    expect(hex(encodeTyped(v, back.value!, "value"))).toBe(hex(encodeTyped(v, types.value!, "value")));
    expect(decodeTyped(encodeTyped(k, types.key!, "key"), back.key!)).toEqual(k);
    expect(decodeTyped(encodeTyped(v, types.value!, "value"), back.value!)).toEqual(v);
  });

  it("a side without a known type is bytes, shown as hex", () => {
    const { btf, keyTypeId, valueTypeId } = mapBtf({ value: declared("u32") }, 8, 4);
    const back = mapTypesById(parseBtf(btf), keyTypeId, valueTypeId);
    expect(decodeTyped(Buffer.from("0102030405060708", "hex"), back.key!)).toBe("hex:0102030405060708");
  });
});
