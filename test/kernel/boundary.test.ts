// The rest of the native boundary against the kernel: map I/O and batches, pins, links and
// their compare-and-swap updates, observation of hooks, clear errors, and no fd leaks.
import { describe, expect, it } from "vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadObject } from "../../reconciler/kernel/object.ts";
import { attachTcxLink, attachXdpLink } from "../../reconciler/kernel/attach.ts";
import { enableRunTimeStats, listLinks, listMaps, listPrograms, queryTcxHook, queryXdpHook } from "../../reconciler/kernel/observe.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { listPins, openPin, openPinnedLink, openPinnedMap, pinKind, unpin } from "../../reconciler/kernel/pins.ts";
import { KernelError } from "../../reconciler/kernel/errors.ts";
import { LinkHandle, MapHandle, ProgramHandle } from "../../reconciler/kernel/handles.ts";
import { MapUpdateFlags } from "../../schemas/kernel-names.ts";
import { BPF, closeAtEnd, needs, openFdCount, tempLab, tempPinRoot, u32, u64 } from "./harness.ts";

describe("maps", () => {
  it("lookup, update with flags, delete, iterate, batch dump and batch update on a hash map", async (ctx) => {
    needs(ctx);
    const o = closeAtEnd(await loadObject(BPF("test/t_max_zero.o"), { pinRoot: tempPinRoot() }, (x) => x.setMaxEntries("proto_counts", 128).setProgramType("proto_count", "xdp")));
    const m = closeAtEnd(o.map("proto_counts"));
    expect(m.lookup(u32(1))).toBeNull();
    m.update(u32(1), u64(10), MapUpdateFlags.noExist);
    expect(() => m.update(u32(1), u64(11), MapUpdateFlags.noExist)).toThrow(expect.objectContaining({ code: "EEXIST", syscall: "BPF_MAP_UPDATE_ELEM" }));
    expect(() => m.update(u32(2), u64(11), MapUpdateFlags.exist)).toThrow(expect.objectContaining({ code: "ENOENT" }));
    expect(m.updateMany(Array.from({ length: 100 }, (_, i) => ({ key: u32(i + 10), value: u64(i) })))).toBe(100);
    expect([...m.keys()]).toHaveLength(101);
    const all = m.entries();
    expect(all).toHaveLength(101);
    expect(Object.fromEntries(all.map((e) => [e.key.readUInt32LE(0), e.value.readBigUInt64LE(0)]))[55]).toBe(45n);
    expect(m.delete(u32(1))).toBe(true);
    expect(m.delete(u32(1))).toBe(false);
    expect(() => m.lookup(Buffer.alloc(8))).toThrow(/key has 8 bytes, the map takes 4/);
  });

  it("per-CPU values come back one per possible CPU", async (ctx) => {
    needs(ctx);
    const o = closeAtEnd(await loadObject(BPF("tcx_counter.o"), { pinRoot: tempPinRoot() }));
    const m = closeAtEnd(o.map("tcx_counts"));
    expect(m.perCpu).toBe(true);
    const v = m.lookup(u32(0))!;
    expect(m.splitPerCpu(v).length * 16).toBe(v.length);
    expect(m.entries()).toHaveLength(4); // array maps: every index
  });
});

describe("pins", () => {
  it("pins and reopens programs, maps and links, and tells them apart", async (ctx) => {
    needs(ctx, "tcx");
    const root = tempPinRoot();
    const lab = tempLab();
    const o = closeAtEnd(await loadObject(BPF("tcx_counter.o"), { pinRoot: root }));
    const prog = closeAtEnd(o.program("tcx_counter"));
    prog.pin(`${root}/prog`);
    const link = closeAtEnd(attachTcxLink(prog, { ifname: lab.dst.ifname, netns: lab.dst.netns, direction: "ingress" }));
    link.pin(`${root}/link`);
    expect(listPins(root)).toEqual([
      { path: `${root}/link`, kind: "link" },
      { path: `${root}/prog`, kind: "prog" },
      { path: `${root}/tcx_counts`, kind: "map" },
    ]);
    expect(pinKind(`${root}/prog`)).toBe("prog");
    expect(closeAtEnd(openPin(`${root}/prog`))).toBeInstanceOf(ProgramHandle);
    expect(closeAtEnd(openPin(`${root}/tcx_counts`))).toBeInstanceOf(MapHandle);
    const reopened = closeAtEnd(openPinnedLink(`${root}/link`));
    expect(reopened).toBeInstanceOf(LinkHandle);
    expect(reopened.info().progId).toBe(prog.id);
    expect(() => openPinnedMap(`${root}/prog`)).toThrow(/holds a prog, expected a map/);
    expect(unpin(`${root}/link`)).toBe(true);
    expect(unpin(`${root}/link`)).toBe(false);
  });

  it("a bad pin path gives ENOENT naming the path", (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    expect(() => openPin(`${root}/missing`)).toThrow(expect.objectContaining({ code: "ENOENT", message: `open pin ${root}/missing: No such file or directory` }));
  });
});

