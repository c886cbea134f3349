-- Up Migration
--
-- More than one billed unit in one call (sql/ holds each definition; this
-- step brings the schema there). A call names further units it was billed
-- for in extra_units, a JSON object of unit: quantity (web searches beside
-- the tokens, say), and a price names further unit prices in unit_prices;
-- units and unit, and unit and unit_price, keep their meaning. The formula
-- (priced), the trigger, insert_calls and explain_cost price and show each
-- unit; calls with extra units take the lookup, as calls with units do.

SET LOCAL check_function_bodies = off;

ALTER TABLE ai_cost.prices
  ADD COLUMN unit_prices jsonb,
  -- JSON numbers are exact numerics, and JSON has no NaN or Infinity.
  ADD CONSTRAINT "unit_prices must map units to USD per unit below 1000000"
    CHECK (jsonb_typeof(unit_prices) = 'object'
       AND NOT jsonb_path_exists(unit_prices, '$.keyvalue() ? (@.value.type() != "number" || @.value < 0 || @.value >= 1000000 || @.key == "")')),
  ADD CONSTRAINT "a unit is priced once: in unit or in unit_prices"
    CHECK (NOT unit_prices ? unit);
COMMENT ON COLUMN ai_cost.prices.unit_prices IS 'Further per-unit prices beside unit and unit_price, as a JSON object of unit: USD per unit, e.g. {"web_search": 0.01} for $10 per 1,000 searches. Prices a call''s units (by its unit) and each of its extra_units; a billed unit with no price here or in unit makes the call unpriced.';

ALTER TABLE ai_cost_internal.price_lookup ADD COLUMN unit_prices jsonb;

-- A call billed for more than one kind of unit (web searches beside its
-- tokens and its images, say) names the others in extra_units: units and
-- unit keep their meaning, so every writer that sets them is unaffected.
ALTER TABLE ai_cost.calls ADD COLUMN extra_units jsonb;
ALTER TABLE ai_cost.calls
  ADD CONSTRAINT "extra_units must map units to quantities from 0 to 1e12"
    CHECK (jsonb_typeof(extra_units) = 'object'
       AND NOT jsonb_path_exists(extra_units, '$.keyvalue() ? (@.value.type() != "number" || @.value < 0 || @.value > 1000000000000 || @.key == "")')),
  ADD CONSTRAINT "extra_units must not repeat unit"
    CHECK (NOT extra_units ? unit),
  ADD CONSTRAINT "extra_units must be at most 4 kB"
    CHECK (pg_column_size(extra_units) <= 4096);
COMMENT ON COLUMN ai_cost.calls.extra_units IS 'Further units the call was billed for, beside units and unit, as a JSON object of unit: quantity, e.g. {"web_search": 3}. Each is priced at the price''s unit_price (where it is the price''s unit) or its unit_prices entry; one without a price leaves the call unpriced. NULL: none.';

DROP FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text);
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
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb) IS 'Internal: the cost formula applied with the price for an exact model id or alias; no row when none applies.';

