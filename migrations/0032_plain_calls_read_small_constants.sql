-- Up Migration
--
-- The compiled book's price and discount ids move out of its rates into an
-- array of their own, and the rates a plain call reads get one too, so that
-- each expression of the cost trigger names the smallest constant that
-- holds what it reads: the planner parses every constant an expression
-- names, about 4 ms for the full rates with the shipped catalog, which a
-- plain call named three times. The first insert of every connection pays
-- it (on Citus, of every connection and shard), and again after every price
-- change (sql/ holds the definitions; this step brings the schema there).

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
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

DROP FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint);

-- The cost of a plain call (no cache writes, audio, image or video) at its
-- slot of the book, or NULL where the book does not price it: outside the
-- price's validity, a token count past its mask, reasoning billed apart (a
-- call with reasoning at a price that bills it apart, Perplexity's Sonar Deep
-- Research, takes the lookup), or a slot of another compile (NULL).
-- plain_rates is ai_cost_internal.price_book_plain_rates(): per slot the
-- input, output, cache read and reasoning rates, then the masks of the
-- input, output and cache read counts. Reasoning is output here, at the
-- output rate. The same sum as priced()'s numeric one, in picodollars,
-- rounded up once. Uncached input needs no clamp at 0 here: with no cache
-- writes or audio it is negative only in a row the CHECK constraints refuse
-- next, and the masks keep every count below 2^30, so nothing overflows
-- first. OPERATOR(...) gives every operator the same precedence: each
-- product is in parentheses.
CREATE FUNCTION ai_cost_internal.book_cost_of_plain_call(
  plain_rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, reasoning_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) plain_rates[slot][5])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) plain_rates[slot][6])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) plain_rates[slot][7]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR plain_rates[slot][4] OPERATOR(pg_catalog.=) plain_rates[slot][2])
  THEN (((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint))
         OPERATOR(pg_catalog.*) plain_rates[slot][1])
       OPERATOR(pg_catalog.+) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.*) plain_rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) plain_rates[slot][3])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint) IS 'Internal, inlined into the cost trigger: the cost of a call without cache writes, audio, image or video from the plain rates of the compiled book at its slot, or NULL where the book does not price it.';

CREATE OR REPLACE FUNCTION ai_cost_internal.book_cost_of_call(
  rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint, reasoning_tokens bigint,
  cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][13])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][24]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(image_input_tokens, video_input_tokens) IS NULL
            OR coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint)
  THEN ((greatest(coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
                OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint), 0::bigint)
         OPERATOR(pg_catalog.*) rates[slot][1])
       OPERATOR(pg_catalog.+) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][10])
       OPERATOR(pg_catalog.+) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][12])
       OPERATOR(pg_catalog.+) ((coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][8])
       OPERATOR(pg_catalog.+) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][11])
       OPERATOR(pg_catalog.+) ((coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][3])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][9])
       OPERATOR(pg_catalog.+) ((coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][4])
       OPERATOR(pg_catalog.+) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][5])
       OPERATOR(pg_catalog.+) ((coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][6])
       OPERATOR(pg_catalog.+) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][7])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;

DROP FUNCTION ai_cost_internal.book_discount_id(bigint[], integer);

