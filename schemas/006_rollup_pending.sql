-- Partial aggregates computed while uploads are written: for the finest rollup level of a stream,
-- each upload adds, in its own transaction, one row per bucket and tag set of its rows at or above
-- that level's watermark to the stream's pending table (strata_data.<stream>_pend, made with the
-- level). The refresh then materialises the buckets that come due from those rows, not from the
-- raw rows. pending_from: from which instant on the pending table is complete (every earlier
-- bucket is built from raw rows); NULL: the level keeps no pending rows.
ALTER TABLE strata.rollup_levels ADD COLUMN pending_from timestamptz;