CREATE OR REPLACE FUNCTION ai_cost_internal.cost_of(
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

DROP FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint);
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
    format('price row %s (%s/%s, %s, %s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
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
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, d.quantity * d.rate * d.scale * p.factor, d.detail
    FROM (VALUES
      ('input', greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - write_5m - write_1h
                         - (coalesce(audio_input_tokens, 0) - cached_audio) - image_in - video_in, 0)::numeric,
       p.input_per_mtok, '1M tokens', 1, NULL),
      ('image input', image_in::numeric, p.image_input_per_mtok, '1M tokens', 1, NULL),
      ('video input', video_in::numeric, p.video_input_per_mtok, '1M tokens', 1, NULL),
      ('cache read', (coalesce(cache_read_tokens, 0) - cached_audio)::numeric, p.cache_read_per_mtok, '1M tokens', 1, NULL),
      ('cache read (audio)', cached_audio::numeric, coalesce(p.cache_read_audio_per_mtok, p.cache_read_per_mtok), '1M tokens', 1,
       CASE WHEN p.cache_read_audio_per_mtok IS NULL THEN 'at the cache read rate: the price has no cache_read_audio_per_mtok' END),
      ('cache write (5 min)', write_5m::numeric, p.cache_write_per_mtok, '1M tokens', 1, NULL),
      ('cache write (1 hour)', write_1h::numeric, p.cache_write_1h_per_mtok, '1M tokens', 1, NULL),
      ('audio input', (coalesce(audio_input_tokens, 0) - cached_audio)::numeric, p.audio_input_per_mtok, '1M tokens', 1, NULL),
      ('output', greatest(coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0) - reasoning - image_out, 0)::numeric,
       p.output_per_mtok, '1M tokens', 1, NULL),
      ('reasoning', reasoning::numeric, p.reasoning_per_mtok, '1M tokens', 1, NULL),
      ('image output', image_out::numeric, p.image_output_per_mtok, '1M tokens', 1, NULL),
      ('audio output', coalesce(audio_output_tokens, 0)::numeric, p.audio_output_per_mtok, '1M tokens', 1, NULL),
      ('per ' || coalesce(unit, 'unit'), coalesce(units, 0),
       CASE WHEN p.unit = unit THEN p.unit_price ELSE (p.unit_prices ->> unit)::numeric END, unit, 1000000, NULL)
    ) AS d(component, quantity, rate, per, scale, detail)
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
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension and each billed unit, then the total (or why it is unpriced).';

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(call_id bigint)
RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
BEGIN
  SELECT * INTO c FROM ai_cost.calls WHERE id = call_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no call with id %', call_id USING ERRCODE = 'no_data_found';
  END IF;
  RETURN QUERY SELECT * FROM ai_cost.explain_cost(c.provider, c.model, c.created_at, c.input_tokens, c.output_tokens,
    c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
    c.units, c.unit, c.service_tier, c.tenant_id, c.reasoning_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.extra_units);
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
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(bigint) IS 'Breaks down the cost of recorded call call_id at today''s prices for its created_at (price row, tier, each component, total: its computed_cost_micros), then, for an app-cache hit or a provider-reported cost, the number cost_micros took instead; compare with the stored cost_micros and price_id.';

