/**
 * Glossary — the words Strata's code and API use, each with one meaning.
 *
 * stream        A named time series: one partitioned PostgreSQL table with a `time` column,
 *               tag columns, field columns and `ingest_id`. Defined explicitly or created from
 *               the first upload's schema.
 * tag           A text column that identifies a series within a stream (sample, station, device).
 *               Rollups group by the tag set.
 * field         A measured value column (float, integer, boolean, text, timestamp).
 * chunk         One partition of a stream table, covering [range_start, range_end) of one chunk
 *               interval, aligned to the Unix epoch. Registered in strata.chunks.
 * ingest        One upload (one HTTP request body): recorded with its hash, size, format,
 *               provenance, time range, rows and status (committed | rejected | retracted).
 *               Every stored row carries its ingest id.
 * column batch  The decoders' output: one time column (µs since the Unix epoch) plus typed
 *               columns, ready to be encoded as binary COPY.
 * rollup level  A coarser, materialised resolution of a stream (1m, 1h, 1d …).
 * watermark     The time up to which a rollup level is materialised.
 * invalidation  A (tag set, bucket range) below a watermark that new data has touched and that
 *               must be recomputed.
 */
export {};
