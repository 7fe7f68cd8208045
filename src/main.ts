// `npm start`: read the environment, start Strata, stop cleanly on SIGINT/SIGTERM.
import { loadConfig } from './config/index.ts';
import { createLogger } from './logging/logger.ts';
import { startServer } from './server.ts';
import './modules.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const server = await startServer(config, {
    log,
    onFatal: (err) => {
      // Loudly, outside the structured log too: something outside Strata must restart it or call an operator.
      process.stderr.write(`strata: ${err.message}\n`);
      process.exit(1);
    },
  });
  // npm and tsx relay a terminal's Ctrl-C, so one interrupt can arrive more than once: the
  // first starts the shutdown, repeats are ignored.
  let signals = 0;
  const onSignal = (sig: string): void => {
    if (signals++ > 0) return;
    log.info({ signal: sig }, 'signal received');
    server.stop().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`strata: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
