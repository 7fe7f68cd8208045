// Starts the child process that copies a base backup's files (copy-child.ts). Its priority is
// lowered first, before it does any work: nice 19, so that when the CPU is short the kernel gives
// it to Strata and PostgreSQL's backends first (and, with the CFQ/BFQ I/O schedulers, the disk too).
// A child process does not inherit the TypeScript loader the server runs under, so it registers tsx.
import os from 'node:os';

try {
  os.setPriority(0, 19);
} catch {
  // Refused (a sandbox): the copy still runs, at the server's priority.
}
const { register } = await import('tsx/esm/api');
register();
await import('./copy-child.ts');
