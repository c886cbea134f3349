-- Up Migration
--
-- The compiled price book: the cost trigger without a query per call.
--
-- Why. After 0005 the cost trigger still ran one query per inserted row, the
-- indexed probe of ai_cost._private_price_lookup. Measured on PostgreSQL 15
-- (backend CPU per row, bulk INSERT ... SELECT, `npm run bench trigger`): a
-- row costs about 5 us to insert without a trigger, an empty PL/pgSQL trigger
-- adds 0.3-0.5 us, and that one query added about 5 us more (executor start,
-- locks, index descent, end), the numeric cost expression about 1.5 us. The
-- ratio to an insert without the trigger stayed near 3x for bulk writes,
-- against a target of 1.5x.
--
-- What. The price rows that apply now to anyone without prices of their own
-- (list prices, below any long-context tier) are compiled into constants:
-- whenever the price lookup is rebuilt, ai_cost._private_compile_price_book()
-- rewrites small SQL functions whose bodies are literals: a jsonb object from
-- "provider tier model" to a slot number, a bigint[][] of price ids, rates
-- and token limits per slot, a timestamptz[][] of validity per slot, the set
-- of tenants with prices or discounts of their own, and the time the book
-- next goes stale. The planner inlines SQL functions,
-- so in the trigger these are constants in the plan: finding the price is a
-- binary search over the jsonb keys and an array subscript, with no query.
-- Rates are held as whole picodollars per token (USD per 1M tokens times
-- 10^6), so the cost is exact integer arithmetic:
--   cost_micros = ceil(sum(tokens x USD per 1M tokens))
--               = (sum(tokens x picodollars per token) + 999999) / 1000000
-- which is the same number the numeric formula gives. A rate that is not a
-- whole number of picodollars, or above 1,000 USD per 1M tokens, is not
-- compiled; with token counts below 2^30 (checked first) no sum can
-- overflow a bigint (7 x 2^30 x 10^9 < 2^63).
--
-- Everything else takes the paths it took before: a tenant with prices or
-- discounts of its own, a call near or above a long-context tier's threshold
-- or with 2^30 tokens or more, a call made outside its
-- price's validity (backdated history, or a price change that took effect
-- since the last compile), a used dimension without a rate, units, app-cache
-- hits, provider-reported costs, patterns, unknown models. Correctness never
-- depends on the book being current: it answers only inside each price's
-- validity, and is rebuilt in the same transaction as every price, alias or
-- discount change. ai_cost.refresh() recompiles when a price in the lookup
-- starts or ends since the last compile, so a scheduled price change gets the
-- fast path back within a refresh. test/pricing-fast-path.test.ts holds the
-- trigger to ai_cost._private_cost_of() on calls covering every path.
--
-- Safety. The generated bodies are literals made with format('%L') from
-- typed values (jsonb, bigint[], timestamptz[]), never SQL text from input,
-- and every operator in them is schema-qualified. The compiler is SECURITY
-- DEFINER because replacing a function needs its owner, and whoever may
-- change prices (ai_cost_admin, or the user's own roles) must be able to
-- recompile: all it can do is derive the book again from committed prices.

-- Rewrites the four price book functions from ai_cost._private_price_lookup.
-- Called by the lookup rebuild (every price, alias or discount change) and by
-- ai_cost.refresh() once a price starts or ends. Holds the lookup's EXCLUSIVE
-- lock, so two compiles take turns instead of failing with "tuple
-- concurrently updated" on pg_proc. TimeZone is pinned so the timestamps in
-- the generated text do not depend on the caller's session.
CREATE FUNCTION ai_cost._private_compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
BEGIN
  LOCK TABLE ai_cost._private_price_lookup IN EXCLUSIVE MODE;
  WITH list_prices AS (
    -- A key is three words; provider and model must hold no space, so no
    -- other (provider, tier, model) can spell the same key.
    SELECT l.provider || ' ' || l.service_tier || ' ' || l.model AS key, l.price_id, l.valid_from, l.valid_to,
           (SELECT min(t.above_input_tokens) FROM ai_cost._private_price_lookup t
             WHERE t.provider = l.provider AND t.model = l.model AND t.service_tier = l.service_tier
               AND t.tenant_id = '' AND t.above_input_tokens > 0) AS next_tier_above,
           ARRAY[l.input_per_mtok, l.output_per_mtok, l.cache_read_per_mtok, l.cache_write_per_mtok,
                 l.cache_write_1h_per_mtok, l.audio_input_per_mtok, l.audio_output_per_mtok] AS per_mtok
      FROM ai_cost._private_price_lookup l
     WHERE l.tenant_id = '' AND l.above_input_tokens = 0
       AND l.valid_from <= now() AND (l.valid_to IS NULL OR l.valid_to > now())
       AND strpos(l.provider, ' ') = 0 AND strpos(l.model, ' ') = 0
  ), compilable AS (
    SELECT row_number() OVER (ORDER BY p.key) AS slot, p.*
      FROM list_prices p
     WHERE NOT EXISTS (SELECT FROM unnest(p.per_mtok) AS r(rate)
                        WHERE r.rate * 1000000 <> trunc(r.rate * 1000000) OR r.rate > 1000)
  )
  SELECT coalesce(jsonb_object_agg(c.key, c.slot), '{}'),
         coalesce('{' || string_agg(
           -- The price id, the seven rates in picodollars per token (0: none),
           -- then per dimension the bits a token count may use (see the trigger).
           '{' || c.price_id || ','
               || (SELECT string_agg(coalesce((r.rate * 1000000)::bigint, 0)::text, ',' ORDER BY r.n)
                     FROM unnest(c.per_mtok) WITH ORDINALITY AS r(rate, n)) || ','
               || (SELECT string_agg(CASE WHEN r.rate IS NULL THEN 0
                                          -- Input below the first long-context tier only: the
                                          -- largest power of two not above its threshold + 1.
                                          WHEN r.n = 1 AND c.next_tier_above IS NOT NULL
                                          THEN least(30, floor(log(2::numeric, c.next_tier_above + 1))::integer)
                                          ELSE 30 END::text, ',' ORDER BY r.n)
                     FROM unnest(c.per_mtok) WITH ORDINALITY AS r(rate, n)) || '}',
           ',' ORDER BY c.slot) || '}', '{}'),
         coalesce('{' || string_agg('{"' || c.valid_from || '","' || coalesce(c.valid_to, 'infinity') || '"}', ',' ORDER BY c.slot) || '}', '{}')
    INTO book_slots, book_rates, book_windows
    FROM compilable c;

  SELECT jsonb_object_agg(t.tenant_id, true) INTO own_price_tenants
    FROM (SELECT DISTINCT l.tenant_id FROM ai_cost._private_price_lookup l WHERE l.tenant_id <> '') t;

  -- The first moment a price in the lookup starts or ends after now: from
  -- then on the book no longer holds every price that applies.
  SELECT min(b.at) INTO stale_at
    FROM (SELECT l.valid_from AS at FROM ai_cost._private_price_lookup l WHERE l.valid_from > now()
          UNION ALL
          SELECT l.valid_to FROM ai_cost._private_price_lookup l WHERE l.valid_to > now()) b;

  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost._private_price_book_slot(key text) RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.->>) $1 AS pg_catalog.int4)', book_slots));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost._private_price_book_rates() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_rates));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost._private_price_book_windows() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])', book_windows));
  -- Without any such tenant the body is the constant false, which the
  -- planner folds out of the trigger's condition.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost._private_price_book_has_tenant(tenant_id text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN own_price_tenants IS NULL THEN 'SELECT false'
         ELSE format('SELECT coalesce(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.?) $1, false)', own_price_tenants) END);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost._private_price_book_stale_at() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz)', coalesce(stale_at, 'infinity')));
