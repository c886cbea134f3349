-- Latency histograms: fixed log-scale buckets that add up.
--
-- Latencies go into fixed log-scale buckets, four per doubling: bucket 0 is
-- under 1 ms, bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, and bucket 88
-- everything from 2^(87/4) ms (about 58 minutes) on. Fixed buckets make
-- histograms mergeable by adding counts, so p50/p95/p99 of any slice come
-- from the rollups without reading raw rows, within 9% of the exact value.
-- A histogram is a bigint[] of counts per bucket, trailing empty buckets
-- dropped (NULL when empty).
--
-- The refresh folds every change through these helpers, so they are built
-- for it: latency_bucket() is an inlinable SQL expression (0.03 us a row
-- against 3.6 us as a function call), and the others are PL/pgSQL loops over
-- arrays assigned in place (unnest ... WITH ORDINALITY cost 20-30 us a call).
-- None of them pins search_path, because a SET clause blocks inlining and
-- costs a save and restore of the path on every call before PostgreSQL 17.
-- Instead every operator, function and type in them is named by its schema
-- (OPERATOR(pg_catalog.+), pg_catalog.ln, double precision): they are parsed
-- in the caller's session, a view reader's or a refresh's, whose search_path
-- may hold a user's better-matching operator (test/planted-operators.test.ts).

-- Without STRICT and SET the planner inlines this into the calling query, so
-- bucketing a row costs an expression, not a function call.
CREATE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms OPERATOR(pg_catalog.<) 1 THEN 0
              -- OPERATOR(...) gives every operator the same precedence: hence the parentheses.
              ELSE least(88, 1 OPERATOR(pg_catalog.+) pg_catalog.floor(
                     (4::double precision OPERATOR(pg_catalog.*) pg_catalog.ln(ms::double precision)
                      OPERATOR(pg_catalog./) pg_catalog.ln(2::double precision))
                     OPERATOR(pg_catalog.+) 1e-9::double precision)::integer) END
$$;
COMMENT ON FUNCTION ai_cost.latency_bucket(integer) IS 'Histogram bucket of a latency in ms: 0 below 1 ms, then four buckets per doubling up to bucket 88 (about 58 minutes and more).';

