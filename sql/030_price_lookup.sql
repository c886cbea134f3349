-- Model matching and the price lookup: which price row answers for a call.
--
-- A call names a model as the provider reported it: a dated snapshot, a
-- Bedrock cross-region profile, a Gemini resource name. Aliases map such ids
-- to the model whose prices apply; patterns rewrite ids nothing else matches.
-- Tenant prices and discounts change the answer per tenant; organisation
-- discounts change it for everyone.
--
-- The cost trigger runs on every inserted call, so everything that can be
-- worked out ahead of time is: aliases, tenant prices and discounts are
-- resolved into ai_cost_internal.price_lookup whenever they change, and a
-- call then costs one indexed lookup plus arithmetic (or, for list prices in
-- force, no query at all: 050_price_book.sql). Patterns are tried only when no
-- exact id or alias has a price.

CREATE TABLE ai_cost.model_aliases (
  provider text NOT NULL,
  alias text NOT NULL,
  model text NOT NULL,
  note text,
  PRIMARY KEY (provider, alias),
  CONSTRAINT "alias must differ from its model" CHECK (alias <> model)
);
COMMENT ON TABLE ai_cost.model_aliases IS 'Model ids priced as another model of the same provider, e.g. the dated snapshot gpt-4o-2024-08-06 as gpt-4o. Only list ids whose price is the same: a snapshot with a price of its own (gpt-4o-2024-05-13) gets its own ai_cost.prices rows, which always win over an alias.';
COMMENT ON COLUMN ai_cost.model_aliases.alias IS 'Model id as calls report it.';
COMMENT ON COLUMN ai_cost.model_aliases.model IS 'Model id in ai_cost.prices whose prices apply.';
COMMENT ON COLUMN ai_cost.model_aliases.provider IS 'Provider id the alias applies to.';
COMMENT ON COLUMN ai_cost.model_aliases.note IS 'Free text, e.g. why the alias exists.';

CREATE TABLE ai_cost.model_patterns (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider text NOT NULL,
  pattern text NOT NULL,
  replacement text NOT NULL,
  priority integer NOT NULL DEFAULT 100,
  note text,
  UNIQUE (provider, pattern),
  -- Evaluating the pattern once makes an invalid one fail on insert, not in the cost trigger.
  CONSTRAINT "pattern must be a valid regular expression" CHECK (('' ~ pattern) IS NOT NULL)
);
COMMENT ON TABLE ai_cost.model_patterns IS 'Rewrites for model ids with no price or alias of their own (e.g. Bedrock cross-region prefixes us./eu./global.): tried in priority order (lowest first); the first rewritten id that has a price prices the call. Tried only after exact ids and aliases, so an id with a price of its own is never rewritten.';
COMMENT ON COLUMN ai_cost.model_patterns.pattern IS 'POSIX regular expression matched against the call''s model id.';
COMMENT ON COLUMN ai_cost.model_patterns.replacement IS 'regexp_replace replacement producing the model id to price with (\1 for the first group).';
COMMENT ON COLUMN ai_cost.model_patterns.priority IS 'Lower is tried first.';
COMMENT ON COLUMN ai_cost.model_patterns.id IS 'Pattern id.';
COMMENT ON COLUMN ai_cost.model_patterns.provider IS 'Provider id whose model ids the pattern rewrites.';
COMMENT ON COLUMN ai_cost.model_patterns.note IS 'Free text, e.g. what the pattern is for.';

