// execute(plan, kernel) against a fake kernel port: the order of steps (prepare, commit, prune;
// maps before chains before hooks), undo in reverse on failure, compare-and-swap refusals, and
// prunes that keep going. The same execute runs against the real kernel in test/kernel.
import { describe, expect, it } from "vitest";
import { execute } from "../../reconciler/host/execute.ts";
import type { Held, KernelPort } from "../../reconciler/host/kernel-port.ts";
import { finishPlan, type PlanAction } from "../../reconciler/core/plan.ts";
import type { DesiredProgram } from "../../reconciler/core/desired.ts";

const R = "/r";
const def = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, flags: 0 };
const spec: DesiredProgram = { name: "f", source: "m.yaml", objectPath: "x.o", objectDigest: "0", program: "p", type: "xdp", globals: {}, maps: {}, digest: "b".repeat(64) };
const xdpHook = { key: "xdp@ns@eth0", hook: { type: "xdp" as const, netns: "ns", ifname: "eth0", mode: "auto" as const } };

/** A fake kernel: pins are a map of path -> id; every call is logged; fail names a call to throw on. */
function fakePort(fail: Record<string, string> = {}) {
  const log: string[] = [];
  const pins = new Map<string, number>([[`${R}/maps/m`, 1], [`${R}/programs/f/aaaa`, 10], [`${R}/links/a/xdp@ns@eth0`, 20], [`${R}/maps/pa`, 2]]);
  const slots = new Map<string, number>([["pa:0", 10]]);
  let nextId = 100;
  const held = (id: number): Held => ({ id, close: () => log.push(`close ${id}`) });
  const call = (name: string, detail: string) => {
    log.push(`${name} ${detail}`);
    if (fail[name] && detail.includes(fail[name])) throw Object.assign(new Error(`${name} failed`), { code: name === "updateLink" ? "Conflict" : "EIO" });
  };
  const port: KernelPort = {
    createMap: (_d, _n, pin, _t, beforePin) => {
      const id = nextId++;
      beforePin?.(id);
      call("createMap", pin);
      pins.set(pin, id);
    },
    writeEntries: (pin, entries) => (call("writeEntries", `${pin} ${entries.map((e) => `${e.key}=${e.value}`).join(",")}`), 0),
    typesOf: () => undefined,
    removeEntries: (pin, keys) => (call("removeEntries", `${pin} ${keys.join(",")}`), 0),
    copyEntries: (a, b) => (call("copyEntries", `${a} ${b}`), { copied: 0, dropped: 0, snapshot: new Map() }),
    carryOver: (a, b) => (call("carryOver", `${a} ${b}`), 0),
    waitForReplacedPrograms: () => call("waitForReplacedPrograms", ""),
    loadProgram: async (_a, _b, pin) => (call("loadProgram", pin), pins.set(pin, nextId++), undefined),
    holdPin: (pin) => (call("holdPin", pin), held(pins.get(pin) ?? 0)),
    holdProgram: (id) => (call("holdProgram", String(id)), held(id)),
    holdLink: (id) => (call("holdLink", String(id)), held(id)),
    pinHeld: (h, pin) => (call("pinHeld", pin), pins.set(pin, h.id), undefined),
    pinExists: (pin) => pins.has(pin),
    rename: (a, b) => {
      call("rename", `${a} -> ${b}`);
      pins.set(b, pins.get(a)!);
      pins.delete(a);
    },
    unpin: (pin) => (call("unpin", pin), pins.delete(pin), undefined),
    slotProgram: (pa, slot) => slots.get(`${pa.split("/").pop()}:${slot}`) ?? 0,
    setSlot: (pa, slot, p) => (call("setSlot", `${pa.split("/").pop()}[${slot}] = ${p === null ? "empty" : typeof p === "string" ? p : `held ${p.id}`}`), undefined),
    attach: (_h, prog, link) => (call("attach", `${link} <- ${prog}`), pins.set(link, nextId++), undefined),
    updateLink: (link, prog, expect) => call("updateLink", `${typeof link === "string" ? link : `held ${link.id}`} <- ${typeof prog === "string" ? prog : `held ${prog.id}`} expecting ${expect}`),
    detachLink: (pin) => call("detachLink", pin),
    record: (pin) => call("record", pin),
    forget: (pin) => call("forget", pin),
    idOf: (pin) => pins.get(pin) ?? 0,
    pinsUnder: (dir) => [...pins.keys()].filter((p) => p.startsWith(`${dir}/`)).sort(),
    partsOf: (pin) => [...pins.keys()].filter((p) => p.startsWith(`${pin}@`) || p.startsWith(`${pin}#`)).sort(),
    removeEmptyDirs: () => undefined,
    close: () => log.push("port closed"),
  };
  return { port, log, pins };
}

