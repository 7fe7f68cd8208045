// Uploads into a time range retention has already dropped are refused. The range's history then
// lives on in the rollup levels only; new raw rows there would be dropped again by the next run,
// and a rollup refresh of the range, seeing only the new rows, would overwrite the aggregates
// that hold the old ones. Checked in the upload's transaction, before it commits.
import { registerIngestObserver } from '../ingest/observers.ts';
import { AppError } from '../errors/index.ts';
import { formatMicros, pgTimestamp } from '../domain/time.ts';

registerIngestObserver((stream) => {
  let min: bigint | null = null;
  let max: bigint | null = null;
  return {
    onBatch(batch) {
      if (batch.length === 0) return;
      if (min === null || batch.minTime < min) min = batch.minTime;
      if (max === null || batch.maxTime > max) max = batch.maxTime;
    },
    async beforeCommit(tx) {
      if (min === null || max === null) return;
      const { rows } = await tx.query<{ table_name: string; start_us: string; end_us: string; dropped_at: Date | null; dropped_by_run: string | null }>(
        `SELECT table_name, (extract(epoch FROM range_start) * 1000000)::bigint::text AS start_us,
                (extract(epoch FROM range_end) * 1000000)::bigint::text AS end_us, dropped_at, dropped_by_run
           FROM strata.chunks
          WHERE stream_id = $1 AND level = 'raw' AND state = 'dropped'
            AND range_start <= $3::timestamptz AND range_end > $2::timestamptz
          ORDER BY range_start LIMIT 1`,
        [stream.id, pgTimestamp(min), pgTimestamp(max)]);
      const d = rows[0];
      if (!d) return;
      const from = BigInt(d.start_us);
      const to = BigInt(d.end_us);
      throw new AppError(422, 'range_expired',
        `the upload has rows from ${formatMicros(min > from ? min : from)} in ${formatMicros(from)} – ${formatMicros(to)}, a range of stream ${JSON.stringify(stream.name)} that retention dropped (chunk ${d.table_name}${d.dropped_by_run ? `, run ${d.dropped_by_run}` : ''}); its history is kept by the rollup levels only, which raw rows there cannot be merged into — leave rows before ${formatMicros(to)} out of the upload`,
        { detail: { range_start: formatMicros(from), range_end: formatMicros(to), chunk: d.table_name, dropped_at: d.dropped_at?.toISOString() ?? null } });
    },
  };
});