-- The organisation discount of the book at a slot, from
-- ai_cost_internal.price_book_ids(): NULL for none (the book writes it as
-- 0), 0 for a read outside the book.
CREATE FUNCTION ai_cost_internal.book_discount_id(ids bigint[], slot integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ids[slot][2] OPERATOR(pg_catalog.=) 0::bigint THEN NULL ELSE coalesce(ids[slot][2], 0::bigint) END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_discount_id(bigint[], integer) IS 'Internal, inlined into the cost trigger: the organisation discount the compiled book applies at a slot; NULL for none, 0 outside the book.';

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    NEW.cost_micros := ai_cost_internal.book_cost_of_plain_call(
      ai_cost_internal.price_book_plain_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.reasoning_tokens);
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    NEW.cost_micros := ai_cost_internal.book_cost_of_call(
      ai_cost_internal.price_book_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens, NEW.cache_write_1h_tokens,
      NEW.audio_input_tokens, NEW.audio_output_tokens, NEW.reasoning_tokens, NEW.cache_read_audio_tokens,
      NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens);
  END IF;
  -- Only the two book paths set the slot; where the book priced the call,
  -- its price and discount ids.
  IF slot IS NOT NULL AND NEW.cost_micros IS NOT NULL THEN
    NEW.price_id := (ai_cost_internal.price_book_ids())[slot][1];
    NEW.discount_id := ai_cost_internal.book_discount_id(ai_cost_internal.price_book_ids(), slot);
    -- Each expression is planned apart, and reads NULL (0 for the discount)
    -- where planned with another compile's book.
    IF NEW.price_id IS NOT NULL AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
      NEW.computed_cost_micros := NEW.cost_micros;
      RETURN NEW;
    END IF;
    -- A read across two compiles: nothing of it is kept.
    NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
  END IF;

  -- A call dated more than a day ahead of the database clock is refused: a
  -- day absorbs clocks out of step; a later date is a mistake, or a choice of
  -- a future price, and would make partitions no one needs. The book paths
  -- above take only calls within the day; insert_calls has the same bound.
  -- (Infinity is left to the CHECK constraint that names it.)
  IF NEW.created_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND pg_catalog.isfinite(NEW.created_at) THEN
    RAISE EXCEPTION 'created_at % is more than 1 day ahead of the database clock (%)', NEW.created_at, pg_catalog.now()
      USING ERRCODE = 'check_violation',
            HINT = 'Record the time the call was made: pg-ai-cost accepts calls dated at most 1 day ahead, for clocks out of step.';
  END IF;

  -- Not covered by the book: the lookup, as priced() does it.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    -- On a Citus shard NEW is a row of the shard's own table: the row
    -- constructor makes it an ai_cost.calls row on every node.
    RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) NEW.provider AND l.model OPERATOR(pg_catalog.=) NEW.model AND l.service_tier OPERATOR(pg_catalog.=) NEW.service_tier
     AND (l.tenant_id OPERATOR(pg_catalog.=) ''::pg_catalog.text OR l.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
     AND l.valid_from OPERATOR(pg_catalog.<=) NEW.created_at AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) NEW.created_at)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0::bigint OR l.above_input_tokens OPERATOR(pg_catalog.<) NEW.input_tokens)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window(NEW.created_at, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_read IS NOT NULL OR (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint
                                       AND (r_cache_read_audio IS NOT NULL OR coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)))
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (coalesce(l_unit OPERATOR(pg_catalog.=) NEW.unit, l_unit IS NULL AND NEW.unit IS NULL)
          OR coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 0::numeric) THEN
    NEW.cost_micros := pg_catalog.ceil(l_factor OPERATOR(pg_catalog.*) (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_read_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_read_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read_audio, r_cache_read, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_write_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_write_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write_1h, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_input_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (NEW.audio_input_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_audio_input, 0::numeric)
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_output_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.audio_output_tokens::numeric OPERATOR(pg_catalog.*) r_audio_output ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.units OPERATOR(pg_catalog.>) 0::numeric THEN NEW.units OPERATOR(pg_catalog.*) r_unit OPERATOR(pg_catalog.*) 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.computed_cost_micros := NEW.cost_micros;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_plain_rates(), ai_cost_internal.price_book_ids(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_discount_id(bigint[], integer),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text),
      ai_cost_internal.in_daily_window(timestamptz, time, time, text), ai_cost_internal.bills_calls(),
      ai_cost_internal.markup_book(), ai_cost_internal.markup_book_window(),
      ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric),
      ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint),
      ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)
    TO %I', grantee);
END
$$;

-- The book is compiled again with the compiler above. On Citus every node
-- compiles its own: the compiler first gets back its setting that keeps each
-- node's book on the node (145_distribution.sql), then a statement on the
-- prices fires the lookup trigger on each node's copy of them. A node
-- compiles from the price tables on it, so where an upgrade in the same run
-- added one the workers lack (markups), the coordinator compiles alone and
-- `ai-cost distribute`, which that upgrade needs anyway, compiles the rest.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    PERFORM ai_cost_internal.apply_cluster_function_settings();
    IF NOT EXISTS (SELECT FROM unnest(ai_cost_internal.reference_tables()) AS t
                    WHERE NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = t)) THEN
      UPDATE ai_cost.prices SET source = source WHERE id < 0;
      RETURN;
    END IF;
  END IF;
  PERFORM ai_cost_internal.compile_price_book();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the input, output, cache read, cache write, 1-hour cache write, audio input, audio output, reasoning, cached audio input, image input, image output and video input rates in picodollars per token, less the organisation''s discount (0: none; reasoning and image output at the output rate, cached audio at the cache read rate, image and video input at the input rate when the price has no rate of their own); then for the same twelve token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL). Its first slot is the compile''s first, 1 + generation x 2^20, so a slot of another compile reads NULL.';