const load: PlanAction = { kind: "Program", op: "load", name: "f", source: "m.yaml", pin: `${R}/programs/f/bbbb`, digest: spec.digest, spec, mapPins: {}, replacesPin: false, fromDigests: ["aaaa"], reason: "" };
const migrate: PlanAction = { kind: "Map", op: "migrate", name: "m", source: "m.yaml", pin: `${R}/maps/m`, def: { ...def, maxEntries: 8 }, fromDef: def, mapId: 1, entries: [], overwrite: false, reason: "" };
const swap: PlanAction = { kind: "Attachment", op: "swap", strategy: "link-update", name: "a", source: "m.yaml", hook: xdpHook, linkPin: `${R}/links/a/xdp@ns@eth0`, program: "f", programPin: `${R}/programs/f/bbbb`, linkId: 20, expectProgId: 10, reason: "" };
const slot: PlanAction = { kind: "Chain", op: "swap", strategy: "chain-slot", name: "c", progArrayPin: `${R}/maps/pa`, slot: 0, expectProgId: 10, stage: "f", programPin: `${R}/programs/f/bbbb`, reason: "" };
const pruneOld: PlanAction = { kind: "Program", op: "prune", name: "f", pin: `${R}/programs/f/aaaa`, digest: "aaaa", progId: 10, reason: "" };
const objects = new Map([["x.o", Buffer.from("elf")]]);
const plan = (...actions: PlanAction[]) => finishPlan(R, actions);
const kernelSteps = (log: string[]) => log.filter((l) => /^(createMap|loadProgram|rename|setSlot|attach|updateLink|detachLink|unpin|copyEntries|carryOver)/.test(l));

