-- Up Migration
--
-- Service tiers as data (sql/ holds each definition; this step brings the
-- schema there). ai_cost.service_tiers names the tiers calls and prices may
-- use, each for every provider, one provider or one model, and how it is
-- priced: by price rows of its own (standard, batch, flex and priority, as
-- before) or as a multiple of the standard price (Anthropic's fast mode).
-- The CHECK constraints that allowed four tiers give way to a check of the
-- name's shape on calls and a trigger on prices; a call on a tier unknown to
-- its provider is unpriced with that reason. The price lookup holds the
-- multiple tiers' rows, so the book, the trigger and insert_calls price them
-- as any other tier.

SET LOCAL check_function_bodies = off;

-- Service tiers are data. A provider sells a call at more than one speed or
-- priority (batch, flex, priority, Anthropic's fast mode), and each tier is
-- priced one of two ways: by price rows of its own (service_tier on
-- ai_cost.prices), or as a multiple of the model's standard price (fast mode
-- bills every rate of Claude Opus 4.6 at 6x). A row names a tier for every
-- provider (provider NULL), one provider, or one model of one provider; for
-- a call the narrowest row of its tier's name decides. Multiples are
-- effective-dated like prices: inserting a row for the same name and scope
-- ends the one in force at its valid_from.
--
-- A price row's tier must be known for its provider (a trigger refuses it
-- otherwise), and a call on a tier no row names for its provider is unpriced
-- with the reason 'unknown service tier', never priced as standard.
CREATE TABLE ai_cost.service_tiers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  provider text,
  model text,
  multiplier numeric,
  valid_from timestamptz NOT NULL DEFAULT '-infinity',
  valid_to timestamptz,
  source text,
  note text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "tier name must be 1-100 lowercase letters, digits, _ or -"
    CHECK (name ~ '^[a-z0-9][a-z0-9_-]*$' AND length(name) <= 100),
  CONSTRAINT "a service tier for a model needs its provider" CHECK (model IS NULL OR provider IS NOT NULL),
  CONSTRAINT "service tier provider and model must not be empty: NULL is all" CHECK (provider <> '' AND model <> ''),
  CONSTRAINT "the standard tier is priced by its own price rows" CHECK (name <> 'standard' OR multiplier IS NULL),
  -- NaN and Infinity are kept out by the upper bound, as for prices.
  CONSTRAINT "tier multiplier must be above 0 and below 1000" CHECK (multiplier > 0 AND multiplier < 1000),
  CONSTRAINT "service tier valid_to must be after valid_from" CHECK (valid_to > valid_from),
  CONSTRAINT "service tiers of one name and scope must not overlap in time"
    EXCLUDE USING gist (name WITH =, (coalesce(provider, '')) WITH =, (coalesce(model, '')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&)
);
COMMENT ON TABLE ai_cost.service_tiers IS 'The service tiers calls and prices may name, and how each is priced: by price rows of its own in ai_cost.prices (multiplier NULL), or as a multiple of the standard price (Anthropic fast mode). For a call the narrowest row of its tier''s name applies: its model''s, its provider''s, then the one for every provider. A call on a tier no row names for its provider is unpriced (unknown service tier), never priced as standard.';
COMMENT ON COLUMN ai_cost.service_tiers.id IS 'Service tier row id.';
COMMENT ON COLUMN ai_cost.service_tiers.name IS 'Tier name as calls and prices give it in service_tier, e.g. standard, batch, flex, priority, fast.';
COMMENT ON COLUMN ai_cost.service_tiers.provider IS 'Provider the row is for; NULL: every provider.';
COMMENT ON COLUMN ai_cost.service_tiers.model IS 'Model id (as in ai_cost.prices) the row is for; NULL: every model of the provider.';
COMMENT ON COLUMN ai_cost.service_tiers.multiplier IS 'NULL: the tier is priced by price rows of its own (ai_cost.prices.service_tier). A number: every rate of the model''s standard price (long-context tiers, tenant prices and discounts included) times this, e.g. 6 for Anthropic fast mode on Claude Opus 4.6; a model with price rows of its own for the tier keeps them.';
COMMENT ON COLUMN ai_cost.service_tiers.valid_from IS 'First instant the row applies (inclusive), compared with ai_cost.calls.created_at.';
COMMENT ON COLUMN ai_cost.service_tiers.valid_to IS 'Instant the row stops applying (exclusive); NULL while in force. Set automatically when a later row of the same name and scope is inserted.';
COMMENT ON COLUMN ai_cost.service_tiers.source IS 'Where the tier''s pricing rule was read (a URL).';
COMMENT ON COLUMN ai_cost.service_tiers.note IS 'Free text.';
COMMENT ON COLUMN ai_cost.service_tiers.created_at IS 'When this row was inserted.';

