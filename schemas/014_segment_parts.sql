-- Segment format 3: a segment's encoded columns are kept as one byte string cut into parts of at
-- most 8,112 bytes, one row each in strata_data.segment_parts, so that each part fills a page
-- of its own (STORAGE PLAIN: no TOAST). Under TOAST the same bytes took about 5 % more (2 KB
-- chunks, each with its tuple header and an index entry); here about 3 %, most of it the last,
-- partial part of each segment. Segments written before keep their columns in segments.data
-- (parts = 0) and read as before.
CREATE TABLE strata_data.segment_parts (
  stream_id  bigint NOT NULL,
  segment_id bigint NOT NULL,
  part       int NOT NULL,                       -- 0, 1, …: the byte string in order
  bytes      bytea NOT NULL,
  PRIMARY KEY (stream_id, segment_id, part),
  FOREIGN KEY (stream_id, segment_id) REFERENCES strata_data.segments (stream_id, id) ON DELETE CASCADE
);
ALTER TABLE strata_data.segment_parts ALTER COLUMN bytes SET STORAGE PLAIN;

ALTER TABLE strata_data.segments
  ADD COLUMN parts int NOT NULL DEFAULT 0;       -- rows in segment_parts; 0: the columns are in data
