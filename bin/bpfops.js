#!/usr/bin/env node
// The bpfops command: registers the TypeScript loader, then runs reconciler/cli/main.ts.
import { register } from "tsx/esm/api";

register();
await import("../reconciler/cli/main.ts");
