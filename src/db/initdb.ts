// Creates the embedded PostgreSQL's cluster. initdb takes the superuser's password from a file;
// that file lives only while initdb runs, in a directory of its own (mode 700, owned by the user
// initdb runs as) beside the cluster — never in a shared temporary directory where others could
// read it, and removed whatever initdb does.
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type EmbeddedLayout, run } from './embedded-layout.ts';

export async function initCluster(layout: EmbeddedLayout, password: string): Promise<void> {
  const { ids, bin, pgDir } = layout;
  const secretDir = await mkdtemp(path.join(path.dirname(pgDir), '.initdb-'));
  try {
    const pwfile = path.join(secretDir, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (ids.uid !== undefined) {
      await chown(secretDir, ids.uid, ids.gid as number);
      await chown(pwfile, ids.uid, ids.gid as number);
      await chown(pgDir, ids.uid, ids.gid as number);
    }
    const result = await run(bin.initdb, [
      `--pgdata=${pgDir}`, '--username=postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256',
      '--encoding=UTF8', '--locale=C',
    ], ids);
    if (result.code !== 0) throw new Error(`cannot initialise the embedded PostgreSQL in ${pgDir}: ${result.out.trim()}`);
  } finally {
    await rm(secretDir, { recursive: true, force: true });
  }
}
