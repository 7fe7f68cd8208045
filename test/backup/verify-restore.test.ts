// The restore checks on a database restored by other means (DATABASE_URL): `strata verify-restore`
// passes on an intact copy and names what is wrong otherwise (rows missing from an ingest, an
// original missing, data after the target); `strata backup --originals-only` copies the originals
// of such a database, and a full backup of it is refused.
import { readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRestored } from '../../src/backup/verify-restore.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM, arrowBody, removeDir, tempDir } from '../faults/lib.ts';
import { cli } from './lib.ts';

let t: TestApp;
let backupDir: string;
const ids: string[] = [];

beforeAll(async () => {
  t = await createTestApp();
  backupDir = await tempDir('strata-verify-backup-');
  for (let i = 0; i < 3; i++) {
    const r = await t.request('/v1/streams/vr/ingest', { method: 'POST', body: arrowBody(1, 200, i), headers: { 'content-type': ARROW_STREAM } });
    expect(r.status).toBe(201);
    ids.push(String(((await r.json()) as { ingest: { id: string } }).ingest.id));
  }
});
afterAll(async () => {
  await t.close();
  await removeDir(backupDir);
});

const env = (): Record<string, string> => ({ DATABASE_URL: t.db.url, STRATA_ARCHIVE_DIR: t.config.archiveDir, STRATA_BACKUP_DIR: backupDir });

describe('verify-restore and originals-only backups with DATABASE_URL', () => {
  it('passes on an intact database, copies the originals, refuses a full backup', async () => {
    const ok = await cli(['verify-restore'], env());
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, audit: { ok: true }, ingests: { committed: 3, rows: 600, problems: [] }, originals: { checked: 3 } });

    const copied = await cli(['backup', '--originals-only'], env());
    expect(copied.code, copied.stderr).toBe(0);
    expect(JSON.parse(copied.stdout)).toMatchObject({ originals_copied: 3, originals: 3 });
    expect((await readdir(path.join(backupDir, 'originals'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f))).toHaveLength(3);

    const full = await cli(['backup'], env());
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(/with DATABASE_URL Strata does not back the database up/);
  });

  it('names rows missing from an ingest, a missing original, and data after the target', async () => {
    const { rows } = await t.db.pool.query<{ table_name: string; sha256: string }>(
      'SELECT s.table_name, i.sha256 FROM strata.ingests i JOIN strata.streams s ON s.id = i.stream_id WHERE i.id = $1', [ids[1]]);
    await t.db.pool.query(`DELETE FROM strata_data."${rows[0].table_name}" WHERE ingest_id = $1 AND ctid IN (SELECT ctid FROM strata_data."${rows[0].table_name}" WHERE ingest_id = $1 LIMIT 5)`, [ids[1]]);
    const file = path.join(t.config.archiveDir, rows[0].sha256.slice(0, 2), rows[0].sha256);
    await rename(file, `${file}.away`);
    const target = new Date(Date.now() - 3_600_000);
    try {
      const checks = await checkRestored(t.db.pool, { archiveDir: t.config.archiveDir, target: null });
      expect(checks.ok).toBe(false);
      expect(checks.ingests.problems).toEqual([{ ingest: ids[1], problem: `195 rows in ${rows[0].table_name}, 200 expected` }]);
      expect(checks.originals.missing).toEqual([{ ingest: ids[1], sha256: rows[0].sha256 }]);
      const early = await checkRestored(t.db.pool, { archiveDir: t.config.archiveDir, target });
      expect(early.after_target.ingests).toEqual(ids);
      expect(early.ingests.committed).toBe(0);
      const bad = await cli(['verify-restore'], env());
      expect(bad.code).toBe(1);
    } finally {
      await rename(`${file}.away`, file);
    }
  });
});