COMMENT ON FUNCTION ai_cost_internal.price_book_plain_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot what a call without cache writes, audio, image or video is priced from: the input, output, cache read and reasoning rates and the masks of the input, output and cache read counts, as in ai_cost_internal.price_book_rates(), and numbered as it is.';
COMMENT ON FUNCTION ai_cost_internal.price_book_ids() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id and the id of the organisation discount applied (0: none); numbered as ai_cost_internal.price_book_rates().';

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
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
         coalesce(format('[%s:%s][1:26]={', base, max(b.slot)) || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           b.image_input_rate, b.image_output_rate, b.video_input_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits), -(1::bigint << b.image_input_bits),
                                           -(1::bigint << b.image_output_bits), -(1::bigint << b.video_input_bits),
                                           coalesce(b.discount_id, 0)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:2]={', base, max(b.slot)) || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
    INTO book_slots, book_rates, book_windows
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

DROP FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint);

-- The cost of a plain call (no cache writes, audio, image or video) at its
-- slot of the book, or NULL where the book does not price it: outside the
-- price's validity, a token count past its mask, reasoning billed apart (a
-- call with reasoning at a price that bills it apart, Perplexity's Sonar Deep
-- Research, takes the lookup), or a slot of another compile (NULL).
-- Reasoning is output here, at the output rate. The same sum as priced()'s
-- numeric one, in picodollars, rounded up once. Uncached input needs no
-- clamp at 0 here: with no cache writes or audio it is negative only in a
-- row the CHECK constraints refuse next, and the masks keep every count
-- below 2^30, so nothing overflows first. OPERATOR(...) gives every operator
-- the same precedence: each product is in parentheses.
CREATE FUNCTION ai_cost_internal.book_cost_of_plain_call(
  rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, reasoning_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR rates[slot][9] OPERATOR(pg_catalog.=) rates[slot][3])
  THEN (((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint))
         OPERATOR(pg_catalog.*) rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][3])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][4])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint) IS 'Internal, inlined into the cost trigger: the cost of a call without cache writes, audio, image or video from the compiled book at its slot, or NULL where the book does not price it.';

CREATE OR REPLACE FUNCTION ai_cost_internal.book_cost_of_call(
  rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint, reasoning_tokens bigint,
  cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(image_input_tokens, video_input_tokens) IS NULL
            OR coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint)
  THEN ((greatest(coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
                OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint), 0::bigint)
         OPERATOR(pg_catalog.*) rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][11])
       OPERATOR(pg_catalog.+) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][13])
       OPERATOR(pg_catalog.+) ((coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][3])
       OPERATOR(pg_catalog.+) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][9])
       OPERATOR(pg_catalog.+) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][12])
       OPERATOR(pg_catalog.+) ((coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][4])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][10])
       OPERATOR(pg_catalog.+) ((coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][5])
       OPERATOR(pg_catalog.+) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][6])
       OPERATOR(pg_catalog.+) ((coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][7])
       OPERATOR(pg_catalog.+) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][8])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;

DROP FUNCTION ai_cost_internal.book_discount_id(bigint[], integer);

