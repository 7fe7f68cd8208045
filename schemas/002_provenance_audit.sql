-- Provenance and audit (issue 6): retraction of ingests, ingest records that cannot be rewritten,
-- and an audit log whose append-only triggers fire in every session mode.

-- Retraction: who retracted an ingest, when and why. The record itself stays.
ALTER TABLE strata.ingests
  ADD COLUMN retracted_at      timestamptz,
  ADD COLUMN retracted_by      bigint REFERENCES strata.api_keys (id),
  ADD COLUMN retraction_reason text,
  ADD COLUMN rows_retracted    bigint;
ALTER TABLE strata.ingests ADD CONSTRAINT ingests_retraction_recorded
  CHECK ((status = 'retracted') = (retracted_at IS NOT NULL AND retraction_reason IS NOT NULL));

-- Instrument keys list their own ingests.
CREATE INDEX ingests_key ON strata.ingests (key_id, id);

-- An ingest record is the evidence of an upload: what was received, from whom, when, with which
-- hash. Those facts never change; the only change allowed is committed → retracted, once.
CREATE FUNCTION strata.ingest_record_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'strata.ingests keeps every ingest record: DELETE is not allowed'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.id, NEW.stream_id, NEW.stream_name, NEW.key_id, NEW.instrument, NEW.received_at, NEW.committed_at,
      NEW.format, NEW.content_type, NEW.content_encoding, NEW.bytes, NEW.inflated_bytes, NEW.sha256, NEW.rows,
      NEW.time_min, NEW.time_max, NEW.sub_microsecond_count, NEW.filename, NEW.idempotency_key,
      NEW.client_provenance, NEW.file_metadata, NEW.mapping, NEW.versions, NEW.warnings, NEW.chunks,
      NEW.archive_path, NEW.error_code, NEW.error_message)
     IS DISTINCT FROM
     (OLD.id, OLD.stream_id, OLD.stream_name, OLD.key_id, OLD.instrument, OLD.received_at, OLD.committed_at,
      OLD.format, OLD.content_type, OLD.content_encoding, OLD.bytes, OLD.inflated_bytes, OLD.sha256, OLD.rows,
      OLD.time_min, OLD.time_max, OLD.sub_microsecond_count, OLD.filename, OLD.idempotency_key,
      OLD.client_provenance, OLD.file_metadata, OLD.mapping, OLD.versions, OLD.warnings, OLD.chunks,
      OLD.archive_path, OLD.error_code, OLD.error_message) THEN
    RAISE EXCEPTION 'ingest % : the facts of an ingest record cannot be changed', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (OLD.status = 'committed' AND NEW.status = 'retracted') THEN
    RAISE EXCEPTION 'ingest % : status % cannot become %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.status = 'retracted'
     AND (NEW.retracted_at, NEW.retracted_by, NEW.retraction_reason, NEW.rows_retracted)
         IS DISTINCT FROM (OLD.retracted_at, OLD.retracted_by, OLD.retraction_reason, OLD.rows_retracted) THEN
    RAISE EXCEPTION 'ingest % : a retraction cannot be changed', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER ingests_record_is_fixed BEFORE UPDATE OR DELETE ON strata.ingests
  FOR EACH ROW EXECUTE FUNCTION strata.ingest_record_is_fixed();
CREATE FUNCTION strata.refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'strata.% keeps every record: TRUNCATE is not allowed', TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ingests_no_truncate BEFORE TRUNCATE ON strata.ingests
  FOR EACH STATEMENT EXECUTE FUNCTION strata.refuse_truncate();

-- Fire even with session_replication_role = replica (which silences ordinary triggers): only an
-- explicit ALTER TABLE … DISABLE TRIGGER by the table's owner or a superuser turns them off, and
-- that leaves the hash chain to catch the edit.
ALTER TABLE strata.audit_log ENABLE ALWAYS TRIGGER audit_log_no_update;
ALTER TABLE strata.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE strata.ingests ENABLE ALWAYS TRIGGER ingests_record_is_fixed;
ALTER TABLE strata.ingests ENABLE ALWAYS TRIGGER ingests_no_truncate;

-- Entries are numbered from 1 without gaps and hashes are SHA-256 hex: checked by the database too.
ALTER TABLE strata.audit_log
  ADD CONSTRAINT audit_log_seq_positive CHECK (seq > 0),
  ADD CONSTRAINT audit_log_hashes_hex CHECK (prev_hash ~ '^[0-9a-f]{64}$' AND hash ~ '^[0-9a-f]{64}$');

-- Entries that list the ingests they concern under details.ingests (e.g. a retention drop) are
-- found from the ingest's record.
CREATE INDEX audit_log_ingests ON strata.audit_log USING gin ((details -> 'ingests'));
