// Pruning keeps the newest backups and every WAL segment from the oldest kept backup's first one
// on (timeline history files always); older backups and the segments only they needed go.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Manifest, MANIFEST_FORMAT } from '../../src/backup/manifest.ts';
import { pruneBackups } from '../../src/backup/prune.ts';
import { removeDir, tempDir } from '../faults/lib.ts';

let dir: string;
beforeAll(async () => { dir = await tempDir('strata-prune-'); });
afterAll(async () => { await removeDir(dir); });

async function fakeBackup(id: string, startWal: string): Promise<void> {
  const m: Partial<Manifest> = { format: MANIFEST_FORMAT, id, start_wal: startWal, stop_wal: startWal, wal_segment_bytes: 16 * 1024 * 1024, finished_at: new Date().toISOString() };
  await mkdir(path.join(dir, 'base', id, 'pg'), { recursive: true });
  await writeFile(path.join(dir, 'base', id, 'manifest.json'), JSON.stringify(m));
}

describe('pruning', () => {
  it('keeps the newest backups and the WAL they need', async () => {
    await mkdir(path.join(dir, 'wal'), { recursive: true });
    const segs = ['0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000', '000000010000000100000001', '000000010000000100000002'];
    for (const s of segs) {
      await writeFile(path.join(dir, 'wal', s), 'x');
      await writeFile(path.join(dir, 'wal', `${s}.sha256`), 'x');
    }
    await writeFile(path.join(dir, 'wal', '00000002.history'), 'x');
    await fakeBackup('20260101T000000000Z', segs[0]);
    await fakeBackup('20260102T000000000Z', segs[1]);
    await fakeBackup('20260103T000000000Z', segs[3]);
    const r = await pruneBackups(dir, 2);
    expect(r).toEqual({ backups: ['20260101T000000000Z'], wal_segments: 1 });
    expect(await readdir(path.join(dir, 'base'))).toEqual(['20260102T000000000Z', '20260103T000000000Z']);
    expect((await readdir(path.join(dir, 'wal'))).filter((n) => !n.endsWith('.sha256')).sort()).toEqual(['00000002.history', ...segs.slice(1)].sort());
    expect(await pruneBackups(dir, 2)).toEqual({ backups: [], wal_segments: 0 });
  });
});