INSERT INTO ai_cost.service_tiers (name, note) VALUES
  ('standard', 'the default tier'),
  ('batch', 'asynchronous batch APIs'),
  ('flex', 'slower, cheaper processing (OpenAI flex, Gemini flex)'),
  ('priority', 'faster, dearer processing (OpenAI, Gemini and Azure priority)');

-- Ends the row in force for the same name and scope at the new row's
-- valid_from, and ends the new row where a later one starts, as for prices.
CREATE FUNCTION ai_cost_internal.close_previous_service_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.service_tiers
     SET valid_to = NEW.valid_from
   WHERE name = NEW.name AND provider IS NOT DISTINCT FROM NEW.provider AND model IS NOT DISTINCT FROM NEW.model
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);
  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.service_tiers
     WHERE name = NEW.name AND provider IS NOT DISTINCT FROM NEW.provider AND model IS NOT DISTINCT FROM NEW.model
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.close_previous_service_tier() IS 'Trigger: ends the service tier row in force when a newer one of the same name and scope is inserted.';

CREATE TRIGGER tg_service_tiers__close_previous
  BEFORE INSERT ON ai_cost.service_tiers
  FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.close_previous_service_tier();

-- A tier that price rows use stays known to their provider: deleting or
-- renaming the last row that names it is refused.
CREATE FUNCTION ai_cost_internal.keep_used_service_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  orphan record;
BEGIN
  SELECT p.provider, p.service_tier INTO orphan
    FROM ai_cost.prices p
   WHERE p.service_tier = OLD.name AND (OLD.provider IS NULL OR p.provider = OLD.provider)
     AND NOT EXISTS (SELECT FROM ai_cost.service_tiers t
                      WHERE t.id <> OLD.id AND t.name = p.service_tier AND (t.provider IS NULL OR t.provider = p.provider))
   LIMIT 1;
  IF FOUND AND (TG_OP = 'DELETE' OR NEW.name <> OLD.name OR NEW.provider IS DISTINCT FROM OLD.provider) THEN
    RAISE EXCEPTION 'service tier % is used by prices of %: it cannot be removed while they name it', orphan.service_tier, orphan.provider
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.keep_used_service_tier() IS 'Trigger: refuses to delete or rename the last service tier row that names a tier price rows use.';

CREATE TRIGGER tg_service_tiers__keep_used
  BEFORE DELETE OR UPDATE OF name, provider ON ai_cost.service_tiers
  FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.keep_used_service_tier();

-- A price's tier must be one ai_cost.service_tiers names for its provider:
-- a price for a misspelt tier would price no call, silently.
CREATE FUNCTION ai_cost_internal.check_price_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM ai_cost.service_tiers t
                  WHERE t.name = NEW.service_tier AND (t.provider IS NULL OR t.provider = NEW.provider)) THEN
    RAISE EXCEPTION 'unknown service tier % for provider %', NEW.service_tier, NEW.provider
      USING ERRCODE = 'foreign_key_violation',
            HINT = 'Add the tier to ai_cost.service_tiers first, saying how it is priced.';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.check_price_tier() IS 'Trigger: refuses a price whose service tier ai_cost.service_tiers does not name for its provider.';

CREATE TRIGGER tg_prices__check_tier
  BEFORE INSERT OR UPDATE OF provider, service_tier ON ai_cost.prices
  FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.check_price_tier();