CREATE OR REPLACE FUNCTION ai_cost.insert_calls(calls jsonb) RETURNS bigint
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
           j.tenant_id, j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
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
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;
COMMENT ON FUNCTION ai_cost.insert_calls(jsonb) IS 'Inserts a batch of calls given as a JSON array of objects keyed by ai_cost.calls columns, pricing list-priced calls in the statement itself (the cost trigger prices the rest); skips request_ids already recorded; returns how many calls were new.';

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
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR (ai_cost_internal.price_book_rates())[slot][9] OPERATOR(pg_catalog.=) (ai_cost_internal.price_book_rates())[slot][3]) THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- Uncached input needs no clamp at 0 here: with no cache writes or audio
      -- it is negative only in a row the CHECK constraints refuse next, and
      -- the masks keep every count below 2^30, so nothing overflows first.
      -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
      NEW.cost_micros := (((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint))
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
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
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
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
    RETURN ai_cost_internal.price_call_slowly(NEW);
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
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
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
  RETURN ai_cost_internal.price_call_slowly(NEW);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_call() IS 'Trigger: sets cost_micros, computed_cost_micros, price_id, discount_id and unpriced_reason of a call (from the compiled price book for a current list price; by the price lookup or ai_cost_internal.cost_of() otherwise); refuses calls dated more than 1 day ahead, and calls of a strict-mode provider that cannot be priced.';

-- The trigger fires on changes of extra_units too.
DROP TRIGGER tg_calls__price_call ON ai_cost.calls;
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

CREATE OR REPLACE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost_internal.price_lookup;
  INSERT INTO ai_cost_internal.price_lookup
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
  SELECT provider, name, service_tier, coalesce(tenant_id, ''), CASE WHEN tenant_id IS NULL THEN 7 ELSE 0 END,
         above_input_tokens, valid_from, valid_to, id, NULL, 1, model,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, reasoning_per_mtok, cache_read_audio_per_mtok,
         image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, NULL::numeric, unit_prices
    FROM priced
  UNION ALL
  -- List prices with a tenant's or the organisation's discount, for the
  -- discount's period.
  SELECT p.provider, p.name, p.service_tier, coalesce(d.tenant_id, ''),
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END
           + CASE WHEN d.tenant_id IS NULL THEN 3 ELSE 0 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price, p.reasoning_per_mtok, p.cache_read_audio_per_mtok,
         p.image_input_per_mtok, p.image_output_per_mtok, p.video_input_per_mtok, NULL::numeric, p.unit_prices
    FROM priced p
    JOIN ai_cost.tenant_discounts d
      ON p.tenant_id IS NULL
     AND (d.provider IS NULL OR d.provider = p.provider)
     AND (d.model IS NULL OR d.model = p.model)
    CROSS JOIN LATERAL (SELECT tstzrange(p.valid_from, p.valid_to) * tstzrange(d.valid_from, d.valid_to) AS r) i
   WHERE NOT isempty(r);
  -- Tiers priced as a multiple of the standard price: every standard row
  -- above (each id and alias, long-context tier, tenant price and discount)
  -- again for the tier, each rate multiplied (exactly: trim_scale only drops
  -- trailing zeros), for the period the tier row and the standard row
  -- share. The narrowest row of the tier's name decides (the model's, the
  -- provider's, then every provider's, whether that row is a multiple or
  -- not), and a model id with price rows of its own for the tier keeps
  -- them: the statement does not see its own rows, so the NOT EXISTS reads
  -- the rows inserted above.
  INSERT INTO ai_cost_internal.price_lookup
  SELECT s.provider, s.model, t.name, s.tenant_id, s.rank, s.above_input_tokens, lower(r), upper(r),
         s.price_id, s.discount_id, s.factor, s.priced_model,
         trim_scale(s.input_per_mtok * t.multiplier), trim_scale(s.output_per_mtok * t.multiplier), trim_scale(s.cache_read_per_mtok * t.multiplier),
         trim_scale(s.cache_write_per_mtok * t.multiplier), trim_scale(s.cache_write_1h_per_mtok * t.multiplier),
         trim_scale(s.audio_input_per_mtok * t.multiplier), trim_scale(s.audio_output_per_mtok * t.multiplier), s.unit, trim_scale(s.unit_price * t.multiplier),
         trim_scale(s.reasoning_per_mtok * t.multiplier), trim_scale(s.cache_read_audio_per_mtok * t.multiplier),
         trim_scale(s.image_input_per_mtok * t.multiplier), trim_scale(s.image_output_per_mtok * t.multiplier), trim_scale(s.video_input_per_mtok * t.multiplier),
         t.multiplier,
         (SELECT jsonb_object_agg(e.key, trim_scale(e.value::numeric * t.multiplier)) FROM jsonb_each(s.unit_prices) AS e)
    FROM ai_cost_internal.price_lookup s
    JOIN ai_cost.service_tiers t
      ON t.multiplier IS NOT NULL
     AND (t.provider IS NULL OR t.provider = s.provider)
     AND (t.model IS NULL OR t.model = s.priced_model)
    CROSS JOIN LATERAL (SELECT tstzrange(s.valid_from, s.valid_to) * tstzrange(t.valid_from, t.valid_to) AS r) i
   WHERE s.service_tier = 'standard' AND NOT isempty(r)
     AND NOT EXISTS (SELECT FROM ai_cost.service_tiers n
                      WHERE n.name = t.name AND n.provider = s.provider AND t.model IS NULL
                        AND (n.model = s.priced_model OR (n.model IS NULL AND t.provider IS NULL)))
     AND NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup own
                      WHERE own.provider = s.provider AND own.model = s.model AND own.service_tier = t.name);
  PERFORM ai_cost_internal.compile_price_book();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.rebuild_price_lookup() IS 'Internal: recomputes ai_cost_internal.price_lookup.';

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text)
    TO %I', grantee);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
