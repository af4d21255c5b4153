// The JSON shape of `bpfops reconcile --dry-run --output json`: the plan as data. This schema is
// the documented contract of that output (README links here); the CLI validates against it.
import { z } from "zod";

export const PlanActionJson = z.strictObject({
  op: z.enum(["create", "load", "attach", "swap", "set-entries", "recreate", "migrate", "prune", "unchanged", "conflict", "blocked", "unowned"]),
  kind: z.enum(["Map", "Program", "Attachment", "Chain", "Other"]),
  name: z.string(),
  pin: z.string().optional().describe("the pin the action makes, changes or prunes (a chain's prog-array)"),
  linkPin: z.string().optional(),
  digest: z.string().optional().describe("the program version's content digest"),
  linkId: z.int().optional().describe("the link a swap updates or a prune removes"),
  expectProgId: z.int().optional().describe("the program a swap expects to replace (compare-and-swap)"),
  progId: z.int().optional(),
  mapId: z.int().optional(),
  entries: z.int().optional().describe("initial entries to write"),
  entryChanges: z
    .strictObject({
      added: z.int(),
      changed: z.int(),
      removed: z.int(),
      list: z
        .array(z.strictObject({ change: z.enum(["+", "~", "-"]), key: z.string(), value: z.string(), from: z.string().optional(), decoded: z.strictObject({ key: z.unknown(), value: z.unknown(), from: z.unknown().optional() }).optional() }))
        .describe("each entry (hex; decoded by the map's types when known), the first 1000"),
      truncated: z.boolean(),
    })
    .optional()
    .describe("what set-entries adds, changes and (entryPolicy exact) removes"),
  hook: z.string().optional().describe("pin name of the hook, e.g. xdp@lab-dst@dst0"),
  where: z.string().optional().describe("the hook, for people: 'xdp dst0 in netns lab-dst'"),
  slot: z.int().optional().describe("chain slot of a stage swap"),
  strategy: z.enum(["link-update", "chain-slot", "chain-rebuild", "make-before-break", "takeover", "re-place", "replace"]).optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  reason: z.string(),
  source: z.string().optional().describe("manifest file"),
});

export type PlanActionJson = z.infer<typeof PlanActionJson>;

export const VerifyResultJson = z.strictObject({
  program: z.string(),
  source: z.string(),
  verdict: z.enum(["accepted", "rejected", "error"]),
  verifiedInstructions: z.int().optional(),
  loadMs: z.number().optional(),
  logTail: z.string().optional(),
  error: z.string().optional(),
  code: z.string().optional(),
});

export const PlanJson = z.strictObject({
  apiVersion: z.literal("bpfops.dev/v1alpha1"),
  kind: z.literal("Plan"),
  source: z.string().describe("directory or url@ref the manifests came from"),
  revision: z.string().optional().describe("git commit"),
  bpffsRoot: z.string(),
  changes: z.boolean(),
  summary: z.record(z.string(), z.int()),
  warnings: z.array(z.string()).optional(),
  actions: z.array(PlanActionJson),
  verify: z.array(VerifyResultJson).optional(),
});
export type PlanJson = z.infer<typeof PlanJson>;