-- The value reported for a bucket: its geometric midpoint (at most 9% from
-- any latency in it), the lower bound for the open-ended last bucket.
CREATE FUNCTION ai_cost.latency_bucket_value(bucket integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN bucket <= 0 THEN 0
              WHEN bucket >= 88 THEN round(power(2::float8, 87 / 4.0))::integer
              ELSE round(power(2::float8, (bucket - 0.5) / 4.0))::integer END
$$;
COMMENT ON FUNCTION ai_cost.latency_bucket_value(integer) IS 'Representative latency in ms of a histogram bucket (its geometric midpoint).';

-- Drops trailing zero buckets; NULL when nothing is left.
CREATE FUNCTION ai_cost_internal.histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  last integer := pg_catalog.cardinality(h);
BEGIN
  WHILE last OPERATOR(pg_catalog.>) 0 AND coalesce(h[last], 0::bigint) OPERATOR(pg_catalog.=) 0::bigint LOOP
    last := last OPERATOR(pg_catalog.-) 1;
  END LOOP;
  IF last OPERATOR(pg_catalog.=) 0 THEN
    RETURN NULL;
  END IF;
  RETURN CASE WHEN last OPERATOR(pg_catalog.=) pg_catalog.cardinality(h) THEN h ELSE h[1:last] END;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_trim(bigint[]) IS 'Drops trailing empty buckets of a latency histogram.';

-- Adds two histograms bucket by bucket (counts may be negative in a change
-- set), into a copy of the longer one assigned in place; an all-zero sum is
-- NULL again. The shorter is walked with an array iterator and only its
-- non-empty buckets are added: a refresh adds the few calls of a group's
-- last minutes to its hour, a histogram with a handful of buckets set among
-- forty or so, twice for each hourly group it updates.
CREATE FUNCTION ai_cost_internal.histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
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

-- Adds sparse counts into a histogram: bucket numbers and their counts (a
-- bucket may repeat). The work follows the buckets touched, not the width.
CREATE FUNCTION ai_cost_internal.histogram_apply(h bigint[], buckets integer[], counts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  width integer := coalesce(pg_catalog.cardinality(h), 0);
  slot integer;
BEGIN
  IF buckets IS NULL THEN
    RETURN h;
  END IF;
  IF h IS NULL THEN
    h := '{}';
  END IF;
  FOR i IN 1 .. pg_catalog.cardinality(buckets) LOOP
    slot := buckets[i] OPERATOR(pg_catalog.+) 1;
    IF slot OPERATOR(pg_catalog.>) width THEN
      h := h OPERATOR(pg_catalog.||) pg_catalog.array_fill(0::bigint, ARRAY[slot OPERATOR(pg_catalog.-) width]);
      width := slot;
    END IF;
    h[slot] := h[slot] OPERATOR(pg_catalog.+) counts[i];
  END LOOP;
  IF width OPERATOR(pg_catalog.=) 0 OR h[width] OPERATOR(pg_catalog.=) 0::bigint THEN
    RETURN ai_cost_internal.histogram_trim(h);
  END IF;
  RETURN h;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_apply(bigint[], integer[], bigint[]) IS 'Internal: adds (bucket, count) pairs into a latency histogram.';

-- Step of ai_cost.histogram_merge: adds a histogram into a full-width state in place.
CREATE FUNCTION ai_cost_internal.histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF histogram IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  FOR slot IN 1 .. least(89, pg_catalog.cardinality(histogram)) LOOP
    state[slot] := state[slot] OPERATOR(pg_catalog.+) histogram[slot];
  END LOOP;
  RETURN state;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_accumulate(bigint[], bigint[]) IS 'Aggregate step: adds a latency histogram into the running sum.';

-- Step of the histogram builder: counts one latency with a weight (+1 added, -1 removed).
CREATE FUNCTION ai_cost_internal.histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  slot integer;
BEGIN
  IF ms IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  slot := ai_cost.latency_bucket(ms) OPERATOR(pg_catalog.+) 1;
  state[slot] := state[slot] OPERATOR(pg_catalog.+) weight;
  RETURN state;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.histogram_step(bigint[], integer, integer) IS 'Aggregate step: counts one latency into a histogram with a weight of +1 or -1.';

-- Aggregate: the sum of histograms, e.g. the latency histogram of a model over
-- a month from its hourly rollup rows.
CREATE AGGREGATE ai_cost.histogram_merge(bigint[]) (
  SFUNC = ai_cost_internal.histogram_accumulate,
  STYPE = bigint[],
  FINALFUNC = ai_cost_internal.histogram_trim,
  COMBINEFUNC = ai_cost_internal.histogram_add,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE ai_cost.histogram_merge(bigint[]) IS 'Adds latency histograms (e.g. total_ms_hist of ai_cost.calls_hourly rows); read percentiles with ai_cost.histogram_percentile.';

CREATE AGGREGATE ai_cost_internal.histogram(integer, integer) (
  SFUNC = ai_cost_internal.histogram_step,
  STYPE = bigint[],
  FINALFUNC = ai_cost_internal.histogram_trim,
  COMBINEFUNC = ai_cost_internal.histogram_add,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE ai_cost_internal.histogram(integer, integer) IS 'Builds a latency histogram from (ms, weight) pairs.';

-- The p-th quantile (0 < p <= 1) of a histogram, in ms: the value of the
-- bucket holding the ceil(p * n)-th smallest latency, the same rank that
-- percentile_disc picks, so it lands in the bucket of the exact answer.
CREATE FUNCTION ai_cost.histogram_percentile(histogram bigint[], fraction float8) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ai_cost.latency_bucket_value((i - 1)::integer)
    FROM (SELECT i, sum(n) OVER (ORDER BY i) AS running, sum(n) OVER () AS total
            FROM unnest(histogram) WITH ORDINALITY AS t(n, i)) AS s
   WHERE total > 0 AND running >= greatest(1, ceil(fraction * total))
   ORDER BY i
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost.histogram_percentile(bigint[], float8) IS 'Quantile (e.g. 0.95) of a latency histogram in ms, within 9% of the exact percentile_disc; NULL for an empty histogram.';

