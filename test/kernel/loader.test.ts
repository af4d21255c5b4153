// The object loader against the kernel: objects written for libbpf load as libbpf loads them
// (map-in-map and prog-array initial values, CO-RE, .data/.bss/.rodata, ring buffers, cgroup
// programs, unknown sections, max_entries 0), run on their hooks, and fail with clear errors.
import { describe, expect, it } from "vitest";
import { loadObject, ObjectFile } from "../../reconciler/kernel/object.ts";
import { attachCgroupLink, attachRawTracepointLink, attachTracepointLink, attachXdpLink } from "../../reconciler/kernel/attach.ts";
import { VerifierRejectedError, KernelError } from "../../reconciler/kernel/errors.ts";
import { queryCgroupHook } from "../../reconciler/kernel/observe.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { BPF, closeAtEnd, getppidCaller, needs, tempCgroup, tempLab, tempPinRoot, u32 } from "./harness.ts";

const flow = { name: "udp", dport: 5000, payload: Buffer.from("loader test") };

function u64At(map: { lookup(k: Buffer): Buffer | null }, key: number): bigint {
  return map.lookup(u32(key))?.readBigUInt64LE(0) ?? 0n;
}

describe("object loader", () => {
  it("lists programs, maps and .rodata globals before load", (ctx) => {
    needs(ctx);
    const o = closeAtEnd(ObjectFile.open(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    expect(o.programs()).toEqual([expect.objectContaining({ name: "pod_filter", section: "xdp", type: 6 })]);
    expect(o.maps().map((m) => [m.name, m.internal, m.pinPath !== null])).toEqual([
      ["pod_versions", false, true],
      ["pod_rules", false, true],
      ["pod_stats", false, true],
      ["pod_filt.rodata", true, false],
    ]);
    expect(o.globals(".rodata")).toEqual([{ name: "filter_version", offset: 0, size: 4 }]);
  });

  it("map-in-map and prog-array initial values are in place and work on XDP", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const o = closeAtEnd(await loadObject(BPF("test/t_map_in_map.o"), { pinRoot: tempPinRoot() }));
    const root = closeAtEnd(o.program("mim_root"));
    const innerA = closeAtEnd(o.map("inner_a"));
    const innerB = closeAtEnd(o.map("inner_b"));
    const outer = closeAtEnd(o.map("outer"));
    expect(outer.lookup(u32(0))!.readUInt32LE(0)).toBe(innerA.id); // outer holds inner map ids
    expect(outer.lookup(u32(1))!.readUInt32LE(0)).toBe(innerB.id);
    closeAtEnd(attachXdpLink(root, { ifname: lab.dst.ifname, netns: lab.dst.netns }));
    const r = await runTraffic(lab, { flows: [flow], pps: 20000, count: 2000 });
    expect(r.received.udp).toBe(2000);
    expect(u64At(innerA, 0)).toBe(2000n); // root ran
    expect(u64At(innerB, 0)).toBe(2000n); // tail call through the initial prog-array value ran
  });

  it("a map declared with max_entries 0 and an unknown section load once the loader sizes and types them", async (ctx) => {
    needs(ctx, "xdpLink");
    const pinRoot = tempPinRoot();
    await expect(loadObject(BPF("test/t_max_zero.o"), { pinRoot })).rejects.toThrow(/t_max_zero/);
    const o = closeAtEnd(
      await loadObject(BPF("test/t_max_zero.o"), { pinRoot }, (obj) => {
        obj.setMaxEntries("proto_counts", 256).setProgramType("proto_count", "xdp", "xdp");
      }),
    );
    const counts = closeAtEnd(o.map("proto_counts"));
    expect(counts.info().maxEntries).toBe(256);
    const lab = tempLab();
    closeAtEnd(attachXdpLink(closeAtEnd(o.program("proto_count")), { ifname: lab.dst.ifname, netns: lab.dst.netns }));
    const r = await runTraffic(lab, { flows: [flow], pps: 20000, count: 1500 });
    expect(r.received.udp).toBe(1500);
    expect(u64At(counts, 17)).toBe(1500n);
  });

  it("CO-RE reads through vmlinux.h, .data/.bss/.rodata values and a ring buffer work on a tracepoint", async (ctx) => {
    needs(ctx, "btf", "tracefs");
    const caller = await getppidCaller(50);
    const o = closeAtEnd(
      await loadObject(BPF("test/t_core_ringbuf.o"), { pinRoot: tempPinRoot() }, (obj) => obj.setGlobal("target_tgid", caller.pid)),
    );
    const data = closeAtEnd(o.map(".data"));
    const bss = closeAtEnd(o.map(".bss"));
    const rodata = closeAtEnd(o.map(".rodata"));
    expect(data.lookup(u32(0))!.readBigUInt64LE(0)).toBe(0xb0f0b0f0cafen);
    expect(rodata.lookup(u32(0))!.readUInt32LE(0)).toBe(caller.pid);
    expect(bss.lookup(u32(0))!.readBigUInt64LE(0)).toBe(0n);
    const events = closeAtEnd(o.map("events"));
    closeAtEnd(attachTracepointLink(closeAtEnd(o.program("core_getppid")), "syscalls/sys_enter_getppid"));
    await caller.run();
    const after = bss.lookup(u32(0))!;
    const at = Object.fromEntries(o.globals(".bss").map((g) => [g.name, g.offset]));
    expect(after.readBigUInt64LE(at.bss_hits!)).toBe(50n);
    expect(after.readUInt32LE(at.seen_tgid!)).toBe(caller.pid); // read with CO-RE
    const records = events.drainRingbuf();
    expect(records).toHaveLength(50);
    expect(records.map((r) => r.readBigUInt64LE(8))).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i)));
    expect(records[0]!.readUInt32LE(0)).toBe(caller.pid);
    expect(records[0]!.subarray(16).toString("latin1").replace(/\0.*$/s, "")).toBe("node");
  });

  it("tracepoint and raw tracepoint programs count one process's syscalls", async (ctx) => {
    needs(ctx, "tracefs");
    const caller = await getppidCaller(200);
    const o = closeAtEnd(await loadObject(BPF("tp_counter.o"), { pinRoot: tempPinRoot() }, (obj) => obj.setGlobal("target_tgid", caller.pid)));
    const counts = closeAtEnd(o.map("tp_counts"));
    closeAtEnd(attachTracepointLink(closeAtEnd(o.program("count_getppid")), "syscalls/sys_enter_getppid"));
    closeAtEnd(attachRawTracepointLink(closeAtEnd(o.program("count_sys_enter")), "sys_enter"));
    await caller.run();
    expect(u64At(counts, 0)).toBe(200n);
    expect(u64At(counts, 1)).toBeGreaterThanOrEqual(200n);
  });

  it("a cgroup_skb program counts what a cgroup's process sends", async (ctx) => {
    needs(ctx);
    const cg = tempCgroup();
    const o = closeAtEnd(await loadObject(BPF("test/t_cgroup_skb.o"), { pinRoot: tempPinRoot() }));
    const counts = closeAtEnd(o.map("cg_counts"));
    const prog = closeAtEnd(o.program("cg_egress"));
    const link = closeAtEnd(attachCgroupLink(prog, cg, "cgroup_inet_egress"));
    expect(queryCgroupHook(cg, "cgroup_inet_egress").progIds).toEqual([prog.id]);
    expect(link.info()).toMatchObject({ typeName: "cgroup", progId: prog.id, attachType: 1 });
    const lab = tempLab();
    const r = await runTraffic(lab, { flows: [flow], pps: 10000, count: 1000, senderCgroup: cg });
    expect(r.received.udp).toBe(1000);
    expect(u64At(counts, 0)).toBe(1000n);
    expect(u64At(counts, 1)).toBe(1000n * BigInt(20 + 8 + flow.payload.length)); // IP + UDP + payload
  });

  it("a program the verifier rejects fails with VerifierRejected, its name and the log", async (ctx) => {
    needs(ctx);
    const err = await loadObject(BPF("test/t_rejected.o"), { pinRoot: tempPinRoot() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifierRejectedError);
    const v = err as VerifierRejectedError;
    expect(v.code).toBe("VerifierRejected");
    expect(v.program).toBe("unchecked_read");
    expect(v.errnoCode).toBe("EACCES");
    expect(v.verifierLog).toMatch(/invalid access to packet/);
    expect(v.logTail(3)).toMatch(/processed \d+ insns/);
  });

  it("a pinned map reused by a second load keeps its contents", async (ctx) => {
    needs(ctx);
    const pinRoot = tempPinRoot();
    const first = await loadObject(BPF("pod_filter.o"), { pinRoot });
    const rules = first.map("pod_rules");
    const rule = Buffer.alloc(32, 7);
    rules.update(u32(5), rule);
    const id = rules.id;
    rules.close();
    first.close(); // programs go; the pinned maps stay
    const second = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot }, (o) => o.setGlobal("filter_version", 2)));
    const again = closeAtEnd(second.map("pod_rules"));
    expect(again.id).toBe(id);
    expect(again.lookup(u32(5))).toEqual(rule);
  });

  it("setGlobal refuses unknown variables and wrong sizes with a clear error", (ctx) => {
    needs(ctx);
    const o = closeAtEnd(ObjectFile.open(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    expect(() => o.setGlobal("no_such_var", 1)).toThrow(/set global no_such_var in \.rodata of .*pod_filter\.o: no such variable/);
    expect(() => o.setGlobal("filter_version", Buffer.alloc(8))).toThrow(/variable has 4 bytes, value has 8/);
    expect(() => o.setGlobal("filter_version", 2 ** 40)).toThrow(/does not fit in 4 bytes/);
  });

  it("opening a file that is not an eBPF object fails with the path in the error", (ctx) => {
    needs(ctx);
    const err = (() => {
      try {
        ObjectFile.open(Buffer.from("not an ELF file at all"), { pinRoot: tempPinRoot(), name: "garbage" });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KernelError);
    expect((err as Error).message).toMatch(/^open object garbage: /);
  });
});