describe("execute", () => {
  it("prepares (map beside, program loaded), then commits maps before chains before hooks, then prunes", async () => {
    const { port, log } = fakePort();
    const r = await execute(plan(migrate, load, slot, swap, pruneOld), port, { objects });
    expect(kernelSteps(log)).toEqual([
      "unpin /r/maps/m~next",
      "createMap /r/maps/m~next",
      "copyEntries /r/maps/m /r/maps/m~next",
      "unpin /r/programs/f/bbbb",
      "loadProgram /r/programs/f/bbbb",
      "copyEntries /r/maps/m /r/maps/m~next",
      "rename /r/maps/m -> /r/maps/m~prev",
      "rename /r/maps/m~next -> /r/maps/m",
      "setSlot pa[0] = /r/programs/f/bbbb",
      "updateLink /r/links/a/xdp@ns@eth0 <- held 101 expecting 10",
      "carryOver /r/maps/m~prev /r/maps/m", // after the hooks moved: what the datapath wrote meanwhile
      "unpin /r/maps/m~prev",
      "unpin /r/programs/f/aaaa",
    ]);
    expect(r.steps).toHaveLength(8);
    expect(r.survivors).toEqual([]);
  });

  it("a failed link update undoes every committed step in reverse and unpins what prepare made", async () => {
    const { port, log } = fakePort({ updateLink: "<- held 101" });
    await expect(execute(plan(migrate, load, slot, swap, pruneOld), port, { objects })).rejects.toThrow("updateLink failed");
    const after = kernelSteps(log).slice(kernelSteps(log).indexOf("updateLink /r/links/a/xdp@ns@eth0 <- held 101 expecting 10") + 1);
    expect(after).toEqual([
      "setSlot pa[0] = held 10", // the chain slot gets its old program back
      "rename /r/maps/m -> /r/maps/m~next", // the map switch is reversed
      "rename /r/maps/m~prev -> /r/maps/m",
      "unpin /r/programs/f/bbbb", // the loaded version goes
      "unpin /r/maps/m~next", // and the map prepared beside the old one
    ]);
    expect(log).not.toContain("unpin /r/programs/f/aaaa"); // nothing was pruned
    expect(log.at(-1)).toBe("port closed");
  });

  it("a chain slot that another tool changed since the plan is a Conflict and nothing stays changed", async () => {
    const { port, log } = fakePort();
    const stale = { ...(slot as object), expectProgId: 11 } as PlanAction;
    await expect(execute(plan(load, stale, swap), port, { objects })).rejects.toMatchObject({ code: "Conflict" });
    expect(log.filter((l) => l.startsWith("setSlot") || l.startsWith("updateLink"))).toEqual([]);
    expect(log).toContain("unpin /r/programs/f/bbbb");
  });

  it("takeover updates the foreign link in place (expecting its program), then pins it as ours", async () => {
    const { port, log } = fakePort();
    const takeover = { ...(swap as object), strategy: "takeover", linkId: 55, expectProgId: 99 } as PlanAction;
    await execute(plan(load, takeover), port, { objects });
    expect(kernelSteps(log).slice(-1)).toEqual(["updateLink held 55 <- held 100 expecting 99"]);
    expect(log).toContain("pinHeld /r/links/a/xdp@ns@eth0");
  });

  it("make-before-break attaches beside the old link and replaces it only after the commit holds", async () => {
    const { port, log } = fakePort();
    const mbb = { ...swap, strategy: "make-before-break" } as PlanAction;
    await execute(plan(load, mbb, pruneOld), port, { objects });
    expect(kernelSteps(log).slice(2)).toEqual([
      "unpin /r/links/a/xdp@ns@eth0~new",
      "attach /r/links/a/xdp@ns@eth0~new <- /r/programs/f/bbbb",
      "detachLink /r/links/a/xdp@ns@eth0",
      "rename /r/links/a/xdp@ns@eth0~new -> /r/links/a/xdp@ns@eth0",
      "unpin /r/programs/f/aaaa",
    ]);
  });

  it("a new map's provenance is recorded before its pin exists: a kill in between leaves no pin nobody owns", async () => {
    const { port, log } = fakePort();
    const create: PlanAction = { kind: "Map", op: "create", name: "m", source: "m.yaml", pin: `${R}/maps/m`, def, entries: [], overwrite: false, reason: "" };
    await execute(plan(create), port, { objects });
    expect(log.filter((l) => l.endsWith("/r/maps/m"))).toEqual(["record /r/maps/m", "createMap /r/maps/m"]);
  });

  describe("entries under entryPolicy exact", () => {
    // A revoked grant (02) goes, a changed one (01) is rewritten, a new one (03) is added.
    const setEntries: PlanAction = {
      kind: "Map", op: "set-entries", name: "allow", source: "m.yaml", pin: `${R}/maps/allow`, mapId: 5, overwrite: true, exact: true,
      entries: [{ key: "01", value: "09" }, { key: "03", value: "03" }], previous: { "01": "01" }, removes: [{ key: "02", value: "02" }], reason: "",
    };
    const entrySteps = (log: string[]) => log.filter((l) => /^(writeEntries|removeEntries)/.test(l));

    it("writes git's entries before it removes any: the map is never emptier than both policies", async () => {
      const { port, log } = fakePort();
      await execute(plan(setEntries), port, { objects });
      expect(entrySteps(log)).toEqual(["writeEntries /r/maps/allow 01=09,03=03", "removeEntries /r/maps/allow 02"]);
    });

    it("a later failure puts the entries back as they were: old values, removed keys, added keys gone", async () => {
      const { port, log } = fakePort({ updateLink: "<- held" });
      await expect(execute(plan(setEntries, load, swap), port, { objects })).rejects.toThrow("updateLink failed");
      expect(entrySteps(log)).toEqual([
        "writeEntries /r/maps/allow 01=09,03=03",
        "removeEntries /r/maps/allow 02",
        "writeEntries /r/maps/allow 01=01,02=02", // undo
        "removeEntries /r/maps/allow 03",
      ]);
    });

    it("seed has nothing to undo: it only filled what was missing", async () => {
      const { port, log } = fakePort({ updateLink: "<- held" });
      const seed = { ...(setEntries as object), exact: undefined, removes: undefined, previous: undefined } as PlanAction;
      await expect(execute(plan(seed, load, swap), port, { objects })).rejects.toThrow("updateLink failed");
      expect(entrySteps(log)).toEqual(["writeEntries /r/maps/allow 01=09,03=03"]);
    });
  });

  it("a prune that fails keeps going and reports the survivor", async () => {
    const { port, log } = fakePort({ unpin: "/r/programs/f/aaaa" });
    const pruneMap: PlanAction = { kind: "Map", op: "prune", name: "old", pin: `${R}/maps/old`, mapId: 5, reason: "" };
    const r = await execute(plan(pruneOld, pruneMap), port, { objects });
    expect(r.survivors).toEqual([{ pin: "/r/programs/f/aaaa", error: "unpin failed" }]);
    expect(log).toContain("unpin /r/maps/old");
  });

  it("an aborted run unwinds what it prepared and changes nothing traffic sees", async () => {
    const { port, log } = fakePort();
    const ac = new AbortController();
    const p = execute(plan(load, swap), port, { objects, signal: ac.signal, beforeStep: (n) => n === 0 && ac.abort(new Error("stop")) });
    await expect(p).rejects.toThrow("stop");
    expect(log.filter((l) => l.startsWith("updateLink"))).toEqual([]);
    expect(log).toContain("unpin /r/programs/f/bbbb");
  });
});