BEGIN
  REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM PUBLIC;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    -- USAGE on ai_cost_internal lets the reader's functions (calls_between)
    -- name the internal ones granted below; it reads no internal table.
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_reader;
    -- Every table and view but the calls, their partitions and the months
    -- retention detached (reading one directly would bypass the column
    -- grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls' AND c.relname !~ '^calls_[0-9]{4}_[0-9]{2}$'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros,
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units)
       ON ai_cost.calls TO ai_cost_reader;
    -- The functions of the reporting views, and the histogram and price
    -- helpers a dashboard query may call itself.
    GRANT EXECUTE ON FUNCTION
      ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
      ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
      ai_cost.histogram_merge(bigint[]), ai_cost.price_at(text, text, timestamptz),
      ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint),
      ai_cost_internal.histogram(integer, integer),
      ai_cost_internal.dimension_values(text, text, text, text, text, text, text),
      ai_cost_internal.split_days(timestamptz, timestamptz[]),
      ai_cost_internal.calls_slices(timestamptz, timestamptz[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls()
      TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never what a call was about or whose it was.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts,
                    ai_cost.service_tiers
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb)
      TO ai_cost_writer;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_writer');
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost columns; the cost trigger recomputes them
    -- from the prices, so this cannot set an arbitrary cost either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers
       TO ai_cost_admin;
    -- Operators choose whether the refresh announces unpriced models.
    GRANT SELECT, UPDATE (enabled) ON ai_cost.unpriced_model_alert_settings TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION') THEN
        GRANT ai_cost_reader TO ai_cost_admin;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_tenant_reader;
    -- A tenant reader reads the calls and their rollups only while the
    -- policies below confine it to its tenants.
    SELECT c.relrowsecurity INTO isolated FROM pg_catalog.pg_class c WHERE c.oid = 'ai_cost.calls'::regclass;
    IF isolated THEN
      GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
    ELSE
      REVOKE SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly FROM ai_cost_tenant_reader;
    END IF;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

SELECT ai_cost_internal.rebuild_price_lookup();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The earlier schema bills one unit a call: refuse rather than drop units.
DO $$
BEGIN
  IF EXISTS (SELECT FROM ai_cost.prices WHERE unit_prices IS NOT NULL)
     OR EXISTS (SELECT FROM ai_cost.calls WHERE extra_units IS NOT NULL) THEN
    RAISE EXCEPTION 'prices with unit_prices or calls with extra_units exist, which the earlier schema cannot hold'
      USING HINT = 'Remove them (calls) or end them with a price without unit_prices, reprice, and migrate down again.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
BEGIN
  REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM PUBLIC;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    -- USAGE on ai_cost_internal lets the reader's functions (calls_between)
    -- name the internal ones granted below; it reads no internal table.
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_reader;
    -- Every table and view but the calls, their partitions and the months
    -- retention detached (reading one directly would bypass the column
    -- grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls' AND c.relname !~ '^calls_[0-9]{4}_[0-9]{2}$'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros,
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens)
       ON ai_cost.calls TO ai_cost_reader;
    -- The functions of the reporting views, and the histogram and price
    -- helpers a dashboard query may call itself.
    GRANT EXECUTE ON FUNCTION
      ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
      ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
      ai_cost.histogram_merge(bigint[]), ai_cost.price_at(text, text, timestamptz),
      ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint),
      ai_cost_internal.histogram(integer, integer),
      ai_cost_internal.dimension_values(text, text, text, text, text, text, text),
      ai_cost_internal.split_days(timestamptz, timestamptz[]),
      ai_cost_internal.calls_slices(timestamptz, timestamptz[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls()
      TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never what a call was about or whose it was.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts,
                    ai_cost.service_tiers
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint)
      TO ai_cost_writer;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_writer');
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost columns; the cost trigger recomputes them
    -- from the prices, so this cannot set an arbitrary cost either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers
       TO ai_cost_admin;
    -- Operators choose whether the refresh announces unpriced models.
    GRANT SELECT, UPDATE (enabled) ON ai_cost.unpriced_model_alert_settings TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION') THEN
        GRANT ai_cost_reader TO ai_cost_admin;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_tenant_reader;
    -- A tenant reader reads the calls and their rollups only while the
    -- policies below confine it to its tenants.
    SELECT c.relrowsecurity INTO isolated FROM pg_catalog.pg_class c WHERE c.oid = 'ai_cost.calls'::regclass;
    IF isolated THEN
      GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
    ELSE
      REVOKE SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly FROM ai_cost_tenant_reader;
    END IF;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

DROP FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb);
CREATE FUNCTION ai_cost.explain_cost(
  provider text, model text, at timestamptz DEFAULT now(),
  input_tokens bigint DEFAULT NULL, output_tokens bigint DEFAULT NULL,
  cache_read_tokens bigint DEFAULT NULL, cache_write_tokens bigint DEFAULT NULL,
  cache_write_1h_tokens bigint DEFAULT NULL, audio_input_tokens bigint DEFAULT NULL,
  audio_output_tokens bigint DEFAULT NULL, units numeric DEFAULT NULL, unit text DEFAULT NULL,
  service_tier text DEFAULT 'standard', tenant_id text DEFAULT NULL,
  reasoning_tokens bigint DEFAULT NULL, cache_read_audio_tokens bigint DEFAULT NULL,
  image_input_tokens bigint DEFAULT NULL, image_output_tokens bigint DEFAULT NULL, video_input_tokens bigint DEFAULT NULL
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
BEGIN
  c.provider := provider; c.model := model; c.created_at := at; c.service_tier := service_tier;
  c.tenant_id := tenant_id; c.cached := false;
  c.input_tokens := input_tokens; c.output_tokens := output_tokens;
  c.cache_read_tokens := cache_read_tokens; c.cache_write_tokens := cache_write_tokens;
  c.cache_write_1h_tokens := cache_write_1h_tokens; c.audio_input_tokens := audio_input_tokens;
  c.audio_output_tokens := audio_output_tokens; c.reasoning_tokens := reasoning_tokens;
  c.cache_read_audio_tokens := cache_read_audio_tokens; c.image_input_tokens := image_input_tokens;
  c.image_output_tokens := image_output_tokens; c.video_input_tokens := video_input_tokens;
  c.units := units; c.unit := unit;
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
    format('price row %s (%s/%s, %s, %s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
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
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, d.quantity * d.rate * d.scale * p.factor, d.detail
    FROM (VALUES
      ('input', greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - write_5m - write_1h
                         - (coalesce(audio_input_tokens, 0) - cached_audio) - image_in - video_in, 0)::numeric,
       p.input_per_mtok, '1M tokens', 1, NULL),
      ('image input', image_in::numeric, p.image_input_per_mtok, '1M tokens', 1, NULL),
      ('video input', video_in::numeric, p.video_input_per_mtok, '1M tokens', 1, NULL),
      ('cache read', (coalesce(cache_read_tokens, 0) - cached_audio)::numeric, p.cache_read_per_mtok, '1M tokens', 1, NULL),
      ('cache read (audio)', cached_audio::numeric, coalesce(p.cache_read_audio_per_mtok, p.cache_read_per_mtok), '1M tokens', 1,
       CASE WHEN p.cache_read_audio_per_mtok IS NULL THEN 'at the cache read rate: the price has no cache_read_audio_per_mtok' END),
      ('cache write (5 min)', write_5m::numeric, p.cache_write_per_mtok, '1M tokens', 1, NULL),
      ('cache write (1 hour)', write_1h::numeric, p.cache_write_1h_per_mtok, '1M tokens', 1, NULL),
      ('audio input', (coalesce(audio_input_tokens, 0) - cached_audio)::numeric, p.audio_input_per_mtok, '1M tokens', 1, NULL),
      ('output', greatest(coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0) - reasoning - image_out, 0)::numeric,
       p.output_per_mtok, '1M tokens', 1, NULL),
      ('reasoning', reasoning::numeric, p.reasoning_per_mtok, '1M tokens', 1, NULL),
      ('image output', image_out::numeric, p.image_output_per_mtok, '1M tokens', 1, NULL),
      ('audio output', coalesce(audio_output_tokens, 0)::numeric, p.audio_output_per_mtok, '1M tokens', 1, NULL),
      ('per ' || coalesce(unit, 'unit'), coalesce(units, 0), CASE WHEN p.unit = unit THEN p.unit_price END, unit, 1000000, NULL)
    ) AS d(component, quantity, rate, per, scale, detail)
   WHERE d.quantity > 0;
  RETURN QUERY SELECT CASE WHEN priced.cost_micros IS NULL THEN 'unpriced' ELSE 'total' END,
    NULL::numeric, NULL::numeric, NULL::text, priced.cost_micros::numeric,
    coalesce(priced.unpriced_reason, 'sum rounded up once to whole micro-dollars');
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension, then the total (or why it is unpriced).';

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(call_id bigint)
RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
BEGIN
  SELECT * INTO c FROM ai_cost.calls WHERE id = call_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no call with id %', call_id USING ERRCODE = 'no_data_found';
  END IF;
  RETURN QUERY SELECT * FROM ai_cost.explain_cost(c.provider, c.model, c.created_at, c.input_tokens, c.output_tokens,
    c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
    c.units, c.unit, c.service_tier, c.tenant_id, c.reasoning_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens);
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
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(bigint) IS 'Breaks down the cost of recorded call call_id at today''s prices for its created_at (price row, tier, each component, total: its computed_cost_micros), then, for an app-cache hit or a provider-reported cost, the number cost_micros took instead; compare with the stored cost_micros and price_id.';
DROP FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb);
CREATE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  reasoning_tokens bigint, cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint,
  video_input_tokens bigint, units numeric, unit text
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  -- OPERATOR(...) gives every operator the same precedence, so each product
  -- is in parentheses. Cached audio ($14) is part of both the cache reads
  -- ($8) and the audio input ($11). Reasoning ($13) and image output ($16)
  -- are parts of the output ($7), image ($15) and video ($17) input parts of
  -- the input ($6), that only a price with a rate of their own bills apart:
  -- at a NULL rate the part is 0 here and stays in its whole.
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
           OPERATOR(pg_catalog.+) (coalesce($18, 0) OPERATOR(pg_catalog.*) coalesce(l.unit_price, 0) OPERATOR(pg_catalog.*) 1000000)))::bigint,
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
           WHEN $18 OPERATOR(pg_catalog.>) 0 AND NOT coalesce(l.unit OPERATOR(pg_catalog.=) $19, l.unit IS NULL AND $19 IS NULL) THEN 'no price per ' OPERATOR(pg_catalog.||) $19
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) $1 AND l.model OPERATOR(pg_catalog.=) $2 AND l.service_tier OPERATOR(pg_catalog.=) $3
     AND (l.tenant_id OPERATOR(pg_catalog.=) '' OR l.tenant_id OPERATOR(pg_catalog.=) $4)
     AND l.valid_from OPERATOR(pg_catalog.<=) $5 AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) $5)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0 OR l.above_input_tokens OPERATOR(pg_catalog.<) $6)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text) IS 'Internal: the cost formula applied with the price for an exact model id or alias; no row when none applies.';

