// setBounded as a table: what a bounded map holds after a sequence of sets.
import { describe, expect, it } from "vitest";
import { setBounded } from "../../reconciler/core/bounded-map.ts";

describe("setBounded", () => {
  it.each<[string, Array<[string, number]>, number, Array<[string, number]>]>([
    ["under the bound, everything is kept in order", [["a", 1], ["b", 2]], 3, [["a", 1], ["b", 2]]],
    ["over the bound, the oldest goes", [["a", 1], ["b", 2], ["c", 3]], 2, [["b", 2], ["c", 3]]],
    ["setting a kept key again changes its value, not its age", [["a", 1], ["b", 2], ["a", 9], ["c", 3]], 2, [["b", 2], ["c", 3]]],
    ["a bound of one keeps the last", [["a", 1], ["b", 2], ["c", 3]], 1, [["c", 3]]],
  ])("%s", (_, sets, max, held) => {
    const m = new Map<string, number>();
    for (const [k, v] of sets) setBounded(m, k, v, max);
    expect([...m]).toEqual(held);
  });
});