-- Every (model id as a call may name it, tier, tenant) a price row answers
-- for, with discounts already folded in. Rebuilt by a statement trigger
-- whenever prices, aliases or discounts change (a few thousand rows, a few
-- milliseconds), so the cost trigger needs a single index probe per call.
CREATE TABLE ai_cost_internal.price_lookup (
  provider text NOT NULL,
  model text NOT NULL,
  service_tier text NOT NULL,
  tenant_id text NOT NULL,
  -- Lowest wins: 0 the tenant's own price; a list price with the tenant's
  -- discount for 1 the model, 2 the provider, 3 everything; with the
  -- organisation's discount (tenant_id '') for 4 the model, 5 the provider,
  -- 6 everything; 7 the list price.
  rank smallint NOT NULL,
  above_input_tokens bigint NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz,
  price_id bigint NOT NULL,
  discount_id bigint,
  factor numeric NOT NULL,
  priced_model text NOT NULL,
  input_per_mtok numeric,
  output_per_mtok numeric,
  cache_read_per_mtok numeric,
  cache_write_per_mtok numeric,
  cache_write_1h_per_mtok numeric,
  audio_input_per_mtok numeric,
  audio_output_per_mtok numeric,
  unit text,
  unit_price numeric,
  reasoning_per_mtok numeric,
  cache_read_audio_per_mtok numeric,
  image_input_per_mtok numeric,
  image_output_per_mtok numeric,
  video_input_per_mtok numeric,
  -- For a tier priced as a multiple of the standard price: the multiple,
  -- already applied to the rates above; NULL for a tier's own price rows.
  tier_multiplier numeric,
  unit_prices jsonb,
  -- For a price of certain hours of the day: its daily window and time
  -- zone (ai_cost.prices); in its hours it comes before the all-day row.
  daily_from time,
  daily_to time,
  time_zone text
);
COMMENT ON TABLE ai_cost_internal.price_lookup IS 'Internal: prices resolved for aliases, tenants, discounts and service tiers priced as a multiple of standard (tenant_id '''' for what applies to everyone), maintained from ai_cost.prices, ai_cost.model_aliases, ai_cost.tenant_discounts and ai_cost.service_tiers.';

-- Rows come out in the order the lookup wants (rank, then highest tier
-- first, then a price of the hour before the all-day one), so LIMIT 1 stops
-- at the first row that applies: no sort.
CREATE INDEX price_lookup_idx
  ON ai_cost_internal.price_lookup (provider, model, service_tier, rank, above_input_tokens DESC, (daily_from IS NULL));

-- Statement trigger: keeps the lookup in step with its three sources. The
-- UPDATE that tg_prices__close_previous_price makes for each inserted price
-- runs nested (trigger depth 2) and is skipped: the INSERT statement's own
-- trigger rebuilds once after all its rows, instead of once per row.
CREATE FUNCTION ai_cost_internal.price_sources_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_trigger_depth() > 1 THEN
    RETURN NULL;
  END IF;
  PERFORM ai_cost_internal.rebuild_price_lookup();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_sources_changed() IS 'Trigger: rebuilds the resolved price lookup and the compiled book after prices, aliases, discounts, service tiers or markups change.';

CREATE TRIGGER tg_prices__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.prices
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();

CREATE TRIGGER tg_model_aliases__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.model_aliases
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();

CREATE TRIGGER tg_tenant_discounts__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.tenant_discounts
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();

CREATE TRIGGER tg_service_tiers__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.service_tiers
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();

-- Markups change no price, but the compiled book says whether any exist
-- (ai_cost_internal.bills_calls), which the billing trigger asks.
CREATE TRIGGER tg_markups__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.markups
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();


-- The model id a call's model is priced as through ai_cost.model_patterns,
-- or NULL: the first pattern (by priority) whose rewrite has prices.
-- PL/pgSQL, not SQL: Citus cannot plan a parameterized query of a SQL
-- function it does not inline that reads a reference table, and the cost
-- trigger calls this on every node of a distributed ledger.
CREATE FUNCTION ai_cost_internal.pattern_model(provider text, model text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN (
    SELECT r.candidate
      FROM ai_cost.model_patterns p
     CROSS JOIN LATERAL (SELECT regexp_replace($2, p.pattern, p.replacement) AS candidate) r
     WHERE p.provider = $1 AND $2 ~ p.pattern
       AND EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = $1 AND l.model = r.candidate)
     ORDER BY p.priority, p.id
     LIMIT 1);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.pattern_model(text, text) IS 'Internal: the model id a call''s model id is priced as through ai_cost.model_patterns, or NULL.';

-- Why no price applies to a call: the most specific of unknown provider,
-- unknown service tier, no price for the model, none for its service tier,
-- none in force at that time.
-- The reason names no instant (the call's created_at says when), so the calls
-- of one model share it, and so one row of each rollup, not one per call.
CREATE FUNCTION ai_cost_internal.no_price_reason(provider text, model text, service_tier text, at timestamptz)
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

-- Recomputes the lookup from prices, aliases, discounts and service tiers,
-- then compiles the price book from it, in the same transaction as the
-- change.
CREATE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
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
           p.unit, p.unit_price, p.unit_prices, p.daily_from, p.daily_to, p.time_zone
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
         image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, NULL::numeric, unit_prices,
         daily_from, daily_to, time_zone
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
         p.image_input_per_mtok, p.image_output_per_mtok, p.video_input_per_mtok, NULL::numeric, p.unit_prices,
         p.daily_from, p.daily_to, p.time_zone
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
         (SELECT jsonb_object_agg(e.key, trim_scale(e.value::numeric * t.multiplier)) FROM jsonb_each(s.unit_prices) AS e),
         s.daily_from, s.daily_to, s.time_zone
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

