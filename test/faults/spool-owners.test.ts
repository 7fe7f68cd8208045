// Whose spool files a start may remove: those of processes on this machine that no longer run
// (also when their pid now belongs to another process), never those of a live process or of
// another machine; files from before names carried an owner only once they are an hour old.
// The claims among the removed files become rejected ingests (interrupted).
import { readFileSync } from 'node:fs';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextIngestId } from '../../src/provenance/ingest-records.ts';
import { UploadClaim, recoverSpool, spoolFileName } from '../../src/ingest/upload-claims.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { ingestRecord, removeDir, tempDir } from './lib.ts';

let db: TestDb;
let spool: string;

beforeAll(async () => {
  db = await createTestDb();
  spool = await tempDir('strata-faults-spool-');
});

afterAll(async () => {
  await db?.drop();
  await removeDir(spool);
});

const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 64);

function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
}

function facts(id: bigint): Parameters<typeof UploadClaim.write>[1] {
  return {
    id, streamId: null, streamName: 'rig', keyId: null, instrument: 'rig-7', receivedAt: new Date(), format: 'arrow-stream',
    contentType: 'application/vnd.apache.arrow.stream', contentEncoding: null, bytes: 0, inflatedBytes: null, sha256: null,
    contentSha256: null, rows: 0, timeMin: null, timeMax: null, subMicrosecondCount: 0, filename: 'run-12.arrow', idempotencyKey: null,
    clientProvenance: { operator: 'ada' }, fileMetadata: null, mapping: null, versions: {}, warnings: [], chunks: [], archivePath: null, fieldStats: null,
  } as Parameters<typeof UploadClaim.write>[1];
}

describe('spool files at start', () => {
  it('are removed only when their owner no longer runs here; its claims become interrupted ingests', async () => {
    const id = await nextIngestId(db);
    // A claim written by this process, renamed as if a dead process (a pid that runs, but started at another time) had written it.
    const live = await UploadClaim.write(spool, facts(id), { keyId: null, role: 'system' });
    const mine = (await readdir(spool)).find((f) => f.startsWith('claim.')) as string;
    const reusedPid = `${host}~1~${Number(startOf(1)) + 1}`;
    const deadName = mine.replace(/~\d+~\d+\./, `~1~${Number(startOf(1)) + 1}.`);
    await writeFile(path.join(spool, deadName), readFileSync(path.join(spool, mine)));
    await live.remove();

    const self = `${host}~${process.pid}~${startOf(process.pid)}`;
    const files = {
      dead: [deadName, `body.${reusedPid}.0b0e8f5c-7d7e-4d7b-9a57-2f1f2f6f0a11`, `decoded.${host}~4194000~12.x`],
      kept: [
        spoolFileName('body', 'still-receiving'), `body.${self}.other`, // this live process
        'body.elsewhere.example~4194000~12.abc', // another machine: cannot tell
        'body-11111111-2222-3333-4444-555555555555', // legacy, recent
        'notes.txt', // not a spool file
      ],
      oldLegacy: 'decoded-11111111-2222-3333-4444-666666666666',
    };
    for (const f of [...files.dead.slice(1), ...files.kept, files.oldLegacy]) await writeFile(path.join(spool, f), 'x'.repeat(100));
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    await utimes(path.join(spool, files.oldLegacy), twoHoursAgo, twoHoursAgo);

    const r = await recoverSpool(spool, db);
    expect(r.recorded).toEqual([id.toString()]);
    expect(r.failed).toEqual([]);
    expect(r.files).toBe(files.dead.length + 1);
    expect((await readdir(spool)).sort()).toEqual([...files.kept].sort());
    expect(await ingestRecord(db.url, id.toString())).toEqual({ status: 'rejected', error_code: 'interrupted' });
    const { rows } = await db.pool.query<{ filename: string; instrument: string; client_provenance: unknown }>(
      'SELECT filename, instrument, client_provenance FROM strata.ingests WHERE id = $1', [id.toString()]);
    expect(rows[0]).toEqual({ filename: 'run-12.arrow', instrument: 'rig-7', client_provenance: { operator: 'ada' } });
    const audit = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM strata.audit_log WHERE action = 'ingest.reject' AND subject = $1", [`ingest:${id}`]);
    expect(audit.rows[0].n).toBe(1);

    // A second start finds nothing more to do, and records nothing twice.
    const again = await recoverSpool(spool, db);
    expect(again).toEqual({ files: 0, bytes: 0, recorded: [], failed: [] });
  });
});
