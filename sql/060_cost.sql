-- The cost of a call: the formula, the cost trigger and the batch insert.
--
-- Cost is integer micro-dollars, computed once per call on insert and stored:
--   cost_micros = ceil(factor x sum over dimensions (tokens x USD per 1M tokens)
--                      + sum over billed units (quantity x USD per unit x 10^6))
-- summed exactly and rounded up once (rounding each component would
-- overcharge by up to 4 micro-dollars). Token counts follow the OpenTelemetry
-- semantics: input_tokens includes cache reads, cache writes and audio,
-- image and video input, output_tokens includes reasoning and audio and
-- image output, so the uncached text input is input minus those. Cached
-- audio is counted as the providers count it, in both the cache reads and
-- the audio input, and billed once: at the price's cached audio rate, or as
-- a cache read when it has none. Reasoning, image output, and image and
-- video input are billed as the rest of their whole (output, input) unless
-- the price has a rate of their own: then the text output is output minus
-- reasoning, image and audio output, the text input is the uncached input
-- minus image and video (each at least 0), and the part is billed at its
-- rate. Audio has no such fallback: every provider that reports it bills it
-- apart, so a price without an audio rate leaves it unpriced. A dimension
-- the call used that its price leaves NULL makes the call unpriced (cost
-- NULL, with a reason), never silently free. A successful call that reports
-- no usage at all (an OpenAI stream without stream_options.include_usage) is
-- unpriced too: 'no usage reported'; a failed or cancelled one with no usage
-- costs 0, since providers do not bill a request that consumed nothing.
--
-- Each call keeps two costs: computed_cost_micros, the cost from the prices,
-- and cost_micros, what the call is billed and what the rollups add up. They
-- are equal but for an app-cache hit (0) and a provider that reports its own
-- cost (the reported one); ai_cost_internal.cost_of() says why. A writer
-- reports what happened; it never sets either cost.
--
-- The formula is written three times, side by side in this file, because
-- each place needs it in a different form to be fast:
--   ai_cost_internal.priced()     exact numeric arithmetic over the price
--                                 lookup: the definition, used by
--                                 ai_cost_internal.cost_of() for reprices,
--                                 explain_cost and the trigger's other calls;
--   ai_cost_internal.price_call() the cost trigger, in integer picodollars
--                                 from the compiled price book (050_price_book.sql)
--                                 for list-priced calls: no query per row;
--   ai_cost.insert_calls()        the same picodollar sum as a set, in the
--                                 INSERT of a recorder batch.
-- Picodollars are exact (rates are whole picodollars per token when
-- compiled), so the three give the same number. test/pricing-fast-path.test.ts
-- holds the trigger and insert_calls to ai_cost_internal.cost_of() on calls
-- covering every dimension, tier, override and fallback; test/price-book.test.ts
-- holds the book to the prices. ai_cost.cost_micros() is the formula over one
-- price row for people and tests, without tiers or tenants.