-- The organisation discount of the book at a slot: NULL for none (the book
-- writes it as 0), 0 for a read outside the book.
CREATE FUNCTION ai_cost_internal.book_discount_id(rates bigint[], slot integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN rates[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL ELSE coalesce(rates[slot][26], 0::bigint) END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_discount_id(bigint[], integer) IS 'Internal, inlined into the cost trigger: the organisation discount the compiled book applies at a slot; NULL for none, 0 outside the book.';

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    NEW.cost_micros := ai_cost_internal.book_cost_of_plain_call(
      ai_cost_internal.price_book_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.reasoning_tokens);
    IF NEW.cost_micros IS NOT NULL THEN
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := ai_cost_internal.book_discount_id(ai_cost_internal.price_book_rates(), slot);
      -- Each expression is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.price_id IS NOT NULL AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    NEW.cost_micros := ai_cost_internal.book_cost_of_call(
      ai_cost_internal.price_book_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens, NEW.cache_write_1h_tokens,
      NEW.audio_input_tokens, NEW.audio_output_tokens, NEW.reasoning_tokens, NEW.cache_read_audio_tokens,
      NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens);
    IF NEW.cost_micros IS NOT NULL THEN
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := ai_cost_internal.book_discount_id(ai_cost_internal.price_book_rates(), slot);
      IF NEW.price_id IS NOT NULL AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  END IF;

  -- A call dated more than a day ahead of the database clock is refused: a
  -- day absorbs clocks out of step; a later date is a mistake, or a choice of
  -- a future price, and would make partitions no one needs. The book paths
  -- above take only calls within the day; insert_calls has the same bound.
  -- (Infinity is left to the CHECK constraint that names it.)
  IF NEW.created_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND pg_catalog.isfinite(NEW.created_at) THEN
    RAISE EXCEPTION 'created_at % is more than 1 day ahead of the database clock (%)', NEW.created_at, pg_catalog.now()
      USING ERRCODE = 'check_violation',
            HINT = 'Record the time the call was made: pg-ai-cost accepts calls dated at most 1 day ahead, for clocks out of step.';
  END IF;

  -- Not covered by the book: the lookup, as priced() does it.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    -- On a Citus shard NEW is a row of the shard's own table: the row
    -- constructor makes it an ai_cost.calls row on every node.
    RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) NEW.provider AND l.model OPERATOR(pg_catalog.=) NEW.model AND l.service_tier OPERATOR(pg_catalog.=) NEW.service_tier
     AND (l.tenant_id OPERATOR(pg_catalog.=) ''::pg_catalog.text OR l.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
     AND l.valid_from OPERATOR(pg_catalog.<=) NEW.created_at AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) NEW.created_at)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0::bigint OR l.above_input_tokens OPERATOR(pg_catalog.<) NEW.input_tokens)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window(NEW.created_at, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_read IS NOT NULL OR (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint
                                       AND (r_cache_read_audio IS NOT NULL OR coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)))
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (coalesce(l_unit OPERATOR(pg_catalog.=) NEW.unit, l_unit IS NULL AND NEW.unit IS NULL)
          OR coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 0::numeric) THEN
    NEW.cost_micros := pg_catalog.ceil(l_factor OPERATOR(pg_catalog.*) (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_read_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_read_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read_audio, r_cache_read, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_write_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_write_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write_1h, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_input_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (NEW.audio_input_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_audio_input, 0::numeric)
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_output_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.audio_output_tokens::numeric OPERATOR(pg_catalog.*) r_audio_output ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.units OPERATOR(pg_catalog.>) 0::numeric THEN NEW.units OPERATOR(pg_catalog.*) r_unit OPERATOR(pg_catalog.*) 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.computed_cost_micros := NEW.cost_micros;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_discount_id(bigint[], integer),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text),
      ai_cost_internal.in_daily_window(timestamptz, time, time, text), ai_cost_internal.bills_calls(),
      ai_cost_internal.markup_book(), ai_cost_internal.markup_book_window(),
      ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric),
      ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint),
      ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)
    TO %I', grantee);
END
$$;

-- The book is compiled again with the compiler above, which writes the ids
-- into the rates again, as in the Up section.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    PERFORM ai_cost_internal.apply_cluster_function_settings();
    IF NOT EXISTS (SELECT FROM unnest(ai_cost_internal.reference_tables()) AS t
                    WHERE NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = t)) THEN
      UPDATE ai_cost.prices SET source = source WHERE id < 0;
      RETURN;
    END IF;
  END IF;
  PERFORM ai_cost_internal.compile_price_book();
END
$$;

COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input, audio output, reasoning, cached audio input, image input, image output and video input rates in picodollars per token, less the organisation''s discount (0: none; reasoning and image output at the output rate, cached audio at the cache read rate, image and video input at the input rate when the price has no rate of their own); then for the same twelve token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL); then the id of the organisation discount applied (0: none). Its first slot is the compile''s first, 1 + generation x 2^20, so a slot of another compile reads NULL.';

-- The two small arrays go. On Citus each worker keeps its own copy, which
-- nothing reads, until the step is applied again (its compile replaces
-- them) or the ledger is uninstalled: each node made its own, not this one.
DROP FUNCTION ai_cost_internal.price_book_plain_rates(), ai_cost_internal.price_book_ids();