END
$$;
COMMENT ON FUNCTION ai_cost._private_compile_price_book() IS 'Internal: rewrites the compiled price book (ai_cost._private_price_book_*) from the resolved price lookup; see migration 0010.';

SELECT ai_cost._private_compile_price_book();
COMMENT ON FUNCTION ai_cost._private_price_book_slot(text) IS 'Internal, generated by ai_cost._private_compile_price_book(): the slot of a current list price by "provider service_tier model", or NULL.';
COMMENT ON FUNCTION ai_cost._private_price_book_rates() IS 'Internal, generated by ai_cost._private_compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input and audio output rates in picodollars per token (0: none); then for the same seven token counts the bits they may use to be priced here (0: must be 0 or NULL).';
COMMENT ON FUNCTION ai_cost._private_price_book_windows() IS 'Internal, generated by ai_cost._private_compile_price_book(): per slot the validity of its price, [from, to).';
COMMENT ON FUNCTION ai_cost._private_price_book_has_tenant(text) IS 'Internal, generated by ai_cost._private_compile_price_book(): whether a tenant has prices or discounts of its own (the compiled book holds list prices only).';
COMMENT ON FUNCTION ai_cost._private_price_book_stale_at() IS 'Internal, generated by ai_cost._private_compile_price_book(): when a price next starts or ends, after which ai_cost.refresh() compiles the book again.';

