// Pure encoding of packet-of-death rules into the pod_rules value layout of bpf/pod_filter.h.
import { describe, expect, it } from "vitest";
import { encodePodRule, type PodRule } from "../../reconciler/lab/pod-rules.ts";

const hex = (b: Buffer) => b.toString("hex");

describe("encodePodRule", () => {
  it.each<[string, PodRule | null, string]>([
    ["empty slot", null, "00".repeat(32)],
    ["drop any", { action: "drop" }, "01000000" + "00000000" + "0000" + "0000" + "00000000" + "00".repeat(16)],
    ["pass udp/53", { action: "pass", protocol: "udp", dport: 53 }, "01011100" + "00000000" + "3500" + "0000" + "00000000" + "00".repeat(16)],
    ["tcp from 10.1.0.0/16", { action: "drop", protocol: "tcp", source: "10.1.0.0/16" }, "01000610" + "0a010000" + "0000" + "0000" + "00000000" + "00".repeat(16)],
    ["single host", { action: "drop", source: "192.0.2.7" }, "01000020" + "c0000207" + "0000" + "0000" + "00000000" + "00".repeat(16)],
    ["pattern at 2", { action: "drop", pattern: Buffer.from("deadbeef", "hex"), patternOffset: 2 }, "01000000" + "00000000" + "0000" + "0200" + "04000000" + "deadbeef" + "00".repeat(12)],
  ])("%s", (_, rule, want) => {
    expect(hex(encodePodRule(rule))).toBe(want);
  });

  it.each<[string, PodRule, RegExp]>([
    ["port 0", { action: "drop", dport: 0 }, /dport 0 is not a port/],
    ["port too big", { action: "drop", dport: 70000 }, /dport 70000 is not a port/],
    ["bad CIDR", { action: "drop", source: "10.0.0/8" }, /not an IPv4 CIDR/],
    ["prefix 33", { action: "drop", source: "10.0.0.0/33" }, /not an IPv4 CIDR/],
    ["octet 256", { action: "drop", source: "10.0.0.256/32" }, /not an IPv4 CIDR/],
    ["long pattern", { action: "drop", pattern: Buffer.alloc(17) }, /1\.\.16 bytes/],
    ["empty pattern", { action: "drop", pattern: Buffer.alloc(0) }, /1\.\.16 bytes/],
  ])("rejects %s", (_, rule, msg) => {
    expect(() => encodePodRule(rule)).toThrow(msg);
  });
});
