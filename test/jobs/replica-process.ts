// A Strata replica in a process of its own, for tests that kill it mid-run. Configured by the
// environment like `npm start`; adds the job `handover`, which with HANDOVER=hang never ends.
import '../../src/modules.ts';
import { loadConfig } from '../../src/config/index.ts';
import { registerJob } from '../../src/jobs/registry.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { startServer } from '../../src/server.ts';

registerJob({
  name: 'handover', description: 'hangs in the child replica', defaultIntervalMs: 3_600_000,
  async run() {
    if (process.env.HANDOVER === 'hang') await new Promise(() => undefined);
    return { rows: 1 };
  },
});

const server = await startServer(loadConfig(process.env), { log: silentLogger(), quiet: true });
process.stdout.write(`READY ${server.url} ${process.pid}\n`);
