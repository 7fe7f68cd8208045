-- The catalog: API keys, streams and their columns, chunks, ingests, and the audit log.
-- Stream tables and their chunks live in the strata_data schema.

CREATE SCHEMA IF NOT EXISTS strata_data;

CREATE TABLE strata.api_keys (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL,
  role          text NOT NULL CHECK (role IN ('admin', 'instrument', 'reader', 'auditor')),
  streams       text[],                       -- NULL: every stream
  secret_sha256 bytea NOT NULL UNIQUE,        -- keys are random; only their hash is kept
  prefix        text NOT NULL,                -- first characters, to recognise a key in lists
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    bigint REFERENCES strata.api_keys (id),
  revoked_at    timestamptz,
  revoked_by    bigint REFERENCES strata.api_keys (id),
  last_used_at  timestamptz
);

CREATE TABLE strata.streams (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name              text NOT NULL UNIQUE,
  description       text,
  labels            jsonb NOT NULL DEFAULT '{}',
  table_name        text NOT NULL UNIQUE,
  time_column       text,                     -- name of the time column in uploads, once known
  chunk_interval_us bigint NOT NULL CHECK (chunk_interval_us > 0),
  settings          jsonb NOT NULL DEFAULT '{}',  -- per-feature settings: rollups, retention, hdf5_mapping …
  created_at        timestamptz NOT NULL DEFAULT now(),
  created_by        bigint REFERENCES strata.api_keys (id),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE strata.stream_columns (
  stream_id   bigint NOT NULL REFERENCES strata.streams (id),
  name        text NOT NULL,                  -- as the user or file gave it
  column_name text NOT NULL,                  -- safe identifier in the stream table
  role        text NOT NULL CHECK (role IN ('tag', 'field')),
  type        text NOT NULL CHECK (type IN ('float8', 'float4', 'int2', 'int4', 'int8', 'bool', 'text', 'timestamptz')),
  unit        text,
  description text,
  position    int NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, name),
  UNIQUE (stream_id, column_name)
);

-- Every partition ever made, for stream tables (level 'raw') and rollup tables.
CREATE TABLE strata.chunks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id    bigint NOT NULL REFERENCES strata.streams (id),
  level        text NOT NULL DEFAULT 'raw',
  table_name   text NOT NULL,
  range_start  timestamptz NOT NULL,
  range_end    timestamptz NOT NULL,
  state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'dropped')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  dropped_at   timestamptz,
  dropped_by_run bigint,
  row_count    bigint,
  CHECK (range_end > range_start)
);
CREATE UNIQUE INDEX chunks_active_range ON strata.chunks (stream_id, level, range_start) WHERE state = 'active';
CREATE INDEX chunks_stream_level ON strata.chunks (stream_id, level, range_start);

CREATE SEQUENCE strata.ingest_id_seq;

CREATE TABLE strata.ingests (
  id                    bigint PRIMARY KEY,
  stream_id             bigint REFERENCES strata.streams (id),
  stream_name           text NOT NULL,
  key_id                bigint REFERENCES strata.api_keys (id),
  instrument            text,
  received_at           timestamptz NOT NULL,
  committed_at          timestamptz,
  format                text NOT NULL,
  content_type          text,
  content_encoding      text,
  bytes                 bigint NOT NULL DEFAULT 0,
  inflated_bytes        bigint,
  sha256                text,
  rows                  bigint NOT NULL DEFAULT 0,
  time_min              timestamptz,
  time_max              timestamptz,
  sub_microsecond_count bigint NOT NULL DEFAULT 0,
  filename              text,
  idempotency_key       text,
  client_provenance     jsonb,
  file_metadata         jsonb,
  mapping               jsonb,
  versions              jsonb NOT NULL DEFAULT '{}',
  warnings              jsonb NOT NULL DEFAULT '[]',
  chunks                text[] NOT NULL DEFAULT '{}',
  archive_path          text,
  status                text NOT NULL CHECK (status IN ('committed', 'rejected', 'retracted')),
  error_code            text,
  error_message         text
);
CREATE UNIQUE INDEX ingests_stream_sha256 ON strata.ingests (stream_id, sha256) WHERE status = 'committed';
CREATE UNIQUE INDEX ingests_stream_idempotency ON strata.ingests (stream_id, idempotency_key)
  WHERE status = 'committed' AND idempotency_key IS NOT NULL;
CREATE INDEX ingests_stream_received ON strata.ingests (stream_id, received_at);
CREATE INDEX ingests_status ON strata.ingests (status, received_at);

-- Append-only, hash-chained. seq has no gaps: each append takes the chain lock, reads the head
-- and writes head + 1 in the same transaction as the act it records.
CREATE TABLE strata.audit_log (
  seq          bigint PRIMARY KEY,
  at           timestamptz NOT NULL,
  actor_key_id bigint,
  actor_role   text,
  action       text NOT NULL,
  subject      text NOT NULL,
  details      jsonb NOT NULL,
  prev_hash    text NOT NULL,
  hash         text NOT NULL
);
CREATE INDEX audit_log_action ON strata.audit_log (action, seq);
CREATE INDEX audit_log_subject ON strata.audit_log (subject, seq);

CREATE FUNCTION strata.audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'strata.audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON strata.audit_log
  FOR EACH ROW EXECUTE FUNCTION strata.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON strata.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION strata.audit_log_is_append_only();
