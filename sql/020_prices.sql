-- Prices and effective dating: the providers, the price rows of every billing
-- dimension, and the negotiated discounts of tenants and of the whole
-- organisation.
--
-- A price is a row with a validity window [valid_from, valid_to). Inserting a
-- row changes the price from its valid_from on: a trigger ends the row in
-- force for the same key at that instant, so the windows of one key never
-- overlap (an exclusion constraint holds that even against concurrent
-- writers) and every call, past or future, has at most one price. Rows are
-- never deleted: calls point at the row that priced them, and a wrong price
-- is corrected by a new row and a reprice (070_repricing.sql).
--
-- The key of a price is provider, model, service tier, long-context threshold
-- and tenant: a tenant's own price, a batch-tier price or a price above 200k
-- input tokens is a row of its own, with its own history.
--
-- A row comes from the built-in catalog (catalog is set), from a price list
-- (from_price_list: `ai-cost prices sync` or `prices import` wrote it) or
-- from you (neither). A sync replaces only price-list rows: a list's value
-- never silently overrides a curated price or one of your own.
--
-- Rates are numeric USD per 1M tokens (= micro-dollars per token), as the
-- providers publish them; the cost trigger turns them into exact integer
-- micro-dollars (060_cost.sql). The cost path never reads these tables directly:
-- it reads the price lookup and the compiled price book that 030_price_lookup.sql
-- and 050_price_book.sql derive from them on every change.

CREATE TABLE ai_cost.providers (
  id text PRIMARY KEY,
  name text NOT NULL,
  strict boolean NOT NULL DEFAULT false,
  reports_own_cost boolean NOT NULL DEFAULT false,
  CONSTRAINT "provider id must be lowercase letters, digits, _ or -"
    CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$')
);
COMMENT ON TABLE ai_cost.providers IS 'Canonical provider ids (use them in ai_cost.calls.provider and ai_cost.prices.provider). A call whose provider is neither here nor in ai_cost.prices is unpriced as an unknown provider.';
COMMENT ON COLUMN ai_cost.providers.id IS 'Canonical provider id, e.g. openai, anthropic, google, amazon (Bedrock), azure (Azure OpenAI).';
COMMENT ON COLUMN ai_cost.providers.name IS 'Human-readable name of the provider or platform.';
COMMENT ON COLUMN ai_cost.providers.strict IS 'When true, inserting a call of this provider that cannot be priced raises an error instead of storing it unpriced.';
COMMENT ON COLUMN ai_cost.providers.reports_own_cost IS 'When true, the provider bills each call at a cost it reports in its response (OpenRouter''s usage.cost): a call''s provided_cost_micros becomes its cost_micros, with the list cost kept in computed_cost_micros. When false (the default), a provided cost is kept as data and cost_micros is the list cost. Only admins may set it.';

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
-- valid_from, and ends the new row where a later one starts, as for prices,
-- in the table it fires on (see ai_cost_internal.close_previous_price).
CREATE FUNCTION ai_cost_internal.close_previous_service_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  own_table CONSTANT text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  EXECUTE format($sql$
    UPDATE %s
       SET valid_to = $1.valid_from
     WHERE name = $1.name AND provider IS NOT DISTINCT FROM $1.provider AND model IS NOT DISTINCT FROM $1.model
       AND valid_from < $1.valid_from
       AND (valid_to IS NULL OR valid_to > $1.valid_from)$sql$, own_table) USING NEW;
  IF NEW.valid_to IS NULL THEN
    EXECUTE format($sql$
      SELECT min(valid_from)
        FROM %s
       WHERE name = $1.name AND provider IS NOT DISTINCT FROM $1.provider AND model IS NOT DISTINCT FROM $1.model
         AND valid_from > $1.valid_from$sql$, own_table) INTO NEW.valid_to USING NEW;
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