-- As in 0002, plus compiling the book from the rebuilt lookup.
CREATE OR REPLACE FUNCTION ai_cost._private_rebuild_price_lookup() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  LOCK TABLE ai_cost._private_price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost._private_price_lookup;
  INSERT INTO ai_cost._private_price_lookup
  WITH priced AS (
    -- Each price row answers for its model id and for the model's aliases,
    -- except where an alias has a price of its own for the same tier.
    SELECT p.model AS name, p.* FROM ai_cost.prices p
    UNION ALL
    SELECT a.alias, p.*
      FROM ai_cost.model_aliases a
      JOIN ai_cost.prices p ON p.provider = a.provider AND p.model = a.model
     WHERE NOT EXISTS (SELECT FROM ai_cost.prices own
                        WHERE own.provider = a.provider AND own.model = a.alias
                          AND own.service_tier = p.service_tier AND own.above_input_tokens = p.above_input_tokens
                          AND own.tenant_id IS NOT DISTINCT FROM p.tenant_id)
  )
  SELECT provider, name, service_tier, coalesce(tenant_id, ''), CASE WHEN tenant_id IS NULL THEN 4 ELSE 0 END,
         above_input_tokens, valid_from, valid_to, id, NULL, 1, model,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price
    FROM priced
  UNION ALL
  -- List prices with a tenant's discount, for the discount's period.
  SELECT p.provider, p.name, p.service_tier, d.tenant_id,
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price
    FROM priced p
    JOIN ai_cost.tenant_discounts d
      ON p.tenant_id IS NULL
     AND (d.provider IS NULL OR d.provider = p.provider)
     AND (d.model IS NULL OR d.model = p.model)
    CROSS JOIN LATERAL (SELECT tstzrange(p.valid_from, p.valid_to) * tstzrange(d.valid_from, d.valid_to) AS r) i
   WHERE NOT isempty(r);
  PERFORM ai_cost._private_compile_price_book();
END
$$;

