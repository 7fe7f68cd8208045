import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    globalSetup: ['test/setup/global.ts'],
    pool: 'forks',
    maxWorkers: 3,
    // Generous: a timeout here only catches a hang, and a loaded CI runner (or a CPU-bound
    // process beside the suite) makes the slowest tests three times slower than an idle machine.
    testTimeout: 180_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
