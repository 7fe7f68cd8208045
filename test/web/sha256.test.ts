// The console's incremental SHA-256 (src/web/sha256.js) against Node's, at every block boundary
// and across its read slices: the upload's Idempotency-Key and the original's check depend on it.
import { createHash, randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
// @ts-expect-error a browser module in plain JavaScript, without type declarations
import { sha256OfBlob } from '../../src/web/sha256.js';

it('hashes like node:crypto for sizes around block, padding and slice boundaries', async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, (4 << 20) - 1, 4 << 20, (4 << 20) + 1, 9_000_001]) {
    const bytes = randomBytes(n);
    expect(await sha256OfBlob(new Blob([bytes])), `size ${n}`).toBe(createHash('sha256').update(bytes).digest('hex'));
  }
});