ALTER TABLE ai_cost.prices DROP CONSTRAINT "price service_tier must be standard, batch, flex or priority";
COMMENT ON COLUMN ai_cost.prices.service_tier IS 'Service tier this price is for (standard, batch, flex, priority, or any tier in ai_cost.service_tiers for its provider). A call is priced only by a row of its own tier, or from the standard price for a tier priced as a multiple of it.';

ALTER TABLE ai_cost.calls
  DROP CONSTRAINT "service_tier must be standard, batch, flex or priority",
  ADD CONSTRAINT "service_tier must be 1-100 lowercase letters, digits, _ or -"
    CHECK (service_tier ~ '^[a-z0-9][a-z0-9_-]*$' AND length(service_tier) <= 100);
COMMENT ON COLUMN ai_cost.calls.service_tier IS 'Provider service tier the call ran on: standard, batch, flex, priority or another tier ai_cost.service_tiers names for the provider (each has its own price, or a multiple of standard). A tier it does not name leaves the call unpriced.';
COMMENT ON COLUMN ai_cost.calls_hourly.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';

ALTER TABLE ai_cost_internal.price_lookup ADD COLUMN tier_multiplier numeric;
COMMENT ON TABLE ai_cost_internal.price_lookup IS 'Internal: prices resolved for aliases, tenants, discounts and service tiers priced as a multiple of standard (tenant_id '''' for what applies to everyone), maintained from ai_cost.prices, ai_cost.model_aliases, ai_cost.tenant_discounts and ai_cost.service_tiers.';

CREATE TRIGGER tg_service_tiers__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.service_tiers
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();
COMMENT ON FUNCTION ai_cost_internal.price_sources_changed() IS 'Trigger: rebuilds the resolved price lookup after prices, aliases, discounts or service tiers change.';

CREATE OR REPLACE FUNCTION ai_cost_internal.no_price_reason(provider text, model text, service_tier text, at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  lookup_model text := coalesce(ai_cost_internal.pattern_model(provider, model), model);
BEGIN
  IF NOT EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = provider)
     AND NOT EXISTS (SELECT FROM ai_cost.prices p WHERE p.provider = provider) THEN
    RETURN 'unknown provider ' || provider;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost.service_tiers t
                  WHERE t.name = service_tier AND (t.provider IS NULL OR t.provider = provider)) THEN
    RETURN 'unknown service tier ' || service_tier || ' for provider ' || provider;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = provider AND l.model = lookup_model) THEN
    RETURN 'no price for model ' || provider || '/' || model;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l
                  WHERE l.provider = provider AND l.model = lookup_model AND l.service_tier = service_tier) THEN
    RETURN 'no ' || service_tier || '-tier price for model ' || provider || '/' || model;
  END IF;
  RETURN 'no price for model ' || provider || '/' || model || ' in force at the time of the call';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.no_price_reason(text, text, text, timestamptz) IS 'Internal: the unpriced_reason of a call to which no price applies.';

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

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
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

-- Anthropic's fast mode bills every rate of a model (input and output over
-- the whole context window, with the prompt-caching multipliers on top) at a
-- multiple of its standard rates, which differs by model.
INSERT INTO ai_cost.service_tiers (name, provider, model, multiplier, source, note) VALUES
  ('fast', 'anthropic', 'claude-opus-4-6', 6, 'https://platform.claude.com/docs/en/build-with-claude/fast-mode', 'built-in catalog: fast mode, 6x standard'),
  ('fast', 'anthropic', 'claude-opus-4-8', 2, 'https://platform.claude.com/docs/en/build-with-claude/fast-mode', 'built-in catalog: fast mode, 2x standard'),
  ('fast', 'anthropic', 'claude-opus-5', 2, 'https://platform.claude.com/docs/en/build-with-claude/fast-mode', 'built-in catalog: fast mode, 2x standard');

SELECT ai_cost_internal.rebuild_price_lookup();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The earlier schema knows four tiers: refuse rather than lose the others.
DO $$
BEGIN
  IF EXISTS (SELECT FROM ai_cost.prices WHERE service_tier NOT IN ('standard', 'batch', 'flex', 'priority'))
     OR EXISTS (SELECT FROM ai_cost.calls WHERE service_tier NOT IN ('standard', 'batch', 'flex', 'priority')) THEN
    RAISE EXCEPTION 'prices or calls name service tiers other than standard, batch, flex and priority, which the earlier schema cannot hold'
      USING HINT = 'Move or remove those rows, and migrate down again.';
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
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts
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
                                           ai_cost.tenant_access
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

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
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
  SELECT * INTO p FROM ai_cost_internal.price_lookup l
   WHERE l.price_id = priced.price_id AND l.discount_id IS NOT DISTINCT FROM priced.discount_id
     AND l.tenant_id IN ('', coalesce(explain_cost.tenant_id, ''))
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unpriced'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric, priced.unpriced_reason;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'price'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric,
    format('price row %s (%s/%s, %s tier, %s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model, p.service_tier,
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
  PERFORM ai_cost_internal.compile_price_book();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.rebuild_price_lookup() IS 'Internal: recomputes ai_cost_internal.price_lookup.';

CREATE OR REPLACE FUNCTION ai_cost_internal.no_price_reason(provider text, model text, service_tier text, at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  lookup_model text := coalesce(ai_cost_internal.pattern_model(provider, model), model);
BEGIN
  IF NOT EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = provider)
     AND NOT EXISTS (SELECT FROM ai_cost.prices p WHERE p.provider = provider) THEN
    RETURN 'unknown provider ' || provider;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = provider AND l.model = lookup_model) THEN
    RETURN 'no price for model ' || provider || '/' || model;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l
                  WHERE l.provider = provider AND l.model = lookup_model AND l.service_tier = service_tier) THEN
    RETURN 'no ' || service_tier || '-tier price for model ' || provider || '/' || model;
  END IF;
  RETURN 'no price for model ' || provider || '/' || model || ' in force at the time of the call';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.no_price_reason(text, text, text, timestamptz) IS 'Internal: the unpriced_reason of a call to which no price applies.';

DROP TRIGGER tg_service_tiers__rebuild_lookup ON ai_cost.service_tiers;
COMMENT ON FUNCTION ai_cost_internal.price_sources_changed() IS 'Trigger: rebuilds the resolved price lookup after prices, aliases or tenant discounts change.';
DELETE FROM ai_cost_internal.price_lookup WHERE tier_multiplier IS NOT NULL;
ALTER TABLE ai_cost_internal.price_lookup DROP COLUMN tier_multiplier;
COMMENT ON TABLE ai_cost_internal.price_lookup IS 'Internal: prices resolved for aliases, tenants and discounts (tenant_id '''' for what applies to everyone), maintained from ai_cost.prices, ai_cost.model_aliases and ai_cost.tenant_discounts.';

