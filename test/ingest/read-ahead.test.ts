import { describe, expect, it } from 'vitest';
import { readAhead } from '../../src/ingest/read-ahead.ts';

/** A source that logs when each item is produced and when it is closed. */
function source(n: number, log: string[], failAt?: number): AsyncIterable<number> {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (let i = 0; i < n; i++) {
          await new Promise((r) => setTimeout(r, 1));
          if (i === failAt) throw new Error(`item ${i} is broken`);
          log.push(`made ${i}`);
          yield i;
        }
      } finally {
        log.push('closed');
      }
    },
  };
}

describe('readAhead', () => {
  it('produces the next item while the consumer works on the current one, in order', async () => {
    const log: string[] = [];
    const seen: number[] = [];
    for await (const x of readAhead(source(3, log))) {
      log.push(`using ${x}`);
      await new Promise((r) => setTimeout(r, 20)); // the consumer's slow work (a COPY waiting for PostgreSQL)
      log.push(`done ${x}`);
      seen.push(x);
    }
    expect(seen).toEqual([0, 1, 2]);
    // item 1 was made while item 0 was in use, item 2 while item 1 was
    expect(log.indexOf('made 1')).toBeGreaterThan(log.indexOf('using 0'));
    expect(log.indexOf('made 1')).toBeLessThan(log.indexOf('done 0'));
    expect(log.indexOf('made 2')).toBeLessThan(log.indexOf('done 1'));
    expect(log).toContain('closed'); // the end, too, was found while item 2 was in use
  });

  it('reports a failure of the item read ahead when that item is reached, never as unhandled', async () => {
    const log: string[] = [];
    const seen: number[] = [];
    await expect((async () => {
      for await (const x of readAhead(source(5, log, 2))) {
        await new Promise((r) => setTimeout(r, 10));
        seen.push(x);
      }
    })()).rejects.toThrow('item 2 is broken');
    expect(seen).toEqual([0, 1]);
  });

  it('closes the source when the consumer stops early', async () => {
    const log: string[] = [];
    for await (const x of readAhead(source(10, log))) {
      if (x === 1) break;
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toContain('closed');
    expect(log.filter((l) => l.startsWith('made')).length).toBeLessThanOrEqual(3);
  });
});
