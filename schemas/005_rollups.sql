-- Rollup levels: per stream, materialised aggregates at fixed intervals (1m, 1h, 1d …), each in
-- its own partitioned table, each with a watermark; and the invalidations that late ingests and
-- retractions leave below the watermarks, narrow per tag set and bucket range.

CREATE TABLE strata.rollup_levels (
  stream_id    bigint NOT NULL REFERENCES strata.streams (id),
  level        text NOT NULL,                    -- its name as the stream definition gives it, e.g. '1h'
  interval_us  bigint NOT NULL CHECK (interval_us > 0),
  table_name   text NOT NULL,                    -- partitioned table in strata_data
  chunk_us     bigint NOT NULL CHECK (chunk_us > 0),
  -- Buckets starting before the watermark are materialised (except where invalidated); NULL: none
  -- yet. Ingests read it FOR SHARE before they commit, and the refresh updates it, so that a
  -- refresh never advances past rows it could not see.
  watermark    timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, level)
);

-- Buckets of a level that hold stale aggregates: written below the watermark by a late ingest or
-- a retraction. tag_values is the tag set (stream tag columns in order, JSON array of strings or
-- nulls); NULL means every tag set of the range.
CREATE TABLE strata.rollup_invalidations (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id    bigint NOT NULL,
  level        text NOT NULL,
  tag_values   jsonb,
  range_start  timestamptz NOT NULL,
  range_end    timestamptz NOT NULL,
  cause        text NOT NULL,                    -- 'ingest:<id>' or 'retraction:<id>' or 'levels'
  created_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (range_end > range_start),
  FOREIGN KEY (stream_id, level) REFERENCES strata.rollup_levels (stream_id, level) ON DELETE CASCADE
);
CREATE INDEX rollup_invalidations_level ON strata.rollup_invalidations (stream_id, level, range_start);

-- What each refresh recomputed: one row per level and range, with the rows it read and wrote.
CREATE TABLE strata.rollup_refreshes (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       bigint,                           -- strata.job_runs.id when run by the scheduler
  stream_id    bigint NOT NULL,
  level        text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('advance', 'invalidation')),
  tag_values   jsonb,
  range_start  timestamptz NOT NULL,
  range_end    timestamptz NOT NULL,
  source       text NOT NULL,                    -- 'raw' or the finer level it was built from
  rows_read    bigint NOT NULL,
  rows_written bigint NOT NULL,
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollup_refreshes_stream ON strata.rollup_refreshes (stream_id, at);
CREATE INDEX rollup_refreshes_run ON strata.rollup_refreshes (run_id);
