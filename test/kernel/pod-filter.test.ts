// The packet-of-death filter's verdicts as a table, each case one rule set and one frame run
// through the loaded program (BPF_PROG_TEST_RUN): payload patterns of every length against frames
// that match, differ at either end, differ only past the pattern, or end too soon; and rules in
// every slot of the walk.
import { describe, expect, it } from "vitest";
import { loadObject } from "../../reconciler/kernel/object.ts";
import { encodePodRule, ruleKey, writePodRules, POD_MAX_RULES, POD_PATTERN_MAX, type PodRule } from "../../reconciler/lab/pod-rules.ts";
import { udpFrame, XDP } from "../../reconciler/lab/frames.ts";
import { BPF, closeAtEnd, needs, tempPinRoot } from "./harness.ts";

/** The filter's verdict on frame under rules (the first one's encoding edited by raw, if given). */
async function verdict(rules: PodRule[], frame: Buffer, raw?: (rule: Buffer) => void): Promise<number> {
  const o = await loadObject(BPF("pod_filter.o"), { pinRoot: tempPinRoot() });
  const filter = closeAtEnd(o.program("pod_filter"));
  const map = closeAtEnd(o.map("pod_rules"));
  o.close();
  writePodRules(map, rules);
  if (raw) {
    const first = encodePodRule(rules[0]!);
    raw(first);
    map.update(ruleKey(0), first);
  }
  return filter.testRun(frame).retval;
}

const OFFSET = 3;
/** A pattern of n bytes (0xa0, 0xa1, ...), at OFFSET of a UDP payload to port 5001. */
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => 0xa0 + i));
const patternRule = (n: number): PodRule => ({ action: "drop", protocol: "udp", dport: 5001, pattern: pattern(n), patternOffset: OFFSET });
/** A payload holding the pattern at OFFSET, then `after` bytes; change(bytes) edits it first. */
function payload(n: number, after: number, change: (b: Buffer) => void = () => undefined): Buffer {
  const b = Buffer.concat([Buffer.from("xyz"), pattern(n), Buffer.alloc(after, 0x55)]);
  change(b);
  return b;
}

describe("pod filter: payload patterns", () => {
  const lengths = [1, 2, 7, 8, 9, 15, 16];
  it.for(
    lengths.flatMap((n) => [
      [n, "the pattern, then more bytes", payload(n, 8), XDP.DROP],
      [n, "the pattern ending the packet", payload(n, 0), XDP.DROP],
      [n, "only the bytes after the pattern differ (they are not compared)", payload(n, 8, (b) => (b[OFFSET + n] = 0x00)), XDP.DROP],
      [n, "its first byte differs", payload(n, 8, (b) => (b[OFFSET]! ^= 0xff)), XDP.PASS],
      [n, "its last byte differs", payload(n, 8, (b) => (b[OFFSET + n - 1]! ^= 0x01)), XDP.PASS],
      [n, "the packet ends one byte before the pattern does", payload(n, 0).subarray(0, OFFSET + n - 1), XDP.PASS],
    ] as Array<[number, string, Buffer, number]>),
  )("a %i-byte pattern, %s", async ([n, , body, want], ctx) => {
    needs(ctx);
    expect(await verdict([patternRule(n)], udpFrame("10.0.0.1", 5001, body))).toBe(want);
  });
  // A rule's pattern field is 16 bytes whatever its length: what lies past the length (a rule
  // written as raw hex) is not part of the pattern.
  it.for(lengths.filter((n) => n < POD_PATTERN_MAX))("a %i-byte pattern whose rule holds other bytes past it still matches", async (n, ctx) => {
    needs(ctx);
    expect(await verdict([patternRule(n)], udpFrame("10.0.0.1", 5001, payload(n, 8)), (rule) => rule.fill(0xee, 16 + n))).toBe(XDP.DROP);
  });
});

describe("pod filter: the walk over the rules", () => {
  const port = (dport: number): PodRule => ({ action: "drop", protocol: "udp", dport });
  const filler = (n: number) => Array.from({ length: n }, (_, i) => port(20000 + i));
  it.for<[string, PodRule[], number]>([
    ["a rule in the first slot", [port(6666)], XDP.DROP],
    ["a rule in the fifth slot (the second call of the walk)", [...filler(4), port(6666)], XDP.DROP],
    ["a rule in the last slot", [...filler(POD_MAX_RULES - 1), port(6666)], XDP.DROP],
    ["no rule for the packet's port", filler(POD_MAX_RULES), XDP.PASS],
    ["the first rule that matches decides: pass before drop", [...filler(6), { action: "pass", protocol: "udp", dport: 6666 }, port(6666)], XDP.PASS],
  ])("%s", async ([, rules, want], ctx) => {
    needs(ctx);
    expect(await verdict(rules, udpFrame("10.0.0.1", 6666, Buffer.from("a packet")))).toBe(want);
  });
});
