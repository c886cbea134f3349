-- Up Migration
--
-- Declared fallbacks (sql/ holds each definition; this step brings the
-- schema there). A NULL rate still leaves the calls that use it unpriced;
-- where a provider bills a rate as a multiple of another (cached input at
-- the input rate, Anthropic's cache writes at 1.25x input), a price says so
-- in rates_from, and the price lookup works the rate out, so the book, the
-- trigger, insert_calls and explain_cost use it like any rate. The catalog
-- declares Anthropic's batch tier at 50% of standard (a service tier row),
-- for the Claude models without batch rows of their own.

SET LOCAL check_function_bodies = off;

ALTER TABLE ai_cost.prices
  ADD COLUMN rates_from jsonb,
  ADD CONSTRAINT "rates_from must be a JSON object" CHECK (jsonb_typeof(rates_from) = 'object');
COMMENT ON COLUMN ai_cost.prices.rates_from IS 'Rates the provider bills as a multiple of another rate of the same price, declared rather than guessed, e.g. {"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 1}} for cache reads billed at the input rate, or times 1.25 for Anthropic''s 5-minute cache writes. Only for a rate the row leaves NULL, from one it sets. A NULL rate without a declaration leaves the calls that use it unpriced.';

-- A declared rate (rates_from) names a rate the row leaves NULL and a rate
-- it sets, with a multiple: a fallback is data the provider publishes, so
-- it is written down and checked here, never assumed by the cost formula.
CREATE FUNCTION ai_cost_internal.check_price_rates_from() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price jsonb := to_jsonb(NEW);
  rates text[] := ARRAY['input_per_mtok', 'output_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'cache_write_1h_per_mtok', 'audio_input_per_mtok', 'audio_output_per_mtok', 'reasoning_per_mtok', 'cache_read_audio_per_mtok', 'image_input_per_mtok', 'image_output_per_mtok', 'video_input_per_mtok'];
  declared record;
BEGIN
  IF jsonb_typeof(NEW.rates_from) <> 'object' THEN
    RETURN NEW; -- the CHECK constraint that names it refuses the row
  END IF;
  FOR declared IN SELECT d.key, d.value FROM jsonb_each(NEW.rates_from) AS d LOOP
    IF NOT declared.key = ANY (rates) THEN
      RAISE EXCEPTION 'rates_from: % is not a rate (one of %)', declared.key, array_to_string(rates, ', ')
        USING ERRCODE = 'check_violation';
    END IF;
    IF price ->> declared.key IS NOT NULL THEN
      RAISE EXCEPTION 'rates_from: the price sets % itself; declare a rate or set it, not both', declared.key
        USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(declared.value) IS DISTINCT FROM 'object' OR NOT declared.value ?& ARRAY['rate', 'times']
       OR (SELECT count(*) FROM jsonb_object_keys(declared.value)) <> 2
       OR jsonb_typeof(declared.value -> 'times') IS DISTINCT FROM 'number'
       OR NOT ((declared.value ->> 'times')::numeric > 0 AND (declared.value ->> 'times')::numeric < 1000) THEN
      RAISE EXCEPTION 'rates_from: % must be {"rate": "<rate>", "times": <multiple above 0 and below 1000>}', declared.key
        USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (declared.value ->> 'rate') = ANY (rates) OR price ->> (declared.value ->> 'rate') IS NULL THEN
      RAISE EXCEPTION 'rates_from: % is declared from %, which is not a rate this price sets', declared.key, declared.value ->> 'rate'
        USING ERRCODE = 'check_violation';
    END IF;
  END LOOP;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.check_price_rates_from() IS 'Trigger: refuses a price whose rates_from declares a rate the price sets, or from a rate it does not set, or not as a positive multiple.';

CREATE TRIGGER tg_prices__check_rates_from
  BEFORE INSERT OR UPDATE OF rates_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok,
    cache_write_1h_per_mtok, audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok,
    image_input_per_mtok, image_output_per_mtok, video_input_per_mtok ON ai_cost.prices
  FOR EACH ROW WHEN (NEW.rates_from IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.check_price_rates_from();

CREATE OR REPLACE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost_internal.price_lookup;
  INSERT INTO ai_cost_internal.price_lookup
  WITH resolved AS (
    -- Each price row with the rates it declares (rates_from) worked out: a
    -- multiple of another rate the row sets, exactly (trim_scale only drops
    -- trailing zeros). A rate neither set nor declared stays NULL.
    SELECT p.id, p.provider, p.model, p.service_tier, p.above_input_tokens, p.tenant_id, p.valid_from, p.valid_to,
           coalesce(p.input_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{input_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{input_per_mtok,times}')::numeric)) AS input_per_mtok,
           coalesce(p.output_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{output_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{output_per_mtok,times}')::numeric)) AS output_per_mtok,
           coalesce(p.cache_read_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{cache_read_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{cache_read_per_mtok,times}')::numeric)) AS cache_read_per_mtok,
           coalesce(p.cache_write_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{cache_write_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{cache_write_per_mtok,times}')::numeric)) AS cache_write_per_mtok,
           coalesce(p.cache_write_1h_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{cache_write_1h_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{cache_write_1h_per_mtok,times}')::numeric)) AS cache_write_1h_per_mtok,
           coalesce(p.audio_input_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{audio_input_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{audio_input_per_mtok,times}')::numeric)) AS audio_input_per_mtok,
           coalesce(p.audio_output_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{audio_output_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{audio_output_per_mtok,times}')::numeric)) AS audio_output_per_mtok,
           coalesce(p.reasoning_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{reasoning_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{reasoning_per_mtok,times}')::numeric)) AS reasoning_per_mtok,
           coalesce(p.cache_read_audio_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{cache_read_audio_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{cache_read_audio_per_mtok,times}')::numeric)) AS cache_read_audio_per_mtok,
           coalesce(p.image_input_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{image_input_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{image_input_per_mtok,times}')::numeric)) AS image_input_per_mtok,
           coalesce(p.image_output_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{image_output_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{image_output_per_mtok,times}')::numeric)) AS image_output_per_mtok,
           coalesce(p.video_input_per_mtok, trim_scale((j.row ->> (p.rates_from #>> '{video_input_per_mtok,rate}'))::numeric
                                      * (p.rates_from #>> '{video_input_per_mtok,times}')::numeric)) AS video_input_per_mtok,
           p.unit, p.unit_price, p.unit_prices
      FROM ai_cost.prices p
     CROSS JOIN LATERAL (SELECT CASE WHEN p.rates_from IS NOT NULL THEN to_jsonb(p) END AS row) j
  ), priced AS (
    -- Each price row answers for its model id and for the model's aliases,
    -- except where an alias has a price of its own for the same tier.
    SELECT p.model AS name, p.* FROM resolved p
    UNION ALL
    SELECT a.alias, p.*
      FROM ai_cost.model_aliases a
      JOIN resolved p ON p.provider = a.provider AND p.model = a.model
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

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
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
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension and each billed unit, then the total (or why it is unpriced).';

-- Anthropic's Message Batches API bills every model at 50% of its standard
-- prices, a rule its price page states for all models: declared here, so
-- a Claude model without batch rows of its own is billed by it rather than
-- left unpriced. Models with batch rows keep them.
INSERT INTO ai_cost.service_tiers (name, provider, multiplier, source, note) VALUES
  ('batch', 'anthropic', 0.5, 'https://docs.anthropic.com/en/docs/about-claude/pricing', 'built-in catalog: Message Batches API, 50% of standard');

SELECT ai_cost_internal.rebuild_price_lookup();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The earlier schema has no declared rates: refuse rather than drop them.
DO $$
BEGIN
  IF EXISTS (SELECT FROM ai_cost.prices WHERE rates_from IS NOT NULL) THEN
    RAISE EXCEPTION 'prices declare rates in rates_from, which the earlier schema cannot hold'
      USING HINT = 'End those prices with prices that set the rates, reprice, and migrate down again.';
  END IF;
END
$$;

DELETE FROM ai_cost.service_tiers
 WHERE name = 'batch' AND provider = 'anthropic' AND model IS NULL AND note = 'built-in catalog: Message Batches API, 50% of standard';

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
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

DROP TRIGGER tg_prices__check_rates_from ON ai_cost.prices;
DROP FUNCTION ai_cost_internal.check_price_rates_from();
ALTER TABLE ai_cost.prices
  DROP CONSTRAINT "rates_from must be a JSON object",
  DROP COLUMN rates_from;

SELECT ai_cost_internal.rebuild_price_lookup();