-- The exact formula, and the one indexed lookup it needs: the resolved price
-- for a call's exact model id or alias (the tenant's own price, then its
-- narrowest discount, then the organisation's narrowest discount, then the
-- list price; within those, the highest long-context tier the input exceeds,
-- and a price of the hour of the call, where there is one, before the
-- all-day price)
-- applied to every billing dimension. At most one discount applies (see
-- ai_cost.tenant_discounts in 020_prices.sql for why they never compound).
-- Components are summed exactly in numeric, the discount factor applied, and
-- the total rounded up once. missing_rate names a dimension the call used
-- that the price leaves NULL; callers then store the call as unpriced (cost
-- is what the other dimensions come to, and must not be used).
--
-- No row comes back when no price applies (then ai_cost_internal.pattern_model may
-- find the model through a pattern). Written as one SQL query with no SET clause so that the
-- planner inlines it into the cost trigger's and reprice's queries: the
-- trigger's single index probe per call is this query. An inlined body is
-- parsed under the search_path of the query that inlines it, so every table,
-- operator and function in it is named by its schema.
CREATE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  reasoning_tokens bigint, cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint,
  video_input_tokens bigint, units numeric, unit text, extra_units jsonb
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  -- OPERATOR(...) gives every operator the same precedence, so each product
  -- is in parentheses. Cached audio ($14) is part of both the cache reads
  -- ($8) and the audio input ($11). Reasoning ($13) and image output ($16)
  -- are parts of the output ($7), image ($15) and video ($17) input parts of
  -- the input ($6), that only a price with a rate of their own bills apart:
  -- at a NULL rate the part is 0 here and stays in its whole. A unit ($19,
  -- and each key of $20) is priced at unit_price where it is the price's
  -- unit, else at its entry in unit_prices.
  SELECT pg_catalog.ceil(l.factor OPERATOR(pg_catalog.*) (
             (greatest(coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                       OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                       OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                       OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END, 0)
                                          OPERATOR(pg_catalog.*) coalesce(l.input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($15, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($17, 0)                    OPERATOR(pg_catalog.*) coalesce(l.video_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (greatest(coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                            OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                            OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END, 0)
                                   OPERATOR(pg_catalog.*) coalesce(l.output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($13, 0)                    OPERATOR(pg_catalog.*) coalesce(l.reasoning_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($16, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($14, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($10, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_write_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($10, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_write_1h_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.audio_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($12, 0)                    OPERATOR(pg_catalog.*) coalesce(l.audio_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($18, 0) OPERATOR(pg_catalog.*) coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                                                                                     ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END, 0)
                                   OPERATOR(pg_catalog.*) 1000000)
           OPERATOR(pg_catalog.+) (coalesce((SELECT pg_catalog.sum(e.value::numeric OPERATOR(pg_catalog.*)
                                                                   coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                                                                                 ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END, 0))
                                               FROM pg_catalog.jsonb_each($20) e), 0)
                                   OPERATOR(pg_catalog.*) 1000000)))::bigint,
         l.price_id,
         l.discount_id,
         CASE
           WHEN l.input_per_mtok IS NULL AND coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                                             OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                                             OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                                             OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for input tokens'
           WHEN l.output_per_mtok IS NULL AND coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                              OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                              OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for output tokens'
           WHEN l.cache_read_per_mtok IS NULL
                AND (coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
                     OR (l.cache_read_audio_per_mtok IS NULL AND $14 OPERATOR(pg_catalog.>) 0))
             THEN 'no price for cache read tokens'
           WHEN l.cache_write_per_mtok IS NULL AND $9 OPERATOR(pg_catalog.>) coalesce($10, 0) THEN 'no price for cache write tokens'
           WHEN l.cache_write_1h_per_mtok IS NULL AND $10 OPERATOR(pg_catalog.>) 0 THEN 'no price for 1-hour cache write tokens'
           WHEN l.audio_input_per_mtok IS NULL AND coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
             THEN 'no price for audio input tokens'
           WHEN l.audio_output_per_mtok IS NULL AND $12 OPERATOR(pg_catalog.>) 0 THEN 'no price for audio output tokens'
           WHEN $18 OPERATOR(pg_catalog.>) 0
                AND CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                         ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END IS NULL
             THEN 'no price per ' OPERATOR(pg_catalog.||) $19
           ELSE (SELECT 'no price per ' OPERATOR(pg_catalog.||) e.key FROM pg_catalog.jsonb_each($20) e
                  WHERE e.value::numeric OPERATOR(pg_catalog.>) 0
                    AND CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                             ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END IS NULL
                  ORDER BY e.key LIMIT 1)
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) $1 AND l.model OPERATOR(pg_catalog.=) $2 AND l.service_tier OPERATOR(pg_catalog.=) $3
     AND (l.tenant_id OPERATOR(pg_catalog.=) '' OR l.tenant_id OPERATOR(pg_catalog.=) $4)
     AND l.valid_from OPERATOR(pg_catalog.<=) $5 AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) $5)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0 OR l.above_input_tokens OPERATOR(pg_catalog.<) $6)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window($5, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb) IS 'Internal: the cost formula applied with the price for an exact model id or alias; no row when none applies.';

-- The formula over one price row and four token counts. Token counts follow the OpenTelemetry
-- semantics (input includes cache reads and writes), so uncached input is
-- input minus both. Components are summed exactly in numeric and rounded up
-- once: rounding each component would overcharge by up to 4 micro-dollars.
-- A token kind that was used but has no price makes the whole call unpriced
-- (NULL), never silently free.
CREATE FUNCTION ai_cost.cost_micros(
  price ai_cost.prices,
  input_tokens bigint,
  output_tokens bigint,
  cache_read_tokens bigint,
  cache_write_tokens bigint
) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cache_read bigint := coalesce(cache_read_tokens, 0);
  cache_write bigint := coalesce(cache_write_tokens, 0);
  uncached bigint := coalesce(input_tokens, 0) - cache_read - cache_write;
  output bigint := coalesce(output_tokens, 0);
BEGIN
  IF (uncached > 0 AND price.input_per_mtok IS NULL)
     OR (cache_read > 0 AND price.cache_read_per_mtok IS NULL)
     OR (cache_write > 0 AND price.cache_write_per_mtok IS NULL)
     OR (output > 0 AND price.output_per_mtok IS NULL) THEN
    RETURN NULL;
  END IF;
  RETURN ceil(  uncached    * coalesce(price.input_per_mtok, 0)
              + cache_read  * coalesce(price.cache_read_per_mtok, 0)
              + cache_write * coalesce(price.cache_write_per_mtok, 0)
              + output      * coalesce(price.output_per_mtok, 0))::bigint;
END
$$;
COMMENT ON FUNCTION ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint) IS 'Exact cost in micro-dollars of the given token counts at the given price row, rounded up once; NULL when a used token kind has no price.';

-- The cost of a hypothetical call broken down: which price row, tier, tenant
-- price or discount applied, and each billing dimension's quantity, rate and
-- micro-dollars; the last row is the total as the trigger computes it.
CREATE FUNCTION ai_cost.explain_cost(
  provider text, model text, at timestamptz DEFAULT now(),
  input_tokens bigint DEFAULT NULL, output_tokens bigint DEFAULT NULL,
  cache_read_tokens bigint DEFAULT NULL, cache_write_tokens bigint DEFAULT NULL,
  cache_write_1h_tokens bigint DEFAULT NULL, audio_input_tokens bigint DEFAULT NULL,
  audio_output_tokens bigint DEFAULT NULL, units numeric DEFAULT NULL, unit text DEFAULT NULL,
  service_tier text DEFAULT 'standard', tenant_id text DEFAULT NULL,
  reasoning_tokens bigint DEFAULT NULL, cache_read_audio_tokens bigint DEFAULT NULL,
  image_input_tokens bigint DEFAULT NULL, image_output_tokens bigint DEFAULT NULL, video_input_tokens bigint DEFAULT NULL,
  extra_units jsonb DEFAULT NULL
) RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
  p ai_cost_internal.price_lookup;
  priced record;
  write_1h bigint := coalesce(cache_write_1h_tokens, 0);
  write_5m bigint := coalesce(cache_write_tokens, 0) - write_1h;
  cached_audio bigint := coalesce(cache_read_audio_tokens, 0);
  -- The parts the price bills apart (0: left in their whole).
  image_in bigint;
  image_out bigint;
  video_in bigint;
  reasoning bigint;
  declared jsonb;
BEGIN
  c.provider := provider; c.model := model; c.created_at := at; c.service_tier := service_tier;
  c.tenant_id := tenant_id; c.cached := false;
  c.input_tokens := input_tokens; c.output_tokens := output_tokens;
  c.cache_read_tokens := cache_read_tokens; c.cache_write_tokens := cache_write_tokens;
  c.cache_write_1h_tokens := cache_write_1h_tokens; c.audio_input_tokens := audio_input_tokens;
  c.audio_output_tokens := audio_output_tokens; c.reasoning_tokens := reasoning_tokens;
  c.cache_read_audio_tokens := cache_read_audio_tokens; c.image_input_tokens := image_input_tokens;
  c.image_output_tokens := image_output_tokens; c.video_input_tokens := video_input_tokens;
  c.units := units; c.unit := unit; c.extra_units := extra_units;
  IF extra_units IS NOT NULL AND (jsonb_typeof(extra_units) <> 'object'
                                  OR jsonb_path_exists(extra_units, '$.* ? (@.type() != "number" || @ < 0)')) THEN
    RAISE EXCEPTION 'extra_units must be a JSON object of unit: quantity, e.g. {"web_search": 3}, not %', extra_units
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  priced := ai_cost_internal.cost_of(c);
  -- A standard row also prices the tiers that are a multiple of it, at
  -- multiples that may change over time: the row of the call's tier and
  -- instant.
  SELECT * INTO p FROM ai_cost_internal.price_lookup l
   WHERE l.price_id = priced.price_id AND l.discount_id IS NOT DISTINCT FROM priced.discount_id
     AND l.tenant_id IN ('', coalesce(explain_cost.tenant_id, ''))
     AND l.service_tier = explain_cost.service_tier
     AND l.valid_from <= at AND (l.valid_to IS NULL OR l.valid_to > at)
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unpriced'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric, priced.unpriced_reason;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'price'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric,
    format('price row %s (%s/%s, %s, %s%s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
           CASE WHEN p.daily_from IS NOT NULL
                THEN format(', daily from %s to %s %s', left(p.daily_from::text, 5), left(p.daily_to::text, 5), p.time_zone)
                ELSE '' END,
           CASE WHEN p.rank = 0 THEN ', tenant ' || p.tenant_id || '''s own price'
                WHEN p.discount_id IS NOT NULL AND p.tenant_id = ''
                THEN format(', organisation discount %s: %s%% off', p.discount_id, trim_scale((1 - p.factor) * 100))
                WHEN p.discount_id IS NOT NULL
                THEN format(', tenant %s discount %s: %s%% off', p.tenant_id, p.discount_id, trim_scale((1 - p.factor) * 100))
                ELSE '' END,
           p.valid_from, coalesce(p.valid_to::text, 'now'),
           CASE WHEN p.priced_model <> model THEN ', matched from ' || model ELSE '' END);
  -- Reasoning, image and video have rows of their own only where the price
  -- bills them apart; otherwise they are in the input or output row, as
  -- they are in input_tokens and output_tokens.
  reasoning := CASE WHEN p.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce(reasoning_tokens, 0) END;
  image_out := CASE WHEN p.image_output_per_mtok IS NULL THEN 0 ELSE coalesce(image_output_tokens, 0) END;
  image_in := CASE WHEN p.image_input_per_mtok IS NULL THEN 0 ELSE coalesce(image_input_tokens, 0) END;
  video_in := CASE WHEN p.video_input_per_mtok IS NULL THEN 0 ELSE coalesce(video_input_tokens, 0) END;
  -- A rate the price declares as a multiple of another says so.
  SELECT pr.rates_from INTO declared FROM ai_cost.prices pr WHERE pr.id = p.price_id;
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, d.quantity * d.rate * d.scale * p.factor,
         coalesce(d.detail, CASE WHEN declared ? d.rate_column
                                 THEN format('%s x the %s rate, as the price declares (rates_from)',
                                             declared #>> ARRAY[d.rate_column, 'times'],
                                             replace(declared #>> ARRAY[d.rate_column, 'rate'], '_per_mtok', '')) END)
    FROM (VALUES
      ('input', greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - write_5m - write_1h
                         - (coalesce(audio_input_tokens, 0) - cached_audio) - image_in - video_in, 0)::numeric,
       p.input_per_mtok, '1M tokens', 1, NULL, 'input_per_mtok'),
      ('image input', image_in::numeric, p.image_input_per_mtok, '1M tokens', 1, NULL, 'image_input_per_mtok'),
      ('video input', video_in::numeric, p.video_input_per_mtok, '1M tokens', 1, NULL, 'video_input_per_mtok'),
      ('cache read', (coalesce(cache_read_tokens, 0) - cached_audio)::numeric, p.cache_read_per_mtok, '1M tokens', 1, NULL,
       'cache_read_per_mtok'),
      ('cache read (audio)', cached_audio::numeric, coalesce(p.cache_read_audio_per_mtok, p.cache_read_per_mtok), '1M tokens', 1,
       CASE WHEN p.cache_read_audio_per_mtok IS NULL THEN 'at the cache read rate: the price has no cache_read_audio_per_mtok' END,
       'cache_read_audio_per_mtok'),
      ('cache write (5 min)', write_5m::numeric, p.cache_write_per_mtok, '1M tokens', 1, NULL, 'cache_write_per_mtok'),
      ('cache write (1 hour)', write_1h::numeric, p.cache_write_1h_per_mtok, '1M tokens', 1, NULL, 'cache_write_1h_per_mtok'),
      ('audio input', (coalesce(audio_input_tokens, 0) - cached_audio)::numeric, p.audio_input_per_mtok, '1M tokens', 1, NULL,
       'audio_input_per_mtok'),
      ('output', greatest(coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0) - reasoning - image_out, 0)::numeric,
       p.output_per_mtok, '1M tokens', 1, NULL, 'output_per_mtok'),
      ('reasoning', reasoning::numeric, p.reasoning_per_mtok, '1M tokens', 1, NULL, 'reasoning_per_mtok'),
      ('image output', image_out::numeric, p.image_output_per_mtok, '1M tokens', 1, NULL, 'image_output_per_mtok'),
      ('audio output', coalesce(audio_output_tokens, 0)::numeric, p.audio_output_per_mtok, '1M tokens', 1, NULL, 'audio_output_per_mtok'),
      ('per ' || coalesce(unit, 'unit'), coalesce(units, 0),
       CASE WHEN p.unit = unit THEN p.unit_price ELSE (p.unit_prices ->> unit)::numeric END, unit, 1000000, NULL, NULL)
    ) AS d(component, quantity, rate, per, scale, detail, rate_column)
   WHERE d.quantity > 0;
  -- Each further unit the call was billed, in the order of its name.
  RETURN QUERY
  SELECT 'per ' || e.key, e.value::numeric, r.rate, e.key, e.value::numeric * r.rate * 1000000 * p.factor, NULL::text
    FROM jsonb_each(extra_units) AS e
   CROSS JOIN LATERAL (SELECT CASE WHEN p.unit = e.key THEN p.unit_price ELSE (p.unit_prices ->> e.key)::numeric END AS rate) r
   WHERE e.value::numeric > 0
   ORDER BY e.key;
  RETURN QUERY SELECT CASE WHEN priced.cost_micros IS NULL THEN 'unpriced' ELSE 'total' END,
    NULL::numeric, NULL::numeric, NULL::text, priced.cost_micros::numeric,
    coalesce(priced.unpriced_reason, 'sum rounded up once to whole micro-dollars');
  -- What a successful call like it is billed (ai_cost.markups).
  RETURN QUERY SELECT * FROM ai_cost_internal.explain_billing(explain_cost.tenant_id, provider, model, priced.price_id,
    'success', at, priced.cost_micros, input_tokens, output_tokens);
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension and each billed unit, then the total (or why it is unpriced); then, where ai_cost.markups has rows, what the call is billed if it succeeds.';

-- The same for a recorded call, as it would be priced now.
CREATE FUNCTION ai_cost.explain_cost(call_id bigint)
RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
  now_priced record;
BEGIN
  SELECT * INTO c FROM ai_cost.calls WHERE id = call_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no call with id %', call_id USING ERRCODE = 'no_data_found';
  END IF;
  -- The charge comes last, from the cost the call keeps.
  RETURN QUERY SELECT e.* FROM ai_cost.explain_cost(c.provider, c.model, c.created_at, c.input_tokens, c.output_tokens,
    c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
    c.units, c.unit, c.service_tier, c.tenant_id, c.reasoning_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.extra_units) AS e
   WHERE e.component NOT IN ('markup', 'markup on cost', 'fee per call', 'fee per token', 'billed', 'not billed');
  -- The list cost above is computed_cost_micros; say when cost_micros is another number.
  IF c.cached THEN
    RETURN QUERY SELECT 'app cache hit'::text, NULL::numeric, NULL::numeric, NULL::text, 0::numeric,
      'served from the application''s own cache, no provider call: cost_micros is 0, the total above is what the call would have cost'::text;
  ELSIF c.provided_cost_micros IS NOT NULL THEN
    IF EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = c.provider AND p.reports_own_cost) THEN
      RETURN QUERY SELECT 'cost reported by the provider'::text, NULL::numeric, NULL::numeric, NULL::text, c.provided_cost_micros::numeric,
        format('%s reports its own cost (ai_cost.providers.reports_own_cost): cost_micros is this, not the total above', c.provider);
    ELSE
      RETURN QUERY SELECT 'cost reported, not used'::text, NULL::numeric, NULL::numeric, NULL::text, c.provided_cost_micros::numeric,
        format('%s is not marked as reporting its own cost (ai_cost.providers.reports_own_cost): cost_micros is the total above', c.provider);
    END IF;
  END IF;
  -- What the call is billed from that cost, with today's markups.
  now_priced := ai_cost_internal.cost_of(c);
  RETURN QUERY SELECT * FROM ai_cost_internal.explain_billing(c.tenant_id, c.provider, c.model, now_priced.price_id,
    c.status, c.created_at, now_priced.cost_micros, c.input_tokens, c.output_tokens);
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(bigint) IS 'Breaks down the cost of recorded call call_id at today''s prices for its created_at (price row, tier, each component, total: its computed_cost_micros), then, for an app-cache hit or a provider-reported cost, the number cost_micros took instead, then what the call is billed by today''s ai_cost.markups; compare with the stored cost_micros, price_id and billed_micros.';

-- The cost of a call as the trigger, reprice and explain_cost compute it.
-- First the list cost (computed_cost_micros, with the price_id and
-- discount_id that gave it): no usage, then the price lookup by id, alias or
-- pattern, then why no price applies. Then what the call is billed
-- (cost_micros), which is the list cost except in two cases:
--   - an app-cache hit (cached) made no provider call: 0;
--   - a provider marked ai_cost.providers.reports_own_cost bills the cost it
--     reported (provided_cost_micros). Any other provider's reported cost is
--     the writer's word and stays data: a writer reports usage, the prices
--     decide what it costs.
-- unpriced_reason says why cost_micros is NULL, so it is NULL whenever a
-- cache hit or a reported cost gave a cost.
CREATE FUNCTION ai_cost_internal.cost_of(
  c ai_cost.calls,
  OUT cost_micros bigint, OUT price_id bigint, OUT discount_id bigint, OUT unpriced_reason text,
  OUT computed_cost_micros bigint
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pattern_model text;
BEGIN
  IF c.input_tokens IS NULL AND c.output_tokens IS NULL AND c.units IS NULL AND c.extra_units IS NULL THEN
    IF c.status = 'success' THEN
      unpriced_reason := 'no usage reported: input_tokens, output_tokens and units are all NULL';
    ELSE
      computed_cost_micros := 0;
    END IF;
  ELSE
    SELECT * INTO computed_cost_micros, price_id, discount_id, unpriced_reason
      FROM ai_cost_internal.priced(c.provider, c.model, c.service_tier, c.tenant_id, c.created_at,
             c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
             c.audio_input_tokens, c.audio_output_tokens, c.reasoning_tokens, c.cache_read_audio_tokens,
             c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units);
    IF NOT FOUND THEN
      pattern_model := ai_cost_internal.pattern_model(c.provider, c.model);
      IF pattern_model IS NOT NULL THEN
        SELECT * INTO computed_cost_micros, price_id, discount_id, unpriced_reason
          FROM ai_cost_internal.priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
                 c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
                 c.audio_input_tokens, c.audio_output_tokens, c.reasoning_tokens, c.cache_read_audio_tokens,
                 c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units);
      END IF;
      IF NOT FOUND OR pattern_model IS NULL THEN
        unpriced_reason := ai_cost_internal.no_price_reason(c.provider, c.model, c.service_tier, c.created_at);
      END IF;
    END IF;
    IF unpriced_reason IS NOT NULL THEN
      computed_cost_micros := NULL;
      price_id := NULL;
      discount_id := NULL;
    END IF;
  END IF;
  cost_micros := computed_cost_micros;
  IF c.cached THEN
    cost_micros := 0;
    unpriced_reason := NULL;
  ELSIF c.provided_cost_micros IS NOT NULL
        AND EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = c.provider AND p.reports_own_cost) THEN
    cost_micros := c.provided_cost_micros;
    unpriced_reason := NULL;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.cost_of(ai_cost.calls) IS 'The cost of a call as the trigger, reprice and explain_cost compute it: the list cost (computed_cost_micros, with its price_id and discount_id) and the cost billed (cost_micros): 0 for an app-cache hit, the provided cost for a provider that reports its own, the list cost otherwise.';

-- The trigger's way for every call its fast path does not take: the call
-- with its cost as ai_cost_internal.cost_of() computes it, or an error for a call of a
-- strict-mode provider that cannot be priced.
CREATE FUNCTION ai_cost_internal.price_call_slowly(c ai_cost.calls) RETURNS ai_cost.calls
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  SELECT * INTO c.cost_micros, c.price_id, c.discount_id, c.unpriced_reason, c.computed_cost_micros
    FROM ai_cost_internal.cost_of(c);
  IF c.unpriced_reason IS NOT NULL
     AND EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = c.provider AND p.strict) THEN
    RAISE EXCEPTION 'cannot price call of %/%: %', c.provider, c.model, c.unpriced_reason
      USING ERRCODE = 'check_violation',
            HINT = 'Provider ' || c.provider || ' is in strict mode (ai_cost.providers.strict): add a price, or turn strict mode off.';
  END IF;
  RETURN c;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_call_slowly(ai_cost.calls) IS 'The cost trigger''s path for calls without a plain price: pattern matches, unpriced reasons, strict mode.';

-- Writes a batch of calls given as a JSON array of objects whose keys are
-- ai_cost.calls columns (what the recorder sends); a request_id already
-- recorded is skipped. Returns how many calls were new. The calls the price
-- book covers are priced in the INSERT itself: one hash of the book per
-- statement, and per row the trigger's test and picodollar sum as plain
-- expressions. A row the book cannot price (tenant terms, tiers, units,
-- provided costs, history, unknown models) goes in without a cost, and the
-- cost trigger prices it. Only the columns a writer may write are read: a
-- key such as cost_micros or price_id in the JSON is ignored.
--
-- Trust. A writer must not be able to set its own cost. The trigger skips
-- only a row that has a cost, is inserted by the role that owns insert_calls
-- (it is SECURITY DEFINER, so inside it current_user is that owner), and
-- while the setting ai_cost.inserting_priced_calls is on, which insert_calls
-- turns on for its INSERT and off again. A writer is not that owner, so
-- whatever it inserts, directly or through a setting of its own, is priced
-- by the trigger. The owner (the installing user) could skip the trigger
-- anyway (ALTER TABLE ... DISABLE TRIGGER), so trusting it inside this one
-- function adds nothing it did not have. If the function changes owner, the
-- condition no longer matches and the trigger prices every row again:
-- slower, never wrong (ai-cost doctor says so).
CREATE FUNCTION ai_cost.insert_calls(calls jsonb) RETURNS bigint
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  inserted bigint;
BEGIN
  IF jsonb_typeof(calls) <> 'array' THEN
    RAISE EXCEPTION 'ai_cost.insert_calls() takes a JSON array of call objects, not a JSON %', jsonb_typeof(calls)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- On for this INSERT only. Not a SET clause of the function: PostgreSQL
  -- lets only a superuser store a custom setting there, and installs are
  -- often not superusers. If the INSERT fails, the transaction (or the
  -- caller's savepoint) is rolled back, and the setting with it.
  PERFORM set_config('ai_cost.inserting_priced_calls', 'on', true);
  -- Counted from the rows it returns: on a Citus cluster the INSERT's row
  -- count also counts the rows ON CONFLICT skipped.
  WITH inserted_calls AS (
    INSERT INTO ai_cost.calls (
      created_at, provider, model, operation, status, service_tier,
      tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
      cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
      image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units,
      provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
      discount_id)
    SELECT
      c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
      c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
      c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
      c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
      c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units,
      c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
      -- Only read with a cost beside them: the trigger sets its own otherwise.
      b.price_id, b.discount_id
    FROM (
      -- A key left out, or given as null, takes the column's default.
      SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
             coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
             coalesce(j.service_tier, 'standard') AS service_tier,
             coalesce(j.tenant_id, ai_cost_internal.tenant_of_calls_without_one()) AS tenant_id,
             j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
             coalesce(j.metadata, '{}') AS metadata, j.request_id,
             j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
             j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
             j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit, j.extra_units,
             j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
             j.ttft_ms, j.total_ms, j.error_message
        FROM jsonb_to_recordset(calls) AS j(
          created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
          tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
          metadata jsonb, request_id text,
          input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
          reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
          cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
          units numeric, unit text, extra_units jsonb, provided_cost_micros bigint,
          streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text)
    ) c
    -- The book is hashed once per batch; each call probes it once.
    LEFT JOIN ai_cost_internal.price_book_entries() AS b
      ON b.provider = c.provider AND b.service_tier = c.service_tier AND b.model = c.model
    -- The cost trigger's test and sum (price_call below), once per call for
    -- both cost columns. The test's shifts are ORed into one comparison: each
    -- t >> b is 0 exactly when the trigger's t & -(2^b) is (a negative t
    -- stays negative). The parentheses are needed: >> and | have the same
    -- precedence. Where the book does not apply the cost stays NULL, and the
    -- trigger prices the row.
    CROSS JOIN LATERAL (
      SELECT CASE WHEN c.units IS NULL AND c.extra_units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
              AND NOT c.cached AND c.provided_cost_micros IS NULL
              -- The trigger's tolerance for created_at (price_call): a call dated
              -- later is left to the trigger, which refuses it.
              AND c.created_at <= now() + interval '1 day'
              AND NOT ai_cost_internal.price_book_has_tenant(c.tenant_id)
              AND b.valid_from <= c.created_at AND c.created_at < b.valid_to
              AND ((coalesce(c.input_tokens, 0::bigint) >> b.input_bits) | (coalesce(c.output_tokens, 0::bigint) >> b.output_bits)
                   | (coalesce(c.cache_read_tokens, 0::bigint) >> b.cache_read_bits)
                   | (coalesce(c.cache_write_tokens, 0::bigint) >> b.cache_write_bits)
                   | (coalesce(c.cache_write_1h_tokens, 0::bigint) >> b.cache_write_1h_bits)
                   | (coalesce(c.audio_input_tokens, 0::bigint) >> b.audio_input_bits)
                   | (coalesce(c.audio_output_tokens, 0::bigint) >> b.audio_output_bits)
                   | (coalesce(c.reasoning_tokens, 0::bigint) >> b.reasoning_bits)
                   | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)
                   | (coalesce(c.image_input_tokens, 0::bigint) >> b.image_input_bits)
                   | (coalesce(c.image_output_tokens, 0::bigint) >> b.image_output_bits)
                   | (coalesce(c.video_input_tokens, 0::bigint) >> b.video_input_bits)) = 0::bigint
        THEN CASE
          WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
                        c.image_input_tokens, c.image_output_tokens, c.video_input_tokens) IS NULL
               AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
          THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
                + coalesce(c.output_tokens, 0::bigint) * b.output_rate
                + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
                + 999999::bigint) / 1000000::bigint
          -- Parts beyond their whole (reasoning, audio and image output
          -- beyond the output; image and video beyond the rest of the input):
          -- the trigger prices them, with the text at 0 as priced() does.
          WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
               - coalesce(c.image_output_tokens, 0::bigint) >= 0::bigint
               AND (coalesce(c.image_input_tokens, c.video_input_tokens) IS NULL
                    OR coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                       - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint) >= 0::bigint)
          THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                         - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                         - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint), 0::bigint) * b.input_rate
                + coalesce(c.image_input_tokens, 0::bigint) * b.image_input_rate
                + coalesce(c.video_input_tokens, 0::bigint) * b.video_input_rate
                + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
                   - coalesce(c.image_output_tokens, 0::bigint)) * b.output_rate
                + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
                + coalesce(c.image_output_tokens, 0::bigint) * b.image_output_rate
                + (coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.cache_read_rate
                + coalesce(c.cache_read_audio_tokens, 0::bigint) * b.cache_read_audio_rate
                + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
                + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
                + (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.audio_input_rate
                + coalesce(c.audio_output_tokens, 0::bigint) * b.audio_output_rate
                + 999999::bigint) / 1000000::bigint
          END
        END AS cost_micros) AS book
    ON CONFLICT DO NOTHING
    RETURNING 1
  )
  SELECT count(*) INTO inserted FROM inserted_calls;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;
COMMENT ON FUNCTION ai_cost.insert_calls(jsonb) IS 'Inserts a batch of calls given as a JSON array of objects keyed by ai_cost.calls columns, pricing list-priced calls in the statement itself (the cost trigger prices the rest); skips request_ids already recorded; returns how many calls were new.';

-- The cost trigger's use of the compiled book (050_price_book.sql), as SQL
-- functions the planner inlines into the trigger's expressions. The book's
-- functions are constants in the plan of each expression that names them,
-- and the planner parses each one it meets: about 4 ms for the full rates
-- (a literal of some 135 kB with the shipped catalog), about 1 ms for the
-- rates of a plain call, a tenth of that for the ids. A backend plans the
-- trigger on the first insert of each connection (on Citus, of each
-- connection into each shard) and again after every compile, so each
-- expression names only the smallest array that holds what it reads, and
-- each array once, as an argument of these functions: inlining passes the
-- parsed constant to every use of the parameter. No SET clause, which would
-- stop the inlining: every operator and non-keyword type is named by its
-- schema.

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

-- The same with cache writes, audio, image or video: all twelve dimensions.
-- Once the masks hold every count below 2^30, reasoning, audio and image
-- output beyond the output, and image and video input beyond the rest of the
-- input, are left to the lookup, which bills the text as 0 then: the sum
-- would bill the output negative, and image and video at the input rate
-- where priced() leaves them in a text input of 0. Any other negative part
-- can only come from a row the CHECK constraints refuse next
-- (audio_output_tokens above output_tokens, say). Reasoning and image output
-- are at the output rate, cached audio at the cache read rate, image and
-- video input at the input rate where the price has no rate of their own
-- (050_price_book.sql).
CREATE FUNCTION ai_cost_internal.book_cost_of_call(
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
COMMENT ON FUNCTION ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint) IS 'Internal, inlined into the cost trigger: the cost of a call over all twelve token dimensions from the compiled book at its slot, or NULL where the book does not price it.';

-- The organisation discount of the book at a slot, from
-- ai_cost_internal.price_book_ids(): NULL for none (the book writes it as
-- 0), 0 for a read outside the book.
CREATE FUNCTION ai_cost_internal.book_discount_id(ids bigint[], slot integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ids[slot][2] OPERATOR(pg_catalog.=) 0::bigint THEN NULL ELSE coalesce(ids[slot][2], 0::bigint) END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_discount_id(bigint[], integer) IS 'Internal, inlined into the cost trigger: the organisation discount the compiled book applies at a slot; NULL for none, 0 outside the book.';

-- The cost trigger. A call the compiled price book covers is priced from its
-- constants with no query; everything else goes through the lookup, as
-- ai_cost_internal.cost_of() does. The book path is split in two: calls
-- without cache writes, audio, image or video (most calls) and the others,
-- because PL/pgSQL sets up the state of each expression it evaluates once per
-- transaction, so one expression for all the dimensions made a single-row
-- INSERT set up every check and sum (perf over pgbench single-row INSERTs on
-- PostgreSQL 15: the trigger's share of the backend's time went from
-- 9.1-9.3% to 5.9-6.7%).
--
-- The slot, the cost (the test and the sum, above) and the price and
-- discount ids are PL/pgSQL expressions planned apart, with the book's
-- functions folded into each plan, so a compile that commits while they are
-- being planned can give them different books. Slots are numbered per
-- compile (050_price_book.sql): a slot read against another compile's arrays
-- subscripts outside them and reads NULL, which leaves the cost or price NULL
-- (the discount 0); the book path returns only when all three were read from
-- the slot's compile, and otherwise the call takes the lookup. A read of the
-- book is thus checked once, by one more IF per call.
--
-- It is STABLE: it writes nothing itself (it sets NEW, and refuses a call
-- by raising), and a VOLATILE PL/pgSQL function takes a snapshot and a
-- command counter increment for every expression it evaluates.
--
-- It does not pin search_path: a SET clause costs ~5 us per row before
-- PostgreSQL 17. Instead every table, operator, function and non-keyword
-- type in it is named by its schema (OPERATOR(pg_catalog.+), which gives
-- every operator the same precedence, hence the parentheses around
-- products): the inserting session's search_path may hold a better-matching
-- or same-named operator of a user's, which would set the cost
-- (test/planted-operators.test.ts).
CREATE FUNCTION ai_cost_internal.price_call() RETURNS trigger
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
COMMENT ON FUNCTION ai_cost_internal.price_call() IS 'Trigger: sets cost_micros, computed_cost_micros, price_id, discount_id and unpriced_reason of a call (from the compiled price book for a current list price; by the price lookup or ai_cost_internal.cost_of() otherwise); refuses calls dated more than 1 day ahead, and calls of a strict-mode provider that cannot be priced.';

DO $$
BEGIN
  EXECUTE format($t$
    CREATE TRIGGER tg_calls__price_call
      BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, reasoning_tokens,
    cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, units, unit, computed_cost_micros,
    extra_units
      ON ai_cost.calls
      FOR EACH ROW
      WHEN (NEW.cost_micros IS NULL OR CURRENT_USER <> %L::name
            OR pg_catalog.current_setting('ai_cost.inserting_priced_calls', true) IS DISTINCT FROM 'on')
      EXECUTE FUNCTION ai_cost_internal.price_call()$t$, current_user);
END
$$;

