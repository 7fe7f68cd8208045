-- NaN in rollups, and NaN and NULL counts in ingest records.
--
-- Level rows (and the pending partial aggregates of uploads) keep, for every float8 and float4
-- field, n, sum, min, max, first and last over the values other than NaN, and beside them
-- c<i>_nan (how many NaN), c<i>_nanfirst and c<i>_nanlast (µs of the earliest and the latest NaN),
-- so that queries can skip NaN or propagate it exactly from any level. Before, NaN went into the
-- parts like any value. A bucket that held NaN shows it in its max (PostgreSQL orders NaN above
-- every number, so max is NaN exactly then); the others' parts are already NaN-free and only get
-- nan = 0. Buckets with NaN are invalidated (every tag set, merged into ranges): the rollups
-- refresh rebuilds them from the raw rows, and until then queries answer them from raw rows. A
-- bucket whose raw rows retention already dropped cannot be recounted: it keeps its parts as they
-- were, with nan NULL (its avg, sum and max stay NaN in both modes).
--
-- Pending partial aggregates are few and short-lived: they are deleted and pending_from cleared,
-- so that the next refresh builds what they held from the raw rows and starts them over.

ALTER TABLE strata.ingests ADD COLUMN field_stats jsonb;  -- per column: {"nan": n, "null": n}

DO $$
DECLARE
  lv record;
  s record;
  f record;
  tainted text;
  pend text;
BEGIN
  FOR lv IN SELECT stream_id, level, interval_us, table_name FROM strata.rollup_levels ORDER BY stream_id, interval_us LOOP
    CONTINUE WHEN to_regclass(format('strata_data.%I', lv.table_name)) IS NULL;
    tainted := NULL;
    FOR f IN
      SELECT c.prefix FROM (SELECT 'c' || (row_number() OVER (ORDER BY position) - 1) AS prefix, role, type
                              FROM strata.stream_columns WHERE stream_id = lv.stream_id) c
       WHERE c.role = 'field' AND c.type IN ('float8', 'float4')
    LOOP
      EXECUTE format('ALTER TABLE strata_data.%I ADD COLUMN IF NOT EXISTS %I bigint, ADD COLUMN IF NOT EXISTS %I bigint, ADD COLUMN IF NOT EXISTS %I bigint',
        lv.table_name, f.prefix || '_nan', f.prefix || '_nanfirst', f.prefix || '_nanlast');
      EXECUTE format('UPDATE strata_data.%I SET %I = 0 WHERE %I IS DISTINCT FROM ''NaN''', lv.table_name, f.prefix || '_nan', f.prefix || '_max');
      tainted := concat_ws(' OR ', tainted, format('%I = ''NaN''', f.prefix || '_max'));
    END LOOP;
    CONTINUE WHEN tainted IS NULL;
    -- Runs of adjacent buckets with NaN become one invalidation each.
    EXECUTE format(
      'INSERT INTO strata.rollup_invalidations (stream_id, level, tag_values, range_start, range_end, cause)
       SELECT %s, %L, NULL, min(b), max(b) + %L::interval, %L
         FROM (SELECT b, b - (row_number() OVER (ORDER BY b)) * %L::interval AS run
                 FROM (SELECT DISTINCT "time" AS b FROM strata_data.%I WHERE %s) t) r
        GROUP BY run',
      lv.stream_id, lv.level, lv.interval_us || ' microseconds', 'migration:007_nan_parts', lv.interval_us || ' microseconds',
      lv.table_name, tainted);
  END LOOP;

  FOR s IN SELECT id, table_name FROM strata.streams LOOP
    pend := left(s.table_name, 36) || '_pend';
    CONTINUE WHEN to_regclass(format('strata_data.%I', pend)) IS NULL;
    EXECUTE format('DELETE FROM strata_data.%I', pend);
    FOR f IN
      SELECT c.prefix FROM (SELECT 'c' || (row_number() OVER (ORDER BY position) - 1) AS prefix, role, type
                              FROM strata.stream_columns WHERE stream_id = s.id) c
       WHERE c.role = 'field' AND c.type IN ('float8', 'float4')
    LOOP
      EXECUTE format('ALTER TABLE strata_data.%I ADD COLUMN IF NOT EXISTS %I bigint, ADD COLUMN IF NOT EXISTS %I bigint, ADD COLUMN IF NOT EXISTS %I bigint',
        pend, f.prefix || '_nan', f.prefix || '_nanfirst', f.prefix || '_nanlast');
    END LOOP;
  END LOOP;
  UPDATE strata.rollup_levels SET pending_from = NULL WHERE pending_from IS NOT NULL;
END
$$;

-- field_stats is a fact of the upload like the others: fixed once written.
CREATE FUNCTION strata.ingest_field_stats_are_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.field_stats IS DISTINCT FROM OLD.field_stats THEN
    RAISE EXCEPTION 'ingest % : the facts of an ingest record cannot be changed', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ingests_field_stats_are_fixed BEFORE UPDATE ON strata.ingests
  FOR EACH ROW EXECUTE FUNCTION strata.ingest_field_stats_are_fixed();
