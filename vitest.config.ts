import { defineConfig } from "vitest/config";

// Kernel tests send real traffic through veth pairs on a 2-core machine: files run one at a
// time so that no test's packets compete with another's for CPU.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    globalSetup: ["test/global-setup.ts"],
    // The JSON report feeds the plain "N passed, N failed" line that .ci/run prints.
    reporters: ["default", ["json", { outputFile: ".cache/vitest-results.json" }]],
  },
});