-- The cost trigger: the compiled book first, then 0005's paths unchanged.
-- Each reference to a NEW field costs a few tens of nanoseconds, which is
-- most of what the book's path costs, so it reads each field as few times as
-- it can. A call takes the book's path when it is plain (token counts and no
-- units, no app-cache hit or provided cost, nothing preset, no tenant terms
-- of its own),
-- its slot's price is valid at created_at, and each token count t passes
-- t >> b = 0 with the slot's b for that dimension: that is 0 <= t < 2^b,
-- with b = 30 where the price has a rate (t below 2^30, so no product or sum
-- can overflow a bigint), b = 0 where it has none (t must be 0 or NULL: a
-- used dimension without a rate is for the slow path to explain), and for
-- input below a long-context tier the largest b with 2^b - 1 within its
-- threshold. So one shift and one comparison per dimension stand for a range
-- check, a rate check and a tier check, and rates of 0 where there are none
-- need no CASE in the sum. Why there is no SET search_path: see 0005; the
-- book's own bodies qualify every operator.
CREATE OR REPLACE FUNCTION ai_cost._private_price_call() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_unit numeric;
BEGIN
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost._private_price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost._private_price_book_slot(NEW.provider || ' ' || NEW.service_tier || ' ' || NEW.model);
    IF slot IS NOT NULL
       AND (ai_cost._private_price_book_windows())[slot][1] <= NEW.created_at
       AND NEW.created_at < (ai_cost._private_price_book_windows())[slot][2]
       AND coalesce(NEW.input_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][9]::integer = 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][10]::integer = 0::bigint
       AND coalesce(NEW.cache_read_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][11]::integer = 0::bigint
       -- Cache writes and audio are rare: when a call has none, their checks are skipped.
       AND (coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
            OR (coalesce(NEW.cache_write_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][12]::integer = 0::bigint
                AND coalesce(NEW.cache_write_1h_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][13]::integer = 0::bigint
                AND coalesce(NEW.audio_input_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][14]::integer = 0::bigint
                AND coalesce(NEW.audio_output_tokens, 0::bigint) >> (ai_cost._private_price_book_rates())[slot][15]::integer = 0::bigint)) THEN
      -- The same sum as 0005's numeric one, in picodollars, rounded up once;
      -- the first branch is the whole sum for a call without cache writes or
      -- audio, which is most calls. A negative part can only come from a row
      -- the CHECK constraints refuse next (audio_output_tokens above
      -- output_tokens, say); the input part can be negative in a valid row,
      -- and is clamped as in 0005.
      NEW.cost_micros := CASE
        WHEN coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
        THEN (greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint), 0::bigint)
                * (ai_cost._private_price_book_rates())[slot][2]
              + coalesce(NEW.output_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][3]
              + coalesce(NEW.cache_read_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][4]
              + 999999::bigint) / 1000000::bigint
        ELSE (greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                       - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)
                * (ai_cost._private_price_book_rates())[slot][2]
              + (coalesce(NEW.output_tokens, 0::bigint) - coalesce(NEW.audio_output_tokens, 0::bigint)) * (ai_cost._private_price_book_rates())[slot][3]
              + coalesce(NEW.cache_read_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][4]
              + (coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.cache_write_1h_tokens, 0::bigint)) * (ai_cost._private_price_book_rates())[slot][5]
              + coalesce(NEW.cache_write_1h_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][6]
              + coalesce(NEW.audio_input_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][7]
              + coalesce(NEW.audio_output_tokens, 0::bigint) * (ai_cost._private_price_book_rates())[slot][8]
              + 999999::bigint) / 1000000::bigint
        END;
      NEW.price_id := (ai_cost._private_price_book_rates())[slot][1];
      RETURN NEW;
    END IF;
  END IF;

  -- From here on, 0005's trigger as it was.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) <= 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs and calls without usage have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost._private_price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_unit
    FROM ai_cost._private_price_lookup l
   WHERE l.provider = NEW.provider AND l.model = NEW.model AND l.service_tier = NEW.service_tier
     AND (l.tenant_id = ''::text OR l.tenant_id = NEW.tenant_id)
     AND l.valid_from <= NEW.created_at AND (l.valid_to IS NULL OR l.valid_to > NEW.created_at)
     AND (l.above_input_tokens = 0::bigint OR l.above_input_tokens < NEW.input_tokens)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                                 - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) - coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_read IS NOT NULL OR coalesce(NEW.cache_read_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (l_unit IS NOT DISTINCT FROM NEW.unit OR coalesce(NEW.units, 0::numeric) <= 0::numeric) THEN
    NEW.cost_micros := ceil(l_factor * (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                           - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)::numeric * r_input END
      + CASE WHEN NEW.output_tokens > 0::bigint THEN (NEW.output_tokens - coalesce(NEW.audio_output_tokens, 0::bigint))::numeric * coalesce(r_output, 0::numeric) ELSE 0::numeric END
      + CASE WHEN NEW.cache_read_tokens > 0::bigint THEN NEW.cache_read_tokens::numeric * r_cache_read ELSE 0::numeric END
      + CASE WHEN NEW.cache_write_tokens > 0::bigint
             THEN (NEW.cache_write_tokens - coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric * coalesce(r_cache_write, 0::numeric)
                + coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric * coalesce(r_cache_write_1h, 0::numeric)
             ELSE 0::numeric END
      + CASE WHEN NEW.audio_input_tokens > 0::bigint THEN NEW.audio_input_tokens::numeric * r_audio_input ELSE 0::numeric END
      + CASE WHEN NEW.audio_output_tokens > 0::bigint THEN NEW.audio_output_tokens::numeric * r_audio_output ELSE 0::numeric END
      + CASE WHEN NEW.units > 0::numeric THEN NEW.units * r_unit * 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost._private_price_call_slowly(NEW);
END
$$;
COMMENT ON FUNCTION ai_cost._private_price_call() IS 'Trigger: sets cost_micros, price_id, discount_id and unpriced_reason of a call (from the compiled price book for a current list price; by the price lookup or _private_cost_of() otherwise); raises for calls of a strict-mode provider that cannot be priced.';

-- As in 0004 (with 0006's jit = off), plus compiling the price book again
-- once a price has started or ended since the last compile.
CREATE OR REPLACE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  IF ai_cost._private_price_book_stale_at() <= now() THEN
    PERFORM ai_cost._private_compile_price_book();
  END IF;
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.alerts INTO applied, alerts FROM ai_cost._private_refresh_rollups() AS r;
  ELSE
    RAISE NOTICE 'ai_cost.refresh(): the rollups are being refreshed by another session: skipped';
  END IF;
  IF views THEN
    IF pg_try_advisory_xact_lock(x'6169636f73745f76'::bigint) THEN
      views_done := true;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_share;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_feature;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_latency_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_top_spenders;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_trends;
    ELSE
      RAISE NOTICE 'ai_cost.refresh(): the materialized views are being rebuilt by another session: skipped';
    END IF;
  END IF;
  IF rollups_done OR views_done THEN
    UPDATE ai_cost._private_refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.alerts INTO applied, alerts FROM ai_cost._private_refresh_rollups() AS r;
  ELSE
    RAISE NOTICE 'ai_cost.refresh(): the rollups are being refreshed by another session: skipped';
  END IF;
  IF views THEN
    IF pg_try_advisory_xact_lock(x'6169636f73745f76'::bigint) THEN
      views_done := true;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_share;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_feature;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_latency_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_top_spenders;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_trends;
    ELSE
      RAISE NOTICE 'ai_cost.refresh(): the materialized views are being rebuilt by another session: skipped';
    END IF;
  END IF;
  IF rollups_done OR views_done THEN
    UPDATE ai_cost._private_refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost._private_price_call() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_unit numeric;
BEGIN
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) <= 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs and calls without usage have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost._private_price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_unit
    FROM ai_cost._private_price_lookup l
   WHERE l.provider = NEW.provider AND l.model = NEW.model AND l.service_tier = NEW.service_tier
     AND (l.tenant_id = ''::text OR l.tenant_id = NEW.tenant_id)
     AND l.valid_from <= NEW.created_at AND (l.valid_to IS NULL OR l.valid_to > NEW.created_at)
     AND (l.above_input_tokens = 0::bigint OR l.above_input_tokens < NEW.input_tokens)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                                 - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) - coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_read IS NOT NULL OR coalesce(NEW.cache_read_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (l_unit IS NOT DISTINCT FROM NEW.unit OR coalesce(NEW.units, 0::numeric) <= 0::numeric) THEN
    NEW.cost_micros := ceil(l_factor * (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                           - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)::numeric * r_input END
      + CASE WHEN NEW.output_tokens > 0::bigint THEN (NEW.output_tokens - coalesce(NEW.audio_output_tokens, 0::bigint))::numeric * coalesce(r_output, 0::numeric) ELSE 0::numeric END
      + CASE WHEN NEW.cache_read_tokens > 0::bigint THEN NEW.cache_read_tokens::numeric * r_cache_read ELSE 0::numeric END
      + CASE WHEN NEW.cache_write_tokens > 0::bigint
             THEN (NEW.cache_write_tokens - coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric * coalesce(r_cache_write, 0::numeric)
                + coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric * coalesce(r_cache_write_1h, 0::numeric)
             ELSE 0::numeric END
      + CASE WHEN NEW.audio_input_tokens > 0::bigint THEN NEW.audio_input_tokens::numeric * r_audio_input ELSE 0::numeric END
      + CASE WHEN NEW.audio_output_tokens > 0::bigint THEN NEW.audio_output_tokens::numeric * r_audio_output ELSE 0::numeric END
      + CASE WHEN NEW.units > 0::numeric THEN NEW.units * r_unit * 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost._private_price_call_slowly(NEW);
END
$$;
COMMENT ON FUNCTION ai_cost._private_price_call() IS 'Trigger: sets cost_micros, price_id, discount_id and unpriced_reason of a call (fast path for a found price with every used rate; _private_cost_of() otherwise); raises for calls of a strict-mode provider that cannot be priced.';

CREATE OR REPLACE FUNCTION ai_cost._private_rebuild_price_lookup() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  LOCK TABLE ai_cost._private_price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost._private_price_lookup;
  INSERT INTO ai_cost._private_price_lookup
  WITH priced AS (
    -- Each price row answers for its model id and for the model's aliases,
    -- except where an alias has a price of its own for the same tier.
    SELECT p.model AS name, p.* FROM ai_cost.prices p
    UNION ALL
    SELECT a.alias, p.*
      FROM ai_cost.model_aliases a
      JOIN ai_cost.prices p ON p.provider = a.provider AND p.model = a.model
     WHERE NOT EXISTS (SELECT FROM ai_cost.prices own
                        WHERE own.provider = a.provider AND own.model = a.alias
                          AND own.service_tier = p.service_tier AND own.above_input_tokens = p.above_input_tokens
                          AND own.tenant_id IS NOT DISTINCT FROM p.tenant_id)
  )
  SELECT provider, name, service_tier, coalesce(tenant_id, ''), CASE WHEN tenant_id IS NULL THEN 4 ELSE 0 END,
         above_input_tokens, valid_from, valid_to, id, NULL, 1, model,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price
    FROM priced
  UNION ALL
  -- List prices with a tenant's discount, for the discount's period.
  SELECT p.provider, p.name, p.service_tier, d.tenant_id,
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price
    FROM priced p
    JOIN ai_cost.tenant_discounts d
      ON p.tenant_id IS NULL
     AND (d.provider IS NULL OR d.provider = p.provider)
     AND (d.model IS NULL OR d.model = p.model)
    CROSS JOIN LATERAL (SELECT tstzrange(p.valid_from, p.valid_to) * tstzrange(d.valid_from, d.valid_to) AS r) i
   WHERE NOT isempty(r);
END
$$;

DROP FUNCTION ai_cost._private_price_book_slot(text);
DROP FUNCTION ai_cost._private_price_book_rates();
DROP FUNCTION ai_cost._private_price_book_windows();
DROP FUNCTION ai_cost._private_price_book_has_tenant(text);
DROP FUNCTION ai_cost._private_price_book_stale_at();
DROP FUNCTION ai_cost._private_compile_price_book();
