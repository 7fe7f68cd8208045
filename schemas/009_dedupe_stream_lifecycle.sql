-- Duplicate uploads by content, and streams that can be deleted and renamed.

-- The SHA-256 of an upload's body after its Content-Encoding is undone (the bytes the decoder
-- reads): the same file sent plain and gzipped has one content hash. Equal to sha256 when the
-- body had no Content-Encoding, which fills it for earlier uploads; earlier compressed uploads
-- keep NULL (their inflated bytes were never hashed).
ALTER TABLE strata.ingests ADD COLUMN content_sha256 text;
UPDATE strata.ingests SET content_sha256 = sha256
 WHERE sha256 IS NOT NULL AND coalesce(lower(btrim(content_encoding)), '') IN ('', 'identity');
CREATE UNIQUE INDEX ingests_stream_content_sha256 ON strata.ingests (stream_id, content_sha256)
  WHERE status = 'committed' AND content_sha256 IS NOT NULL;

-- Like the other facts of an ingest record, its content hash never changes once written.
CREATE FUNCTION strata.ingest_content_hash_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.content_sha256 IS DISTINCT FROM OLD.content_sha256 THEN
    RAISE EXCEPTION 'ingest % : the facts of an ingest record cannot be changed', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ingests_content_hash_is_fixed BEFORE UPDATE ON strata.ingests
  FOR EACH ROW EXECUTE FUNCTION strata.ingest_content_hash_is_fixed();
ALTER TABLE strata.ingests ENABLE ALWAYS TRIGGER ingests_content_hash_is_fixed;

-- A deleted stream keeps its catalog row (ingest records, holds and chunks refer to its id) with
-- the time and key of the deletion; its name is free for a new stream.
ALTER TABLE strata.streams
  ADD COLUMN deleted_at timestamptz,
  ADD COLUMN deleted_by bigint REFERENCES strata.api_keys (id);
ALTER TABLE strata.streams DROP CONSTRAINT streams_name_key;
CREATE UNIQUE INDEX streams_live_name ON strata.streams (name) WHERE deleted_at IS NULL;