describe("links and observation", () => {
  it("XDP and tcx links: observed on their hook in their namespace, updated only with the expected old program", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const v1 = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: root }));
    const v2 = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: root }, (o) => o.setGlobal("filter_version", 2)));
    const p1 = closeAtEnd(v1.program("pod_filter"));
    const p2 = closeAtEnd(v2.program("pod_filter"));
    const hook = { ifname: lab.dst.ifname, netns: lab.dst.netns };
    const xdp = closeAtEnd(attachXdpLink(p1, hook));
    expect(queryXdpHook(hook)).toMatchObject({ progId: p1.id, mode: "driver", ifindex: xdp.ifindex });
    expect(listLinks().find((l) => l.id === xdp.info().id)).toMatchObject({ typeName: "xdp", progId: p1.id, ifindex: xdp.ifindex });
    expect(() => xdp.update(p1, p2)).toThrow(expect.objectContaining({ code: "EPERM", syscall: "BPF_LINK_UPDATE" }));
    xdp.update(p2, p1);
    expect(queryXdpHook(hook).progId).toBe(p2.id);
    // A second XDP link on the same interface is refused: the hook has one owner.
    expect(() => attachXdpLink(p1, hook)).toThrow(expect.objectContaining({ code: "EBUSY" }));

    const t = closeAtEnd(await loadObject(BPF("tcx_counter.o"), { pinRoot: root }));
    const tp = closeAtEnd(t.program("tcx_counter"));
    const t2 = closeAtEnd(await loadObject(BPF("tcx_counter.o"), { pinRoot: root }, (o) => o.setGlobal("counter_version", 2)));
    const tp2 = closeAtEnd(t2.program("tcx_counter"));
    const tcx1 = closeAtEnd(attachTcxLink(tp, { ...hook, direction: "ingress" }));
    const tcx2 = closeAtEnd(attachTcxLink(tp2, { ...hook, direction: "ingress", before: tp }));
    const q = queryTcxHook({ ...hook, direction: "ingress" });
    expect(q.progIds).toEqual([tp2.id, tp.id]);
    expect(q.linkIds).toEqual([tcx2.info().id, tcx1.info().id]);
    expect(tcx1.info()).toMatchObject({ typeName: "tcx", attachType: 46, ifindex: tcx1.ifindex });
    tcx2.detach();
    expect(queryTcxHook({ ...hook, direction: "ingress" }).linkIds).toEqual([tcx1.info().id]);
    expect(queryTcxHook({ ...hook, direction: "egress" }).progIds).toEqual([]);

    const progs = listPrograms();
    expect(progs.find((p) => p.id === p2.id)).toMatchObject({ name: "pod_filter", typeName: "xdp", tag: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(progs.find((p) => p.id === p2.id)!.verifiedInstructions).toBeGreaterThan(0);
    expect(listMaps().map((m) => m.name)).toContain("pod_rules");
  });

  it("with run-time stats on, program info counts every run", async (ctx) => {
    needs(ctx, "bpfStats", "xdpLink");
    const lab = tempLab();
    const stats = closeAtEnd(enableRunTimeStats());
    const o = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    const p = closeAtEnd(o.program("pod_filter"));
    closeAtEnd(attachXdpLink(p, { ifname: lab.dst.ifname, netns: lab.dst.netns }));
    await runTraffic(lab, { flows: [{ name: "udp", dport: 5000, payload: Buffer.from("stats") }], pps: 10000, count: 1000 });
    const info = p.info();
    expect(info.runCount).toBe(1000);
    expect(info.runTimeNs).toBeGreaterThan(0);
    stats.close();
  });

  it("attaching to a missing interface names it and its namespace", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const o = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    const err = (() => {
      try {
        attachXdpLink(closeAtEnd(o.program("pod_filter")), { ifname: "nope0", netns: lab.dst.netns });
      } catch (e) {
        return e;
      }
    })() as KernelError;
    expect(err).toBeInstanceOf(KernelError);
    expect(err.code).toBe("ENODEV");
    expect(err.errorClass).toBe("Waiting");
    expect(err.message).toBe(`attach xdp nope0 in netns ${lab.dst.netns}: No such device`);
  });

  it("attaching a program of the wrong type to a hook is refused clearly", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const o = closeAtEnd(await loadObject(BPF("tcx_counter.o"), { pinRoot: tempPinRoot() }));
    expect(() => attachXdpLink(closeAtEnd(o.program("tcx_counter")), { ifname: lab.dst.ifname, netns: lab.dst.netns })).toThrow(
      expect.objectContaining({ code: "EINVAL", message: `attach xdp dst0 in netns ${lab.dst.netns}: Invalid argument` }),
    );
  });

  it("a missing namespace is named in the error", async (ctx) => {
    needs(ctx);
    const o = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    expect(() => attachXdpLink(closeAtEnd(o.program("pod_filter")), { ifname: "lo", netns: "bpfops-no-such-ns" })).toThrow(
      "attach xdp lo in netns bpfops-no-such-ns: No such file or directory",
    );
  });
});