CREATE TABLE ai_cost.prices (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider text NOT NULL,
  model text NOT NULL,
  service_tier text NOT NULL DEFAULT 'standard',
  above_input_tokens bigint NOT NULL DEFAULT 0,
  tenant_id text,
  valid_from timestamptz NOT NULL DEFAULT now(),
  valid_to timestamptz,
  input_per_mtok numeric,
  output_per_mtok numeric,
  cache_read_per_mtok numeric,
  cache_write_per_mtok numeric,
  cache_write_1h_per_mtok numeric,
  audio_input_per_mtok numeric,
  audio_output_per_mtok numeric,
  unit text,
  unit_price numeric,
  source text,
  checked_on date,
  catalog text,
  created_at timestamptz NOT NULL DEFAULT now(),
  from_price_list boolean NOT NULL DEFAULT false,
  reasoning_per_mtok numeric,
  cache_read_audio_per_mtok numeric,
  image_input_per_mtok numeric,
  image_output_per_mtok numeric,
  video_input_per_mtok numeric,
  unit_prices jsonb,
  rates_from jsonb,
  daily_from time,
  daily_to time,
  time_zone text,
  CONSTRAINT "price provider and model must not be empty"
    CHECK (provider <> '' AND model <> ''),
  CONSTRAINT "price above_input_tokens must not be negative"
    CHECK (above_input_tokens >= 0),
  CONSTRAINT "price tenant_id must not be empty"
    CHECK (tenant_id <> ''),
  CONSTRAINT "prices must not be negative"
    CHECK (input_per_mtok >= 0 AND output_per_mtok >= 0
       AND cache_read_per_mtok >= 0 AND cache_write_per_mtok >= 0 AND cache_write_1h_per_mtok >= 0
       AND audio_input_per_mtok >= 0 AND audio_output_per_mtok >= 0
       AND reasoning_per_mtok >= 0 AND cache_read_audio_per_mtok >= 0
       AND image_input_per_mtok >= 0 AND image_output_per_mtok >= 0 AND video_input_per_mtok >= 0 AND unit_price >= 0),
  -- numeric accepts NaN and Infinity, and NaN >= 0 is true in PostgreSQL:
  -- an upper bound is what keeps them out (NaN sorts above every number).
  CONSTRAINT "prices must be finite and below 1000000 USD per 1M tokens"
    CHECK (input_per_mtok < 1000000 AND output_per_mtok < 1000000
       AND cache_read_per_mtok < 1000000 AND cache_write_per_mtok < 1000000 AND cache_write_1h_per_mtok < 1000000
       AND audio_input_per_mtok < 1000000 AND audio_output_per_mtok < 1000000
       AND reasoning_per_mtok < 1000000 AND cache_read_audio_per_mtok < 1000000
       AND image_input_per_mtok < 1000000 AND image_output_per_mtok < 1000000 AND video_input_per_mtok < 1000000
       AND unit_price < 1000000),
  CONSTRAINT "unit_price needs a unit"
    CHECK ((unit IS NULL) = (unit_price IS NULL) AND unit <> ''),
  -- JSON numbers are exact numerics, and JSON has no NaN or Infinity.
  CONSTRAINT "unit_prices must map units to USD per unit below 1000000"
    CHECK (jsonb_typeof(unit_prices) = 'object'
       AND NOT jsonb_path_exists(unit_prices, '$.keyvalue() ? (@.value.type() != "number" || @.value < 0 || @.value >= 1000000 || @.key == "")')),
  CONSTRAINT "a unit is priced once: in unit or in unit_prices"
    CHECK (NOT unit_prices ? unit),
  CONSTRAINT "rates_from must be a JSON object" CHECK (jsonb_typeof(rates_from) = 'object'),
  CONSTRAINT "a daily window needs daily_from, daily_to and time_zone"
    CHECK ((daily_from IS NULL) = (daily_to IS NULL) AND (daily_from IS NULL) = (time_zone IS NULL)),
  CONSTRAINT "a daily window must not be empty: daily_from <> daily_to" CHECK (daily_from <> daily_to),
  CONSTRAINT "price valid_to must be after valid_from"
    CHECK (valid_to > valid_from),
  CONSTRAINT "a price is from the catalog or a price list, not both"
    CHECK (NOT (from_price_list AND catalog IS NOT NULL)),
  -- An all-day price and prices of certain hours of the day (off-peak
  -- hours) of the same key are in force together, each kind keyed by when
  -- its hours start; that the hours of one key never overlap is checked by
  -- tg_prices__refuse_overlapping_hours.
  CONSTRAINT "prices for one model, tier and tenant must not overlap in time"
    EXCLUDE USING gist (provider WITH =, model WITH =, service_tier WITH =, above_input_tokens WITH =,
                        (coalesce(tenant_id, '')) WITH =, (coalesce(daily_from::text, 'all day')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&)
);
CREATE INDEX prices_lookup_idx ON ai_cost.prices (provider, model, valid_from DESC);
COMMENT ON TABLE ai_cost.prices IS 'Effective-dated prices in USD per 1M tokens (= micro-dollars per token). Insert a row to change a price from valid_from on: the previous row for that model is ended at that instant. A NULL price means that token kind is not priced; calls that use it stay unpriced (cost NULL).';
COMMENT ON COLUMN ai_cost.prices.id IS 'Price row id; ai_cost.calls.price_id names the row that priced a call.';
COMMENT ON COLUMN ai_cost.prices.provider IS 'Canonical provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.prices.model IS 'Model id exactly as the provider reports it, e.g. gpt-4o-mini.';
COMMENT ON COLUMN ai_cost.prices.service_tier IS 'Service tier this price is for (standard, batch, flex, priority, or any tier in ai_cost.service_tiers for its provider). A call is priced only by a row of its own tier, or from the standard price for a tier priced as a multiple of it.';
COMMENT ON COLUMN ai_cost.prices.above_input_tokens IS 'Long-context tier: 0 for the base price; N for a price that applies to the WHOLE request when its input_tokens exceed N (e.g. 200000 for Gemini 2.5 Pro above 200k prompt tokens).';
COMMENT ON COLUMN ai_cost.prices.tenant_id IS 'NULL for a list price; a tenant id for that tenant''s own negotiated price, which wins over the list price for its calls.';
COMMENT ON COLUMN ai_cost.prices.valid_from IS 'First instant this price applies (inclusive), compared with ai_cost.calls.created_at.';
COMMENT ON COLUMN ai_cost.prices.valid_to IS 'Instant this price stops applying (exclusive); NULL while in force. Set automatically when a later price is inserted.';
COMMENT ON COLUMN ai_cost.prices.input_per_mtok IS 'USD per 1M uncached input tokens (image and video input included, unless image_input_per_mtok or video_input_per_mtok is set).';
COMMENT ON COLUMN ai_cost.prices.output_per_mtok IS 'USD per 1M output tokens (reasoning and image output included, unless reasoning_per_mtok or image_output_per_mtok is set).';
COMMENT ON COLUMN ai_cost.prices.cache_read_per_mtok IS 'USD per 1M input tokens read from the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.prices.cache_write_per_mtok IS 'USD per 1M input tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.prices.cache_write_1h_per_mtok IS 'USD per 1M input tokens written to the prompt cache with a 1-hour lifetime (Anthropic: 2x input).';
COMMENT ON COLUMN ai_cost.prices.audio_input_per_mtok IS 'USD per 1M audio input tokens not read from the prompt cache.';
COMMENT ON COLUMN ai_cost.prices.audio_output_per_mtok IS 'USD per 1M audio output tokens.';
COMMENT ON COLUMN ai_cost.prices.reasoning_per_mtok IS 'USD per 1M reasoning tokens, for a provider that bills them apart from the rest of the output (Perplexity sonar-deep-research). NULL: reasoning tokens are billed as output tokens, at output_per_mtok.';
COMMENT ON COLUMN ai_cost.prices.cache_read_audio_per_mtok IS 'USD per 1M audio input tokens read from the prompt cache (OpenAI Realtime, Gemini context caching). NULL: they are billed as other cache reads, at cache_read_per_mtok.';
COMMENT ON COLUMN ai_cost.prices.image_input_per_mtok IS 'USD per 1M image input tokens not read from the prompt cache, for a model that bills them apart from text (OpenAI gpt-image-1: $10 against $5 for text). NULL: they are billed as other input, at input_per_mtok.';
COMMENT ON COLUMN ai_cost.prices.image_output_per_mtok IS 'USD per 1M image output tokens, for a model that bills them apart from text output (OpenAI gpt-image-1, Gemini image generation). NULL: they are billed as other output, at output_per_mtok.';
COMMENT ON COLUMN ai_cost.prices.video_input_per_mtok IS 'USD per 1M video input tokens not read from the prompt cache, for a model that bills them apart from text. NULL: they are billed as other input, at input_per_mtok.';
COMMENT ON COLUMN ai_cost.prices.unit IS 'What unit_price is charged per: image, second, request, query, ... (compared with ai_cost.calls.unit).';
COMMENT ON COLUMN ai_cost.prices.unit_price IS 'USD per unit (not per million), for calls billed per image, second, request or query.';
COMMENT ON COLUMN ai_cost.prices.unit_prices IS 'Further per-unit prices beside unit and unit_price, as a JSON object of unit: USD per unit, e.g. {"web_search": 0.01} for $10 per 1,000 searches. Prices a call''s units (by its unit) and each of its extra_units; a billed unit with no price here or in unit makes the call unpriced.';
COMMENT ON COLUMN ai_cost.prices.rates_from IS 'Rates the provider bills as a multiple of another rate of the same price, declared rather than guessed, e.g. {"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 1}} for cache reads billed at the input rate, or times 1.25 for Anthropic''s 5-minute cache writes. Only for a rate the row leaves NULL, from one it sets. A NULL rate without a declaration leaves the calls that use it unpriced.';
COMMENT ON COLUMN ai_cost.prices.daily_from IS 'For a price of certain hours of the day (DeepSeek''s off-peak prices): the local time, in time_zone, from which it applies each day (inclusive). NULL: an all-day price. In its hours it wins over the all-day price of the same model, tier and tenant.';
COMMENT ON COLUMN ai_cost.prices.daily_to IS 'For a price of certain hours of the day: the local time, in time_zone, until which it applies each day (exclusive); before daily_from for hours that run past midnight (16:30 to 00:30).';
COMMENT ON COLUMN ai_cost.prices.time_zone IS 'For a price of certain hours of the day: the IANA time zone of daily_from and daily_to, as the provider states them (UTC for DeepSeek).';
COMMENT ON COLUMN ai_cost.prices.source IS 'Where the price was read (a URL or a price list name).';
COMMENT ON COLUMN ai_cost.prices.checked_on IS 'Date the price was last checked against its source.';
COMMENT ON COLUMN ai_cost.prices.catalog IS 'The pg-ai-cost release whose built-in catalog shipped this row, e.g. 0.1.0; NULL for rows you inserted or imported.';
COMMENT ON COLUMN ai_cost.prices.from_price_list IS 'True for a row written from a price list by `ai-cost prices sync` or `prices import` (source names the list): a later sync may replace it. False for the built-in catalog''s rows (catalog) and rows you inserted, which a sync keeps unless told --overwrite.';
COMMENT ON COLUMN ai_cost.prices.created_at IS 'When this row was inserted.';

-- Ends the row in force for the same key at the new row's valid_from, and
-- ends the new row where a later row of that key already starts, so a price
-- can be inserted into the past as well as the future. An all-day price
-- ends an all-day one, a price of certain hours one whose hours start at
-- the same time of day. It reads and updates the table it fires on
-- (TG_TABLE_NAME): ai_cost.prices here, and on a Citus cluster each node's
-- copy of it, which must change the same way on every node without writing
-- the others (145_distribution.sql).
CREATE FUNCTION ai_cost_internal.close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  own_table CONSTANT text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  EXECUTE format($sql$
    UPDATE %s
       SET valid_to = $1.valid_from
     WHERE provider = $1.provider AND model = $1.model
       AND service_tier = $1.service_tier AND above_input_tokens = $1.above_input_tokens
       AND tenant_id IS NOT DISTINCT FROM $1.tenant_id AND daily_from IS NOT DISTINCT FROM $1.daily_from
       AND valid_from < $1.valid_from
       AND (valid_to IS NULL OR valid_to > $1.valid_from)$sql$, own_table) USING NEW;

  IF NEW.valid_to IS NULL THEN
    EXECUTE format($sql$
      SELECT min(valid_from)
        FROM %s
       WHERE provider = $1.provider AND model = $1.model
         AND service_tier = $1.service_tier AND above_input_tokens = $1.above_input_tokens
         AND tenant_id IS NOT DISTINCT FROM $1.tenant_id AND daily_from IS NOT DISTINCT FROM $1.daily_from
         AND valid_from > $1.valid_from$sql$, own_table) INTO NEW.valid_to USING NEW;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.close_previous_price() IS 'Trigger: ends the price in force when a newer price for the same model is inserted.';

CREATE TRIGGER tg_prices__close_previous_price
  BEFORE INSERT ON ai_cost.prices
  FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.close_previous_price();

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

-- A daily window's time zone must be one PostgreSQL knows by name (an
-- abbreviation or offset would be read with POSIX rules, silently), and the
-- hours of one key must not overlap while both are in force: then each
-- instant has at most one price of its hour. Two windows on a clock overlap
-- exactly when one holds the other's start. Named to run after
-- tg_prices__close_previous_price, which ends the row the new one replaces.
CREATE FUNCTION ai_cost_internal.refuse_overlapping_hours() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  other record;
BEGIN
  IF NEW.daily_to IS NULL OR NEW.time_zone IS NULL OR NEW.daily_from = NEW.daily_to THEN
    RETURN NEW; -- the CHECK constraints that name these refuse the row
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names z WHERE z.name = NEW.time_zone) THEN
    RAISE EXCEPTION 'unknown time zone % for a daily price window: give an IANA name such as UTC or Asia/Shanghai', NEW.time_zone
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT o.id, o.daily_from, o.daily_to INTO other
    FROM ai_cost.prices o
   WHERE o.provider = NEW.provider AND o.model = NEW.model AND o.service_tier = NEW.service_tier
     AND o.above_input_tokens = NEW.above_input_tokens AND o.tenant_id IS NOT DISTINCT FROM NEW.tenant_id
     AND o.daily_from IS NOT NULL AND o.id <> NEW.id
     AND tstzrange(o.valid_from, o.valid_to) && tstzrange(NEW.valid_from, NEW.valid_to)
     AND (CASE WHEN o.daily_from < o.daily_to THEN NEW.daily_from >= o.daily_from AND NEW.daily_from < o.daily_to
               ELSE NEW.daily_from >= o.daily_from OR NEW.daily_from < o.daily_to END
          OR CASE WHEN NEW.daily_from < NEW.daily_to THEN o.daily_from >= NEW.daily_from AND o.daily_from < NEW.daily_to
                  ELSE o.daily_from >= NEW.daily_from OR o.daily_from < NEW.daily_to END)
   ORDER BY o.valid_from, o.daily_from
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'the hours % to % overlap those of price % (% to %) of %/% while both are in force',
      left(NEW.daily_from::text, 5), left(NEW.daily_to::text, 5), other.id, left(other.daily_from::text, 5),
      left(other.daily_to::text, 5), NEW.provider, NEW.model
      USING ERRCODE = 'exclusion_violation',
            HINT = 'End the other price (valid_to) before this one starts, or give hours that do not overlap.';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.refuse_overlapping_hours() IS 'Trigger: refuses a price of certain hours of the day whose time zone is not an IANA name, or whose hours overlap those of another price of its model, tier and tenant in force at the same time.';

