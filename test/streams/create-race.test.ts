// Many requests creating the same stream at the same moment (instruments sending their first
// file together): every one succeeds, exactly one creates the stream, and none deadlocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/modules.ts';
import { createStream } from '../../src/streams/catalog.ts';
import { systemActor } from '../../src/audit/log.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

let db: TestDb;
beforeAll(async () => { db = await createTestDb(); });
afterAll(async () => { await db.drop(); });

describe('creating one stream from many requests at once', () => {
  it('creates it once and answers every request with it', async () => {
    for (let round = 0; round < 8; round++) {
      const name = `first-files-${round}`;
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => createStream(db, {
        name, chunkIntervalUs: 86_400_000_000n, timeColumn: 'time',
        columns: [{ name: 'sample', role: 'tag', type: 'text' }, { name: 'value', role: 'field', type: 'float8' }],
      }, systemActor)));
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
      expect(failures).toEqual([]);
      const ok = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof createStream>>>).value);
      expect(ok.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(ok.map((r) => r.stream.id)).size).toBe(1);
    }
  });
});
