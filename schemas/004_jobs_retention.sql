-- Maintenance jobs (schedule state shared by every replica, one record per run), legal holds,
-- and what retention needs to account for its drops (chunk registry links, ingest expiry).

-- One row per job: when it is due next and how it has been doing. Every replica reads and writes
-- it under the job's advisory lock, so the schedule is one schedule however many replicas run.
-- Times come from the scheduler's clock (injectable in tests), not from now().
CREATE TABLE strata.job_state (
  job              text PRIMARY KEY,
  next_run_at      timestamptz NOT NULL,
  failures         int NOT NULL DEFAULT 0,       -- consecutive failed or timed-out runs
  last_run_id      bigint,
  last_finished_at timestamptz,
  last_success_at  timestamptz,
  created_at       timestamptz NOT NULL          -- when a scheduler first saw the job
);

CREATE TABLE strata.job_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job          text NOT NULL,
  stream       text,                             -- NULL: the run covered every stream
  trigger      text NOT NULL CHECK (trigger IN ('schedule', 'retry', 'manual')),
  attempt      int NOT NULL DEFAULT 1,           -- 2, 3 … for retries after failures
  triggered_by bigint REFERENCES strata.api_keys (id),  -- the key of a manual run
  replica      text NOT NULL,                    -- host:pid:random of the server that ran it
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  outcome      text NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'abandoned')),
  rows         bigint,
  chunks       bigint,
  details      jsonb NOT NULL DEFAULT '{}',
  error        text
);
CREATE INDEX job_runs_job ON strata.job_runs (job, id);
CREATE INDEX job_runs_stream ON strata.job_runs (stream, id) WHERE stream IS NOT NULL;
CREATE INDEX job_runs_running ON strata.job_runs (job) WHERE outcome = 'running';

ALTER TABLE strata.chunks
  ADD CONSTRAINT chunks_dropped_by_run FOREIGN KEY (dropped_by_run) REFERENCES strata.job_runs (id);
CREATE INDEX chunks_dropped_by_run_idx ON strata.chunks (dropped_by_run) WHERE dropped_by_run IS NOT NULL;

-- Legal holds: while active (released_at IS NULL) no chunk of the stream overlapping
-- [range_start, range_end) is dropped, at any level. NULL bounds are open.
CREATE TABLE strata.holds (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id      bigint NOT NULL REFERENCES strata.streams (id),
  stream_name    text NOT NULL,
  range_start    timestamptz,
  range_end      timestamptz,
  reason         text NOT NULL,
  created_by     bigint REFERENCES strata.api_keys (id),
  created_role   text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  released_at    timestamptz,
  released_by    bigint REFERENCES strata.api_keys (id),
  release_reason text,
  CHECK (range_start IS NULL OR range_end IS NULL OR range_end > range_start)
);
CREATE INDEX holds_active ON strata.holds (stream_id) WHERE released_at IS NULL;

-- What retention removed of an ingest's rows: {"rows_expired", "all_expired", "expired_at",
-- "chunks_dropped"}; NULL while none of its rows expired. The ingest record itself is kept.
ALTER TABLE strata.ingests ADD COLUMN expiry jsonb;