CREATE TRIGGER tg_prices__refuse_overlapping_hours
  BEFORE INSERT OR UPDATE OF daily_from, daily_to, time_zone, valid_from, valid_to ON ai_cost.prices
  FOR EACH ROW WHEN (NEW.daily_from IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.refuse_overlapping_hours();

-- Whether an instant falls in a daily window [daily_from, daily_to) of
-- local time in a time zone; a window whose end is before its start runs
-- past midnight.
CREATE FUNCTION ai_cost_internal.in_daily_window(at timestamptz, daily_from time, daily_to time, time_zone text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN $2 < $3 THEN l.clock >= $2 AND l.clock < $3
              ELSE l.clock >= $2 OR l.clock < $3 END
    FROM (SELECT ($1 AT TIME ZONE $4)::time AS clock) l
$$;
COMMENT ON FUNCTION ai_cost_internal.in_daily_window(timestamptz, time, time, text) IS 'Internal: whether an instant falls in the daily window [daily_from, daily_to) of local time in time_zone (a window ending before it starts runs past midnight).';

-- Price rows are history: calls point at the row that priced them. A wrong
-- price is corrected by inserting a new row (and repricing), never by deleting.
CREATE FUNCTION ai_cost_internal.forbid_price_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'ai_cost.prices rows are history and cannot be deleted (price id %)', OLD.id
    USING HINT = 'Insert a corrected price with its valid_from instead; calls keep the price row that priced them.';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.forbid_price_delete() IS 'Trigger: refuses to delete price rows, which priced calls refer to.';

CREATE TRIGGER tg_prices__forbid_delete
  BEFORE DELETE ON ai_cost.prices
  FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.forbid_price_delete();

-- The standard-tier base all-day list price, for people asking "what does
-- this model cost?"; the cost trigger also weighs tiers, long context, hours
-- of the day, tenants and aliases (ai_cost.explain_cost shows how it priced
-- a call).
CREATE FUNCTION ai_cost.price_at(provider text, model text, at timestamptz) RETURNS ai_cost.prices
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.*
    FROM ai_cost.prices p
   WHERE p.provider = price_at.provider
     AND p.model = price_at.model
     AND p.service_tier = 'standard' AND p.above_input_tokens = 0 AND p.tenant_id IS NULL AND p.daily_from IS NULL
     AND p.valid_from <= price_at.at
     AND (p.valid_to IS NULL OR p.valid_to > price_at.at)
   ORDER BY p.valid_from DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost.price_at(text, text, timestamptz) IS 'The standard-tier base all-day list price (ai_cost.prices row) in force for provider/model at an instant, or NULL. The cost trigger also considers tiers, long context, hours of the day, tenants and aliases: see ai_cost.explain_cost.';

-- A discount is a percentage off list prices that you pay the provider,
-- effective-dated like a price. tenant_id NULL means every call, of every
-- tenant or none: an organisation's enterprise agreement or committed-use
-- discount. It mirrors ai_cost.prices, where tenant_id NULL is the price for
-- everyone, and keeps one id space, so ai_cost.calls.discount_id names the
-- discount applied without saying which kind it is.
--
-- One discount applies to a call, never two compounded: a tenant's terms are
-- the price negotiated for its traffic, and replace the organisation's for
-- it, as its own price replaces the list price. Compounding would apply the
-- organisation's percentage to a price that was negotiated in its place.
-- So a tenant's own price wins, then its narrowest discount, then the
-- organisation's narrowest discount, then the list price
-- (ai_cost_internal.price_lookup's rank, 030_price_lookup.sql).
CREATE TABLE ai_cost.tenant_discounts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text,
  provider text,
  model text,
  percent_off numeric NOT NULL,
  valid_from timestamptz NOT NULL DEFAULT '-infinity',
  valid_to timestamptz,
  note text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "percent_off must be between 0 and 100" CHECK (percent_off >= 0 AND percent_off <= 100),
  CONSTRAINT "a discount for a model needs its provider" CHECK (model IS NULL OR provider IS NOT NULL),
  CONSTRAINT "discount valid_to must be after valid_from" CHECK (valid_to > valid_from),
  CONSTRAINT "discount tenant_id must not be empty: NULL is every tenant" CHECK (tenant_id <> ''),
  CONSTRAINT "discounts for one tenant and scope must not overlap in time"
    EXCLUDE USING gist ((coalesce(tenant_id, '')) WITH =, (coalesce(provider, '')) WITH =, (coalesce(model, '')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&)
);
COMMENT ON TABLE ai_cost.tenant_discounts IS 'Negotiated percentage discounts on list prices, for one tenant or (tenant_id NULL) for the whole organisation: on all calls, one provider''s, or one model''s. One discount applies to a call, never two: a tenant''s own rows in ai_cost.prices win, then the tenant''s narrowest discount, then the organisation''s narrowest discount.';
COMMENT ON COLUMN ai_cost.tenant_discounts.provider IS 'NULL: every provider.';
COMMENT ON COLUMN ai_cost.tenant_discounts.model IS 'NULL: every model of the provider.';
COMMENT ON COLUMN ai_cost.tenant_discounts.percent_off IS 'Discount in percent, e.g. 15 for 15% off list.';
COMMENT ON COLUMN ai_cost.tenant_discounts.id IS 'Discount id; ai_cost.calls.discount_id names the row applied to a call.';
COMMENT ON COLUMN ai_cost.tenant_discounts.tenant_id IS 'The tenant whose calls get the discount; NULL for an organisation-wide discount (an enterprise agreement, committed-use credits) on every call, which a tenant''s own price or discount replaces for that tenant.';
COMMENT ON COLUMN ai_cost.tenant_discounts.valid_from IS 'First instant the discount applies (inclusive), compared with ai_cost.calls.created_at.';
COMMENT ON COLUMN ai_cost.tenant_discounts.valid_to IS 'Instant the discount stops applying (exclusive); NULL while in force.';
COMMENT ON COLUMN ai_cost.tenant_discounts.note IS 'Free text, e.g. the contract it comes from.';
COMMENT ON COLUMN ai_cost.tenant_discounts.created_at IS 'When this row was inserted.';

-- A markup is what you charge a tenant beyond what its calls cost you, for
-- teams that resell AI features: a percentage of the cost, a fee per
-- successful call, and a fee per token, in any combination. Each call's
-- charge (ai_cost.calls.billed_micros, 065_billing.sql) is computed from its
-- cost by these rules, exactly and rounded up once, and kept apart from the
-- cost everywhere. Markups are effective-dated like prices; tenant_id NULL
-- is every tenant (and calls without one), provider and model NULL every
-- provider and model. One markup applies to a call, never two compounded:
-- the tenant's narrowest (its model, then its provider, then all its
-- calls), else the narrowest for every tenant, as discounts are chosen. A
-- call no markup covers is not billed (billed_micros NULL, counted apart):
-- to bill some calls at cost, say so with a markup of 0.
CREATE TABLE ai_cost.markups (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text,
  provider text,
  model text,
  percent numeric NOT NULL DEFAULT 0,
  per_call numeric NOT NULL DEFAULT 0,
  per_mtok numeric NOT NULL DEFAULT 0,
  valid_from timestamptz NOT NULL DEFAULT '-infinity',
  valid_to timestamptz,
  note text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "markup percent must be from -100 to 10000" CHECK (percent BETWEEN -100 AND 10000),
  CONSTRAINT "markup per_call and per_mtok must be from 0 to 1000 USD" CHECK (per_call BETWEEN 0 AND 1000 AND per_mtok BETWEEN 0 AND 1000),
  CONSTRAINT "a markup for a model needs its provider" CHECK (model IS NULL OR provider IS NOT NULL),
  CONSTRAINT "markup valid_to must be after valid_from" CHECK (valid_to > valid_from),
  CONSTRAINT "markup tenant_id must not be empty: NULL is every tenant" CHECK (tenant_id <> ''),
  CONSTRAINT "markups for one tenant and scope must not overlap in time"
    EXCLUDE USING gist ((coalesce(tenant_id, '')) WITH =, (coalesce(provider, '')) WITH =, (coalesce(model, '')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&)
);
COMMENT ON TABLE ai_cost.markups IS 'What you charge your tenants beyond what their calls cost you: a percentage, a fee per successful call and a fee per token, for one tenant or (tenant_id NULL) every tenant, on all calls, one provider''s or one model''s, effective-dated. Sets ai_cost.calls.billed_micros; the narrowest markup of the tenant applies, else the narrowest for every tenant; a call none covers is not billed.';
COMMENT ON COLUMN ai_cost.markups.id IS 'Markup id; ai_cost.calls.markup_id names the row applied to a call.';
COMMENT ON COLUMN ai_cost.markups.tenant_id IS 'The tenant whose calls it applies to; NULL for every tenant (and calls without one), which a markup of the tenant''s own replaces.';
COMMENT ON COLUMN ai_cost.markups.provider IS 'NULL: every provider.';
COMMENT ON COLUMN ai_cost.markups.model IS 'NULL: every model of the provider. Matches the call''s model id or the model of the price that priced it (so a markup on gpt-4o covers a dated snapshot priced as gpt-4o).';
COMMENT ON COLUMN ai_cost.markups.percent IS 'Percentage added to the call''s cost_micros, e.g. 20 for cost plus 20%; 0 bills at cost; down to -100 for a charge below cost.';
COMMENT ON COLUMN ai_cost.markups.per_call IS 'Fee in USD added to each successful call (status success, app-cache hits included), e.g. 0.001.';
COMMENT ON COLUMN ai_cost.markups.per_mtok IS 'Fee in USD per million tokens (input_tokens + output_tokens) added to each call, e.g. 0.50.';
COMMENT ON COLUMN ai_cost.markups.valid_from IS 'First instant the markup applies (inclusive), compared with ai_cost.calls.created_at.';
COMMENT ON COLUMN ai_cost.markups.valid_to IS 'Instant the markup stops applying (exclusive); NULL while in force.';
COMMENT ON COLUMN ai_cost.markups.note IS 'Free text, e.g. the plan or contract it comes from.';
COMMENT ON COLUMN ai_cost.markups.created_at IS 'When this row was inserted.';
