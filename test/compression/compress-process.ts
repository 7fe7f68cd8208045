// Run by crash.test.ts as a process of its own: compresses one chunk of a stream and stops at a
// stage (after the first segments are written, or just before COMMIT) saying READY, to be killed
// with SIGKILL there. Stage "none" runs to the end.
import '../../src/modules.ts';
import { createDb } from '../../src/db/pool.ts';
import { getStream } from '../../src/streams/catalog.ts';
import { compressChunk } from '../../src/compression/compress-chunk.ts';
import { chunksToCompress } from '../../src/compression/compression-job.ts';

const [url, streamName, stage] = process.argv.slice(2);
const db = createDb(url, 4);
const stream = await getStream(db.pool, streamName);
if (!stream) throw new Error(`no stream ${streamName}`);
const [chunk] = await chunksToCompress(db.pool, stream, BigInt(Date.now()) * 1000n);
const stop = async (): Promise<void> => {
  process.stdout.write('READY\n');
  await new Promise(() => undefined);
};
const out = await compressChunk(db, stream, chunk, {
  runId: null,
  afterWrite: stage === 'mid-write' ? stop : undefined,
  beforeCommit: stage === 'before-commit' ? stop : undefined,
});
process.stdout.write(`DONE ${JSON.stringify(out)}\n`);
process.exit(0);
