-- The compiled price book: the prices that apply now, as constants the cost
-- trigger reads without a query.
--
-- The prices that apply now to anyone without terms of their own (list
-- prices, with the organisation's discount where one is in force, below any
-- long-context tier) are compiled whenever the price lookup is rebuilt: into
-- ai_cost_internal.price_book, a table with one row per (provider, service
-- tier, model) that ai_cost.insert_calls() hashes once per batch, and into
-- small SQL functions whose bodies are literals: a jsonb object from
-- "provider tier model" to a slot number, a bigint[][] of rates and token
-- limits per slot, a smaller one of the rates and limits a plain call reads
-- (the planner parses every literal the trigger names, see 060_cost.sql), one
-- of the price and discount ids per slot, a timestamptz[][] of validity per
-- slot, the set of tenants with prices or discounts of their own, the time
-- the book next goes stale, whether any markup bills calls, and the markups
-- in force now (065_billing.sql). The planner inlines SQL functions, so in
-- the trigger these are constants in the plan: finding the price is a binary
-- search over the jsonb keys and an array subscript, with no query. One
-- indexed probe of the lookup per row cost about 5 us on PostgreSQL 15, as
-- much as the insert itself (docs/pricing.md has the measurements).
--
-- Rates are held as whole picodollars per token (USD per 1M tokens times
-- 10^6), with the organisation's discount already taken off, so the cost is
-- exact integer arithmetic:
--   cost_micros = ceil(factor x sum(tokens x USD per 1M tokens))
--               = ceil(sum(tokens x factor x USD per 1M tokens))
--               = (sum(tokens x picodollars per token) + 999999) / 1000000
-- which is the same number the numeric formula gives (060_cost.sql). A rate
-- that is not a whole number of picodollars once discounted (15% off 1.10 USD
-- is 935,000 picodollars; 1/3 off would not be whole), or above 1,000 USD per
-- 1M tokens, is not compiled; with token counts below 2^30 (checked first) no
-- sum can overflow a bigint: each term is such a count, or a difference of
-- them, times at most 10^9 picodollars, and a part and the rest of its whole
-- (the cached audio and the other cache reads, say) are positive together only
-- when they add up to the whole, and the trigger takes the book only where
-- the text input and output, less the parts billed apart, are not negative,
-- so the positive terms come to less than 6 x 2^30 x 10^9 < 2^63 (the text,
-- image and video input at most twice the input; each cache and the
-- non-cached audio input once; the output once). Reasoning, cached audio,
-- image and video are compiled at the rate that bills them: their own, or
-- else the output rate, the cache read rate and the input rate, so one sum
-- prices every call. Per dimension the book keeps the bits a token
-- count may use: 0 without a rate (the count must be 0 or NULL), else 30, or
-- fewer for input below a long-context tier. The trigger's constant holds them
-- as masks, -(2^bits): a count t fits exactly when t & mask = 0, which also
-- refuses a negative t, in one operator per dimension.
--
-- Everything else takes the lookup: a tenant with prices or discounts of its
-- own (which replace the organisation's discount), a model with a price of
-- certain hours of the day (off-peak prices), a call near or above a
-- long-context tier's threshold or with 2^30 tokens or more, a call made
-- outside its price's validity (backdated history, or a price or discount
-- change that took effect since the last compile: a price's validity in the
-- book ends where anything else that applies to its key starts or ends), a
-- used dimension without a rate, units, app-cache hits, provider-reported
-- costs, patterns, unknown models. Correctness never depends on the book being
-- current: it answers only inside each price's validity, and is rebuilt in the
-- same transaction as every price, alias or discount change. ai_cost.refresh()
-- recompiles when a price in the lookup starts or ends since the last compile,
-- so a scheduled price change gets the fast path back within a refresh.
--
-- Slots are numbered per compile. The trigger reads the slot, the rates, the
-- ids and the windows in separate PL/pgSQL expressions, each planned on its
-- own with the functions' constants folded in, and a compile that commits while a
-- backend is planning them can leave one expression with the book before it
-- and another with the book after it. Each compile takes the next
-- generation, and numbers its slots from 1 + generation x 2^20, where no
-- slot of the generation before or after it lies; the arrays are declared
-- with those bounds. A slot of one compile is then outside the arrays of
-- another, where a subscript is NULL: the trigger's tests fail and its sums
-- are NULL, and it takes the lookup (060_cost.sql). 2047 ranges of 2^20
-- slots fit in an integer above 0, so generations count modulo 2047: two
-- compiles share numbers only 2047 generations apart, and a transaction that
-- compiles many times (a statement per price) takes one generation. Beyond
-- 2^20 list prices, the first 2^20 keys are compiled and the rest take the
-- lookup.
--
-- Safety. The generated bodies are literals made with format('%L') from
-- typed values (jsonb, bigint[], timestamptz[]), never SQL text from input,
-- and every operator in them is schema-qualified. The compiler is SECURITY
-- DEFINER because replacing a function needs its owner, and whoever may
-- change prices (ai_cost_admin, or the user's own roles) must be able to
-- recompile: all it can do is derive the book again from committed prices.

-- The compiled book as a table, one row per (provider, service tier, model)
-- with a current list price: what insert_calls() joins, and what the cost
-- trigger's constants are generated from. Its slot in the current
-- compile's numbering; the price row and the organisation discount applied
-- to it (NULL: none); rates in picodollars
-- per token after that discount (0: none), and per dimension the bits a
-- token count may use (see the header).
-- Written only by ai_cost_internal.compile_price_book(), in the same
-- transaction as every price change.
CREATE TABLE ai_cost_internal.price_book (
  slot integer PRIMARY KEY,
  key text NOT NULL UNIQUE,
  provider text NOT NULL,
  service_tier text NOT NULL,
  model text NOT NULL,
  price_id bigint NOT NULL,
  discount_id bigint,
  input_rate bigint NOT NULL, output_rate bigint NOT NULL, cache_read_rate bigint NOT NULL,
  cache_write_rate bigint NOT NULL, cache_write_1h_rate bigint NOT NULL,
  audio_input_rate bigint NOT NULL, audio_output_rate bigint NOT NULL,
  reasoning_rate bigint NOT NULL, cache_read_audio_rate bigint NOT NULL,
  image_input_rate bigint NOT NULL, image_output_rate bigint NOT NULL, video_input_rate bigint NOT NULL,
  input_bits integer NOT NULL, output_bits integer NOT NULL, cache_read_bits integer NOT NULL,
  cache_write_bits integer NOT NULL, cache_write_1h_bits integer NOT NULL,
  audio_input_bits integer NOT NULL, audio_output_bits integer NOT NULL,
  reasoning_bits integer NOT NULL, cache_read_audio_bits integer NOT NULL,
  image_input_bits integer NOT NULL, image_output_bits integer NOT NULL, video_input_bits integer NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz NOT NULL
);
COMMENT ON TABLE ai_cost_internal.price_book IS 'Internal: the compiled price book (current list prices, less the organisation''s discount, as integer picodollars per token), written by ai_cost_internal.compile_price_book().';

-- The generation of the last compile, and the transaction that compiled it:
-- every compile in one transaction keeps the generation it took first, so
-- generations advance once per committed book (see the header).
CREATE TABLE ai_cost_internal.price_book_generation (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  generation integer NOT NULL CHECK (generation BETWEEN 0 AND 2046),
  compiled_in xid8
);
INSERT INTO ai_cost_internal.price_book_generation (generation) VALUES (0);
COMMENT ON TABLE ai_cost_internal.price_book_generation IS 'Internal: the generation of the compiled price book, from which ai_cost_internal.compile_price_book() numbers its slots, and the transaction that took it.';

-- The book for ai_cost.insert_calls() to hash once per batch. A function the
-- planner does not inline, so that its ROWS estimate, below a batch's, makes
-- it hash the book and not the batch.
CREATE FUNCTION ai_cost_internal.price_book_entries() RETURNS SETOF ai_cost_internal.price_book
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 50 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT * FROM ai_cost_internal.price_book;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_book_entries() IS 'Internal: the rows of ai_cost_internal.price_book, with a planner estimate that makes ai_cost.insert_calls() hash them.';


CREATE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_plain_rates text;
  book_ids text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
  markups jsonb;
  markups_from timestamptz;
  base integer;
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  UPDATE ai_cost_internal.price_book_generation
     SET generation = CASE WHEN compiled_in = pg_current_xact_id() THEN generation ELSE (generation + 1) % 2047 END,
         compiled_in = pg_current_xact_id()
  RETURNING 1 + generation * 1048576 INTO base;
  DELETE FROM ai_cost_internal.price_book;
  WITH in_force AS (
    -- Per key the row a call without terms of its own takes now, below any
    -- long-context tier: the list price with the organisation's narrowest
    -- discount, or the list price (the lowest rank, as the lookup orders).
    SELECT DISTINCT ON (l.provider, l.service_tier, l.model) l.*
      FROM ai_cost_internal.price_lookup l
     WHERE l.tenant_id = '' AND l.above_input_tokens = 0
       AND l.valid_from <= now() AND (l.valid_to IS NULL OR l.valid_to > now())
       AND strpos(l.provider, ' ') = 0 AND strpos(l.model, ' ') = 0
       -- A key with a price of certain hours of the day, now or to come,
       -- depends on the hour of each call: the lookup prices it.
       AND NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup w
                        WHERE w.provider = l.provider AND w.model = l.model AND w.service_tier = l.service_tier
                          AND w.daily_from IS NOT NULL AND (w.valid_to IS NULL OR w.valid_to > now()))
     ORDER BY l.provider, l.service_tier, l.model, l.rank
  ), list_prices AS (
    -- A key is three words; provider and model must hold no space, so no
    -- other (provider, tier, model) can spell the same key.
    SELECT l.provider || ' ' || l.service_tier || ' ' || l.model AS key, l.provider, l.service_tier, l.model,
           l.price_id, l.discount_id,
           -- The row's validity, cut to the instants around now where no other
           -- row of the key starts or ends: a list price runs on past the start
           -- or end of a discount on it, which then decides the price.
           greatest(l.valid_from, (SELECT max(b.at) FROM ai_cost_internal.price_lookup o
                                    CROSS JOIN LATERAL (VALUES (o.valid_from), (o.valid_to)) AS b(at)
                                   WHERE o.provider = l.provider AND o.model = l.model AND o.service_tier = l.service_tier
                                     AND o.tenant_id = '' AND o.above_input_tokens = 0 AND b.at <= now())) AS valid_from,
           least(l.valid_to, (SELECT min(b.at) FROM ai_cost_internal.price_lookup o
                               CROSS JOIN LATERAL (VALUES (o.valid_from), (o.valid_to)) AS b(at)
                              WHERE o.provider = l.provider AND o.model = l.model AND o.service_tier = l.service_tier
                                AND o.tenant_id = '' AND o.above_input_tokens = 0 AND b.at > now())) AS valid_to,
           (SELECT min(t.above_input_tokens) FROM ai_cost_internal.price_lookup t
             WHERE t.provider = l.provider AND t.model = l.model AND t.service_tier = l.service_tier
               AND t.tenant_id = '' AND t.above_input_tokens > 0) AS next_tier_above,
           -- The discount is taken off each rate: factor x sum = sum of factor x rate, exactly.
           ARRAY[l.input_per_mtok * l.factor, l.output_per_mtok * l.factor, l.cache_read_per_mtok * l.factor,
                 l.cache_write_per_mtok * l.factor, l.cache_write_1h_per_mtok * l.factor,
                 l.audio_input_per_mtok * l.factor, l.audio_output_per_mtok * l.factor,
                 coalesce(l.reasoning_per_mtok, l.output_per_mtok) * l.factor,
                 coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok) * l.factor,
                 coalesce(l.image_input_per_mtok, l.input_per_mtok) * l.factor,
                 coalesce(l.image_output_per_mtok, l.output_per_mtok) * l.factor,
                 coalesce(l.video_input_per_mtok, l.input_per_mtok) * l.factor] AS per_mtok
      FROM in_force l
  ), compilable AS (
    SELECT row_number() OVER (ORDER BY p.key) AS slot, p.*,
           -- The rates in picodollars per token (0: none).
           ARRAY(SELECT coalesce((r.rate * 1000000)::bigint, 0) FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS rates,
           -- Per dimension the bits a token count may use (see the cost trigger in 060_cost.sql):
           -- 0 without a rate; for input below the first long-context tier,
           -- the largest power of two not above its threshold + 1.
           ARRAY(SELECT CASE WHEN r.rate IS NULL THEN 0
                             WHEN r.n = 1 AND p.next_tier_above IS NOT NULL
                             THEN least(30, floor(log(2::numeric, p.next_tier_above + 1))::integer)
                             ELSE 30 END
                   FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS bits
      FROM list_prices p
     WHERE NOT EXISTS (SELECT FROM unnest(p.per_mtok) AS r(rate)
                        WHERE r.rate * 1000000 <> trunc(r.rate * 1000000) OR r.rate > 1000)
       -- The book writes no discount as 0: a discount id of 0 or less (an
       -- identity overridden by hand) is left to the lookup.
       AND coalesce(p.discount_id, 1) > 0
  )
  INSERT INTO ai_cost_internal.price_book
  SELECT base + c.slot - 1, c.key, c.provider, c.service_tier, c.model, c.price_id, c.discount_id,
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7], c.rates[8], c.rates[9],
         c.rates[10], c.rates[11], c.rates[12],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7], c.bits[8], c.bits[9],
         c.bits[10], c.bits[11], c.bits[12],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c
   WHERE c.slot <= 1048576;

  -- The same book as constants for the cost trigger, the bits as masks, in
  -- arrays whose first slot is base. The discount id is 0 for none, so that
  -- NULL always means a slot outside the array; without NULLs an array has
  -- no null bitmap either, and a subscript is an offset rather than a walk
  -- over the elements before it.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce(format('[%s:%s][1:24]={', base, max(b.slot)) || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}',
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           b.image_input_rate, b.image_output_rate, b.video_input_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits), -(1::bigint << b.image_input_bits),
                                           -(1::bigint << b.image_output_bits), -(1::bigint << b.video_input_bits)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:7]={', base, max(b.slot)) || string_agg(format('{%s,%s,%s,%s,%s,%s,%s}',
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.reasoning_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:2]={', base, max(b.slot)) || string_agg(format('{%s,%s}', b.price_id, coalesce(b.discount_id, 0)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:2]={', base, max(b.slot)) || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
    INTO book_slots, book_rates, book_plain_rates, book_ids, book_windows
    FROM ai_cost_internal.price_book b;

  SELECT jsonb_object_agg(t.tenant_id, true) INTO own_price_tenants
    FROM (SELECT DISTINCT l.tenant_id FROM ai_cost_internal.price_lookup l WHERE l.tenant_id <> '') t;

  -- The first moment a price in the lookup starts or ends after now: from
  -- then on the book no longer holds every price that applies.
  SELECT min(b.at) INTO stale_at
    FROM (SELECT l.valid_from AS at FROM ai_cost_internal.price_lookup l WHERE l.valid_from > now()
          UNION ALL
          SELECT l.valid_to FROM ai_cost_internal.price_lookup l WHERE l.valid_to > now()
          UNION ALL
          SELECT m.valid_from FROM ai_cost.markups m WHERE m.valid_from > now()
          UNION ALL
          SELECT m.valid_to FROM ai_cost.markups m WHERE m.valid_to > now()) b;

  -- The markups in force now, for the billing trigger (065_billing.sql), as
  -- {scope: {provider: {model: [id, percent, per_call, per_mtok]}}}: scope is
  -- the tenant, or '' for every tenant; provider and model '' for all. They
  -- hold for calls from the last moment a markup started or ended up to the
  -- next (stale_at).
  SELECT coalesce(jsonb_object_agg(p.scope, p.providers), '{}') INTO markups
    FROM (SELECT m.scope, jsonb_object_agg(m.provider, m.models) AS providers
            FROM (SELECT coalesce(k.tenant_id, '') AS scope, coalesce(k.provider, '') AS provider,
                         jsonb_object_agg(coalesce(k.model, ''), jsonb_build_array(k.id, k.percent, k.per_call, k.per_mtok)) AS models
                    FROM ai_cost.markups k
                   WHERE k.valid_from <= now() AND (k.valid_to IS NULL OR k.valid_to > now())
                   GROUP BY 1, 2) m
           GROUP BY m.scope) p;
  SELECT max(b.at) INTO markups_from
    FROM (SELECT m.valid_from AS at FROM ai_cost.markups m WHERE m.valid_from <= now()
          UNION ALL
          SELECT m.valid_to FROM ai_cost.markups m WHERE m.valid_to <= now()) b;

  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_slot(key text) RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.->>) $1 AS pg_catalog.int4)', book_slots));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_rates() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_rates));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_plain_rates() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_plain_rates));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_ids() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_ids));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_windows() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])', book_windows));
  -- Without any such tenant the body is the constant false, which the
  -- planner folds out of the trigger's condition.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_has_tenant(tenant_id text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN own_price_tenants IS NULL THEN 'SELECT false'
         ELSE format('SELECT coalesce(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.?) $1, false)', own_price_tenants) END);
  -- The billing trigger's condition asks this: a constant, folded out of
  -- it, so a ledger without markups pays nothing for billing.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.bills_calls() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN EXISTS (SELECT FROM ai_cost.markups) THEN 'SELECT true' ELSE 'SELECT false' END);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.markup_book() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.jsonb)', markups));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.markup_book_window() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])',
           ARRAY[coalesce(markups_from, '-infinity'), coalesce(stale_at, 'infinity')]::timestamptz[]));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_stale_at() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz)', coalesce(stale_at, 'infinity')));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.compile_price_book() IS 'Internal: rewrites the compiled price book (ai_cost_internal.price_book_*) from the resolved price lookup.';

