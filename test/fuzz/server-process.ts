// A Strata server in a process of its own, configured by the environment like `npm start`, for
// the fuzz suite: a mutant that stalls it cannot stall the test that measures the stall.
import '../../src/modules.ts';
import { loadConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { startServer } from '../../src/server.ts';

const server = await startServer(loadConfig(process.env), { log: silentLogger(), quiet: true });
process.stdout.write(`READY ${server.url}\n`);