ALTER TABLE ai_cost.calls
  DROP CONSTRAINT "service_tier must be 1-100 lowercase letters, digits, _ or -",
  ADD CONSTRAINT "service_tier must be standard, batch, flex or priority"
    CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority'));
COMMENT ON COLUMN ai_cost.calls.service_tier IS 'Provider service tier the call ran on: standard, batch, flex or priority (each has its own price).';
COMMENT ON COLUMN ai_cost.calls_hourly.service_tier IS 'standard, batch, flex or priority.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS 'Provider service tier: standard, batch, flex or priority.';
COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS 'Provider service tier: standard, batch, flex or priority.';

DROP TRIGGER tg_prices__check_tier ON ai_cost.prices;
DROP FUNCTION ai_cost_internal.check_price_tier();
ALTER TABLE ai_cost.prices ADD CONSTRAINT "price service_tier must be standard, batch, flex or priority"
  CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority'));
COMMENT ON COLUMN ai_cost.prices.service_tier IS 'Service tier this price is for: standard, batch, flex or priority. A call is priced only by a row of its own tier.';

DROP TABLE ai_cost.service_tiers;
DROP FUNCTION ai_cost_internal.close_previous_service_tier();
DROP FUNCTION ai_cost_internal.keep_used_service_tier();

SELECT ai_cost_internal.rebuild_price_lookup();