-- The generated functions exist from the first compile on.
SELECT ai_cost_internal.compile_price_book();
COMMENT ON FUNCTION ai_cost_internal.price_book_slot(text) IS 'Internal, generated by ai_cost_internal.compile_price_book(): the slot of a current list price by "provider service_tier model", or NULL; slots are numbered from 1 + generation x 2^20, so no two consecutive compiles share one.';
COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the input, output, cache read, cache write, 1-hour cache write, audio input, audio output, reasoning, cached audio input, image input, image output and video input rates in picodollars per token, less the organisation''s discount (0: none; reasoning and image output at the output rate, cached audio at the cache read rate, image and video input at the input rate when the price has no rate of their own); then for the same twelve token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL). Its first slot is the compile''s first, 1 + generation x 2^20, so a slot of another compile reads NULL.';
COMMENT ON FUNCTION ai_cost_internal.price_book_plain_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot what a call without cache writes, audio, image or video is priced from: the input, output, cache read and reasoning rates and the masks of the input, output and cache read counts, as in ai_cost_internal.price_book_rates(), and numbered as it is.';
COMMENT ON FUNCTION ai_cost_internal.price_book_ids() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id and the id of the organisation discount applied (0: none); numbered as ai_cost_internal.price_book_rates().';
COMMENT ON FUNCTION ai_cost_internal.price_book_windows() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot when its price and discount apply, [from, to); numbered as ai_cost_internal.price_book_rates().';
COMMENT ON FUNCTION ai_cost_internal.price_book_has_tenant(text) IS 'Internal, generated by ai_cost_internal.compile_price_book(): whether a tenant has prices or discounts of its own (the compiled book holds list prices only).';
COMMENT ON FUNCTION ai_cost_internal.bills_calls() IS 'Internal, generated by ai_cost_internal.compile_price_book(): whether ai_cost.markups has any row, so that calls are billed (065_billing.sql).';
COMMENT ON FUNCTION ai_cost_internal.price_book_stale_at() IS 'Internal, generated by ai_cost_internal.compile_price_book(): when a price or markup next starts or ends, after which ai_cost.refresh() compiles the book again.';
COMMENT ON FUNCTION ai_cost_internal.markup_book() IS 'Internal, generated by ai_cost_internal.compile_price_book(): the markups in force now as {scope: {provider: {model: [id, percent, per_call, per_mtok]}}}, scope the tenant or '''' for every tenant, provider and model '''' for all (065_billing.sql).';
COMMENT ON FUNCTION ai_cost_internal.markup_book_window() IS 'Internal, generated by ai_cost_internal.compile_price_book(): [from, to) of created_at for which ai_cost_internal.markup_book() holds the markups in force.';