describe("file descriptors", () => {
  it("1,000 open/load/handle/close cycles leak no fd", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const before = openFdCount();
    for (let i = 0; i < 1000; i++) {
      const o = await loadObject(BPF("tp_counter.o"), { pinRoot: root });
      const p = o.program("count_getppid");
      const m = o.map("tp_counts");
      m.lookup(u32(0));
      p.close();
      m.close();
      o.close();
    }
    expect(openFdCount()).toBe(before);
  });

  it("handles dropped without close() are closed by the garbage collector", async (ctx) => {
    needs(ctx);
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const root = tempPinRoot();
    const o = closeAtEnd(await loadObject(BPF("tp_counter.o"), { pinRoot: root }));
    const before = openFdCount();
    (() => {
      for (let i = 0; i < 200; i++) o.program("count_getppid");
    })();
    expect(openFdCount()).toBe(before + 200);
    for (let i = 0; i < 10 && openFdCount() > before; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(openFdCount()).toBe(before);
  });
});

describe("the native boundary checks what it is given", () => {
  const hash = (maxEntries = 16) => closeAtEnd(MapHandle.create({ type: 1, keySize: 4, valueSize: 8, maxEntries, flags: 1 /* BPF_F_NO_PREALLOC */ }, "bpfops_t_bound"));
  it.each<[string, (m: MapHandle, n: typeof import("../../reconciler/kernel/native.ts").native) => unknown, RegExp]>([
    ["a short key on update", (m, n) => n.mapUpdate(m.fd, Buffer.alloc(2), Buffer.alloc(8)), /key has 2 bytes; map fd \d+ takes 4/],
    ["a short value on update (the kernel would read past it)", (m, n) => n.mapUpdate(m.fd, Buffer.alloc(4), Buffer.alloc(1)), /value has 1 bytes; map fd \d+ takes 8/],
    ["a long value buffer on lookup (the kernel would write past a short one)", (m, n) => n.mapLookup(m.fd, Buffer.alloc(4), 4096), /valueSize has 4096 bytes; map fd \d+ takes 8/],
    ["a short key on delete", (m, n) => n.mapDelete(m.fd, Buffer.alloc(3)), /key has 3 bytes/],
    ["batch values that do not match the count", (m, n) => n.mapUpdateBatch(m.fd, Buffer.alloc(8), Buffer.alloc(8), 2), /keys has 8 bytes; map fd \d+ takes 8|values has 8 bytes/],
    ["a fractional fd", (_m, n) => n.mapLookup(3.5, Buffer.alloc(4), 8), /fd must be an integer/],
    ["a negative fd", (_m, n) => n.mapLookup(-2, Buffer.alloc(4), 8), /fd must be a file descriptor/],
  ])("refuses %s with an error, not memory corruption", async (_, call, message) => {
    const { native } = await import("../../reconciler/kernel/native.ts");
    const m = hash();
    expect(() => call(m, native)).toThrow(message);
    expect(m.entries()).toEqual([]); // nothing was written
  });

  it("dumps a huge, sparse map in chunks: memory follows the entries, not maxEntries", () => {
    const m = hash(1 << 24);
    for (let i = 0; i < 5000; i++) m.update(u32(i), u64(i));
    const before = process.memoryUsage().arrayBuffers;
    const all = m.entries();
    expect(all).toHaveLength(5000);
    // 2^24 entries of 12 bytes would be 192 MiB up front.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
  });
});