CREATE OR REPLACE FUNCTION ai_cost_internal.cost_of(
  c ai_cost.calls,
  OUT cost_micros bigint, OUT price_id bigint, OUT discount_id bigint, OUT unpriced_reason text,
  OUT computed_cost_micros bigint
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pattern_model text;
BEGIN
  IF c.input_tokens IS NULL AND c.output_tokens IS NULL AND c.units IS NULL THEN
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
             c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit);
    IF NOT FOUND THEN
      pattern_model := ai_cost_internal.pattern_model(c.provider, c.model);
      IF pattern_model IS NOT NULL THEN
        SELECT * INTO computed_cost_micros, price_id, discount_id, unpriced_reason
          FROM ai_cost_internal.priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
                 c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
                 c.audio_input_tokens, c.audio_output_tokens, c.reasoning_tokens, c.cache_read_audio_tokens,
                 c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit);
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

CREATE OR REPLACE FUNCTION ai_cost.insert_calls(calls jsonb) RETURNS bigint
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
  INSERT INTO ai_cost.calls (
    created_at, provider, model, operation, status, service_tier,
    tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
    image_input_tokens, image_output_tokens, video_input_tokens, units, unit,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
    discount_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit,
    c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
    -- Only read with a cost beside them: the trigger sets its own otherwise.
    b.price_id, b.discount_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           j.tenant_id, j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
           j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
        units numeric, unit text, provided_cost_micros bigint,
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
    SELECT CASE WHEN c.units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
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
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;
COMMENT ON FUNCTION ai_cost.insert_calls(jsonb) IS 'Inserts a batch of calls given as a JSON array of objects keyed by ai_cost.calls columns, pricing list-priced calls in the statement itself (the cost trigger prices the rest); skips request_ids already recorded; returns how many calls were new.';

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
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR (ai_cost_internal.price_book_rates())[slot][9] OPERATOR(pg_catalog.=) (ai_cost_internal.price_book_rates())[slot][3]) THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- Uncached input needs no clamp at 0 here: with no cache writes or audio
      -- it is negative only in a row the CHECK constraints refuse next, and
      -- the masks keep every count below 2^30, so nothing overflows first.
      -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
      NEW.cost_micros := (((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint))
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
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
  -- App-cache hits, provider-reported costs and calls without usage have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost_internal.price_call_slowly(NEW);
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
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
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
  RETURN ai_cost_internal.price_call_slowly(NEW);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_call() IS 'Trigger: sets cost_micros, computed_cost_micros, price_id, discount_id and unpriced_reason of a call (from the compiled price book for a current list price; by the price lookup or ai_cost_internal.cost_of() otherwise); refuses calls dated more than 1 day ahead, and calls of a strict-mode provider that cannot be priced.';

DROP TRIGGER tg_calls__price_call ON ai_cost.calls;
DO $$
BEGIN
  EXECUTE format($t$
    CREATE TRIGGER tg_calls__price_call
      BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, reasoning_tokens,
    cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, units, unit, computed_cost_micros
      ON ai_cost.calls
      FOR EACH ROW
      WHEN (NEW.cost_micros IS NULL OR CURRENT_USER <> %L::name
            OR pg_catalog.current_setting('ai_cost.inserting_priced_calls', true) IS DISTINCT FROM 'on')
      EXECUTE FUNCTION ai_cost_internal.price_call()$t$, current_user);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text)
    TO %I', grantee);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost_internal.price_lookup;
  INSERT INTO ai_cost_internal.price_lookup
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
  SELECT provider, name, service_tier, coalesce(tenant_id, ''), CASE WHEN tenant_id IS NULL THEN 7 ELSE 0 END,
         above_input_tokens, valid_from, valid_to, id, NULL, 1, model,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, reasoning_per_mtok, cache_read_audio_per_mtok,
         image_input_per_mtok, image_output_per_mtok, video_input_per_mtok
    FROM priced
  UNION ALL
  -- List prices with a tenant's or the organisation's discount, for the
  -- discount's period.
  SELECT p.provider, p.name, p.service_tier, coalesce(d.tenant_id, ''),
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END
           + CASE WHEN d.tenant_id IS NULL THEN 3 ELSE 0 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price, p.reasoning_per_mtok, p.cache_read_audio_per_mtok,
         p.image_input_per_mtok, p.image_output_per_mtok, p.video_input_per_mtok
    FROM priced p
    JOIN ai_cost.tenant_discounts d
      ON p.tenant_id IS NULL
     AND (d.provider IS NULL OR d.provider = p.provider)
     AND (d.model IS NULL OR d.model = p.model)
    CROSS JOIN LATERAL (SELECT tstzrange(p.valid_from, p.valid_to) * tstzrange(d.valid_from, d.valid_to) AS r) i
   WHERE NOT isempty(r);
  -- Tiers priced as a multiple of the standard price: every standard row
  -- above (each id and alias, long-context tier, tenant price and discount)
  -- again for the tier, each rate multiplied (exactly: trim_scale only drops
  -- trailing zeros), for the period the tier row and the standard row
  -- share. The narrowest row of the tier's name decides (the model's, the
  -- provider's, then every provider's, whether that row is a multiple or
  -- not), and a model id with price rows of its own for the tier keeps
  -- them: the statement does not see its own rows, so the NOT EXISTS reads
  -- the rows inserted above.
  INSERT INTO ai_cost_internal.price_lookup
  SELECT s.provider, s.model, t.name, s.tenant_id, s.rank, s.above_input_tokens, lower(r), upper(r),
         s.price_id, s.discount_id, s.factor, s.priced_model,
         trim_scale(s.input_per_mtok * t.multiplier), trim_scale(s.output_per_mtok * t.multiplier), trim_scale(s.cache_read_per_mtok * t.multiplier),
         trim_scale(s.cache_write_per_mtok * t.multiplier), trim_scale(s.cache_write_1h_per_mtok * t.multiplier),
         trim_scale(s.audio_input_per_mtok * t.multiplier), trim_scale(s.audio_output_per_mtok * t.multiplier), s.unit, trim_scale(s.unit_price * t.multiplier),
         trim_scale(s.reasoning_per_mtok * t.multiplier), trim_scale(s.cache_read_audio_per_mtok * t.multiplier),
         trim_scale(s.image_input_per_mtok * t.multiplier), trim_scale(s.image_output_per_mtok * t.multiplier), trim_scale(s.video_input_per_mtok * t.multiplier),
         t.multiplier
    FROM ai_cost_internal.price_lookup s
    JOIN ai_cost.service_tiers t
      ON t.multiplier IS NOT NULL
     AND (t.provider IS NULL OR t.provider = s.provider)
     AND (t.model IS NULL OR t.model = s.priced_model)
    CROSS JOIN LATERAL (SELECT tstzrange(s.valid_from, s.valid_to) * tstzrange(t.valid_from, t.valid_to) AS r) i
   WHERE s.service_tier = 'standard' AND NOT isempty(r)
     AND NOT EXISTS (SELECT FROM ai_cost.service_tiers n
                      WHERE n.name = t.name AND n.provider = s.provider AND t.model IS NULL
                        AND (n.model = s.priced_model OR (n.model IS NULL AND t.provider IS NULL)))
     AND NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup own
                      WHERE own.provider = s.provider AND own.model = s.model AND own.service_tier = t.name);
  PERFORM ai_cost_internal.compile_price_book();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.rebuild_price_lookup() IS 'Internal: recomputes ai_cost_internal.price_lookup.';

ALTER TABLE ai_cost.calls
  DROP CONSTRAINT "extra_units must map units to quantities from 0 to 1e12",
  DROP CONSTRAINT "extra_units must not repeat unit",
  DROP CONSTRAINT "extra_units must be at most 4 kB",
  DROP COLUMN extra_units;
ALTER TABLE ai_cost_internal.price_lookup DROP COLUMN unit_prices;
ALTER TABLE ai_cost.prices
  DROP CONSTRAINT "unit_prices must map units to USD per unit below 1000000",
  DROP CONSTRAINT "a unit is priced once: in unit or in unit_prices",
  DROP COLUMN unit_prices;

SELECT ai_cost_internal.rebuild_price_lookup();
