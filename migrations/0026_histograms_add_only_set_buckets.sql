-- Up Migration
--
-- Adding two latency histograms walks the shorter with an array iterator and
-- adds only its non-empty buckets (sql/080_histograms.sql holds the
-- definition; this step brings the schema there).

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total bigint[];
  other bigint[];
  count bigint;
  slot integer := 0;
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  IF pg_catalog.cardinality(a) OPERATOR(pg_catalog.>=) pg_catalog.cardinality(b) THEN
    total := a;
    other := b;
  ELSE
    total := b;
    other := a;
  END IF;
  FOREACH count IN ARRAY other LOOP
    slot := slot OPERATOR(pg_catalog.+) 1;
    IF count OPERATOR(pg_catalog.<>) 0::bigint THEN
      total[slot] := total[slot] OPERATOR(pg_catalog.+) count;
    END IF;
  END LOOP;
  IF total[pg_catalog.cardinality(total)] OPERATOR(pg_catalog.=) 0::bigint THEN
    RETURN ai_cost_internal.histogram_trim(total);
  END IF;
  RETURN total;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_add(bigint[], bigint[]) IS 'Adds two latency histograms bucket by bucket.';

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total bigint[];
  other bigint[];
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  IF pg_catalog.cardinality(a) OPERATOR(pg_catalog.>=) pg_catalog.cardinality(b) THEN
    total := a;
    other := b;
  ELSE
    total := b;
    other := a;
  END IF;
  FOR slot IN 1 .. pg_catalog.cardinality(other) LOOP
    total[slot] := total[slot] OPERATOR(pg_catalog.+) other[slot];
  END LOOP;
  RETURN ai_cost_internal.histogram_trim(total);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_add(bigint[], bigint[]) IS 'Adds two latency histograms bucket by bucket.';
