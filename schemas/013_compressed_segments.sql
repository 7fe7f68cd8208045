-- Compressed chunks: a raw chunk older than its stream's compress_after is rewritten into
-- columnar segments (src/compression/). A segment holds up to 10,000 rows of one tag set and one
-- ingest, ordered by time, each column encoded on its own (bytea). The chunk's table stays,
-- empty, attached to the stream table: rows that arrive later land there, uncompressed, and the
-- next compression run turns them into segments of their own.

ALTER TABLE strata.chunks
  ADD COLUMN compressed_at   timestamptz,        -- first compressed; NULL: plain rows only
  ADD COLUMN compressed_rows bigint,             -- rows held in segments now
  ADD COLUMN compressed_bytes bigint;           -- bytes of their encoded columns

CREATE TABLE strata_data.segments (
  id          bigint GENERATED ALWAYS AS IDENTITY,
  stream_id   bigint NOT NULL,                   -- the distribution column (no foreign key: hot table)
  chunk_id    bigint NOT NULL,
  ingest_id   bigint NOT NULL,
  tags        jsonb NOT NULL,                    -- tag column name → value (constant in the segment)
  row_count   int NOT NULL CHECK (row_count > 0),
  time_min    timestamptz NOT NULL,
  time_max    timestamptz NOT NULL,
  time_data   bytea NOT NULL,                    -- delta-of-delta, bit-packed
  order_data  bytea NOT NULL,                    -- each row's place in the chunk's table (storage order), delta bit-packed
  columns     text[] NOT NULL,                   -- field column names, in the order of data
  data        bytea[] NOT NULL,                  -- one encoded column per name (NULL: all NULL)
  stats       jsonb NOT NULL,                    -- per field: count, nan, min, max, sum
  PRIMARY KEY (stream_id, id)
);
-- The encoded columns are compressed already: keep TOAST from trying again.
ALTER TABLE strata_data.segments ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE strata_data.segments ALTER COLUMN time_data SET STORAGE EXTERNAL;
ALTER TABLE strata_data.segments ALTER COLUMN order_data SET STORAGE EXTERNAL;
CREATE INDEX segments_chunk ON strata_data.segments (stream_id, chunk_id, time_min);
CREATE INDEX segments_time ON strata_data.segments (stream_id, time_min, time_max);
CREATE INDEX segments_ingest ON strata_data.segments (stream_id, ingest_id);

-- Streams defined before compression existed get the default, as new streams do.
UPDATE strata.streams SET settings = settings || '{"compress_after": "7 days"}'::jsonb
 WHERE NOT settings ? 'compress_after' AND deleted_at IS NULL;
