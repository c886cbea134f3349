-- Up Migration
--
-- pg-ai-cost foundation: the ai_cost schema, the price table with effective
-- dating, the calls ledger and the trigger that prices every call on insert.
--
-- Every object is schema-qualified and every function pins its search_path,
-- so nothing here depends on the installing session's settings.

CREATE SCHEMA IF NOT EXISTS ai_cost;
COMMENT ON SCHEMA ai_cost IS 'pg-ai-cost: a ledger of AI/LLM API calls priced in integer micro-dollars (1 = $0.000001).';

-- btree_gist lets one exclusion constraint say "no two prices for the same
-- model overlap in time". It is a trusted extension (PostgreSQL 13+), so the
-- database owner can create it without superuser, as on RDS, Cloud SQL,
-- Supabase and Neon. It is left in place on uninstall: other schemas may use it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

------------------------------------------------------------------------------
-- Prices
------------------------------------------------------------------------------

CREATE TABLE ai_cost.prices (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider text NOT NULL,
  model text NOT NULL,
  valid_from timestamptz NOT NULL DEFAULT now(),
  valid_to timestamptz,
  input_per_mtok numeric,
  output_per_mtok numeric,
  cache_read_per_mtok numeric,
  cache_write_per_mtok numeric,
  source text,
  checked_on date,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "price provider and model must not be empty"
    CHECK (provider <> '' AND model <> ''),
  CONSTRAINT "prices must not be negative"
    CHECK (input_per_mtok >= 0 AND output_per_mtok >= 0
       AND cache_read_per_mtok >= 0 AND cache_write_per_mtok >= 0),
  -- numeric accepts NaN and Infinity, and NaN >= 0 is true in PostgreSQL:
  -- an upper bound is what keeps them out (NaN sorts above every number).
  CONSTRAINT "prices must be finite and below 1000000 USD per 1M tokens"
    CHECK (input_per_mtok < 1000000 AND output_per_mtok < 1000000
       AND cache_read_per_mtok < 1000000 AND cache_write_per_mtok < 1000000),
  CONSTRAINT "price valid_to must be after valid_from"
    CHECK (valid_to > valid_from),
  CONSTRAINT "prices for one model must not overlap in time"
    EXCLUDE USING gist (provider WITH =, model WITH =, tstzrange(valid_from, valid_to) WITH &&)
);

COMMENT ON TABLE ai_cost.prices IS 'Effective-dated prices in USD per 1M tokens (= micro-dollars per token). Insert a row to change a price from valid_from on: the previous row for that model is ended at that instant. A NULL price means that token kind is not priced; calls that use it stay unpriced (cost NULL).';
COMMENT ON COLUMN ai_cost.prices.id IS 'Price row id; ai_cost.calls.price_id names the row that priced a call.';
COMMENT ON COLUMN ai_cost.prices.provider IS 'Canonical provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.prices.model IS 'Model id exactly as the provider reports it, e.g. gpt-4o-mini.';
COMMENT ON COLUMN ai_cost.prices.valid_from IS 'First instant this price applies (inclusive), compared with ai_cost.calls.created_at.';
COMMENT ON COLUMN ai_cost.prices.valid_to IS 'Instant this price stops applying (exclusive); NULL while in force. Set automatically when a later price is inserted.';
COMMENT ON COLUMN ai_cost.prices.input_per_mtok IS 'USD per 1M uncached input tokens.';
COMMENT ON COLUMN ai_cost.prices.output_per_mtok IS 'USD per 1M output tokens (reasoning tokens included).';
COMMENT ON COLUMN ai_cost.prices.cache_read_per_mtok IS 'USD per 1M input tokens read from the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.prices.cache_write_per_mtok IS 'USD per 1M input tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.prices.source IS 'Where the price was read (a URL or a price list name).';
COMMENT ON COLUMN ai_cost.prices.checked_on IS 'Date the price was last checked against its source.';
COMMENT ON COLUMN ai_cost.prices.created_at IS 'When this row was inserted.';

CREATE INDEX prices_lookup_idx ON ai_cost.prices (provider, model, valid_from DESC);

-- Inserting a price closes the row in force at its valid_from and, when the
-- new row is back-dated in front of a later one, ends the new row where that
-- later one starts. So a plain INSERT is all a user needs to change a price,
-- and the exclusion constraint still catches anything that would overlap.
CREATE FUNCTION ai_cost._private_close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.prices
     SET valid_to = NEW.valid_from
   WHERE provider = NEW.provider AND model = NEW.model
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);

  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.prices
     WHERE provider = NEW.provider AND model = NEW.model
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost._private_close_previous_price() IS 'Trigger: ends the price in force when a newer price for the same model is inserted.';

CREATE TRIGGER tg_prices__close_previous_price
  BEFORE INSERT ON ai_cost.prices
  FOR EACH ROW EXECUTE FUNCTION ai_cost._private_close_previous_price();

-- Price rows are history: calls point at the row that priced them. A wrong
-- price is corrected by inserting a new row (and repricing), never by deleting.
CREATE FUNCTION ai_cost._private_forbid_price_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'ai_cost.prices rows are history and cannot be deleted (price id %)', OLD.id
    USING HINT = 'Insert a corrected price with its valid_from instead; calls keep the price row that priced them.';
END
$$;
COMMENT ON FUNCTION ai_cost._private_forbid_price_delete() IS 'Trigger: refuses to delete price rows, which priced calls refer to.';

CREATE TRIGGER tg_prices__forbid_delete
  BEFORE DELETE ON ai_cost.prices
  FOR EACH ROW EXECUTE FUNCTION ai_cost._private_forbid_price_delete();

------------------------------------------------------------------------------
-- Calls
------------------------------------------------------------------------------

CREATE TABLE ai_cost.calls (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  provider text NOT NULL,
  model text NOT NULL,
  operation text NOT NULL DEFAULT 'chat',
  status text NOT NULL DEFAULT 'success',
  service_tier text NOT NULL DEFAULT 'standard',
  tenant_id text,
  user_id text,
  feature text,
  conversation_id text,
  prompt_id text,
  prompt_version text,
  metadata jsonb NOT NULL DEFAULT '{}',
  request_id text UNIQUE,
  input_tokens bigint,
  output_tokens bigint,
  cache_read_tokens bigint,
  cache_write_tokens bigint,
  reasoning_tokens bigint,
  cache_write_1h_tokens bigint,
  audio_input_tokens bigint,
  audio_output_tokens bigint,
  units numeric,
  unit text,
  streamed boolean NOT NULL DEFAULT false,
  cached boolean NOT NULL DEFAULT false,
  ttft_ms integer,
  total_ms integer,
  error_message text,
  provided_cost_micros bigint,
  cost_micros bigint,
  price_id bigint,
  unpriced_reason text,
  -- CHECK violations show the constraint name to every client, so each name
  -- is the message: it says what is wrong in the user's terms.
  CONSTRAINT "provider and model must not be empty"
    CHECK (provider <> '' AND model <> ''),
  CONSTRAINT "created_at must be a finite time"
    CHECK (isfinite(created_at)),
  -- Bounds on text keep one bad client from filling the table; they match
  -- the TypeScript schema, which truncates nothing either.
  CONSTRAINT "provider must be at most 200 characters, model at most 500"
    CHECK (length(provider) <= 200 AND length(model) <= 500),
  CONSTRAINT "labels and request_id must be at most 1000 characters"
    CHECK (length(tenant_id) <= 1000 AND length(user_id) <= 1000 AND length(feature) <= 1000
       AND length(conversation_id) <= 1000 AND length(prompt_id) <= 1000
       AND length(prompt_version) <= 1000 AND length(request_id) <= 1000 AND length(unit) <= 100),
  CONSTRAINT "error_message must be at most 10000 characters"
    CHECK (length(error_message) <= 10000),
  CONSTRAINT "metadata must be at most 64 kB"
    CHECK (pg_column_size(metadata) <= 65536),
  CONSTRAINT "status must be success, error or cancelled"
    CHECK (status IN ('success', 'error', 'cancelled')),
  CONSTRAINT "operation must be a known ai_cost operation"
    CHECK (operation IN ('chat', 'completion', 'embedding', 'image', 'audio_transcription',
                         'audio_speech', 'moderation', 'rerank', 'video', 'web_search', 'other')),
  CONSTRAINT "service_tier must be standard, batch, flex or priority"
    CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority')),
  CONSTRAINT "token counts must be at most 1e12 (one trillion)"
    CHECK (input_tokens <= 1e12 AND output_tokens <= 1e12 AND cache_read_tokens <= 1e12
       AND cache_write_tokens <= 1e12 AND reasoning_tokens <= 1e12 AND cache_write_1h_tokens <= 1e12
       AND audio_input_tokens <= 1e12 AND audio_output_tokens <= 1e12),
  CONSTRAINT "token counts must not be negative"
    CHECK (input_tokens >= 0 AND output_tokens >= 0 AND cache_read_tokens >= 0
       AND cache_write_tokens >= 0 AND reasoning_tokens >= 0 AND cache_write_1h_tokens >= 0
       AND audio_input_tokens >= 0 AND audio_output_tokens >= 0),
  -- The parts-of-a-whole rules below hold vacuously when the part is absent
  -- or 0, so that a negative whole is reported by the rule about negatives.
  CONSTRAINT "input_tokens must include cache_read and cache_write tokens"
    CHECK (coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) <= 0
        OR coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) <= coalesce(input_tokens, 0)),
  CONSTRAINT "output_tokens must include reasoning_tokens"
    CHECK (coalesce(reasoning_tokens, 0) <= 0 OR reasoning_tokens <= coalesce(output_tokens, 0)),
  CONSTRAINT "cache_write_tokens must include cache_write_1h_tokens"
    CHECK (coalesce(cache_write_1h_tokens, 0) <= 0 OR cache_write_1h_tokens <= coalesce(cache_write_tokens, 0)),
  CONSTRAINT "input_tokens must include audio_input_tokens"
    CHECK (coalesce(audio_input_tokens, 0) <= 0 OR audio_input_tokens <= coalesce(input_tokens, 0)),
  CONSTRAINT "output_tokens must include audio_output_tokens"
    CHECK (coalesce(audio_output_tokens, 0) <= 0 OR audio_output_tokens <= coalesce(output_tokens, 0)),
  CONSTRAINT "units must not be negative and need a unit"
    CHECK (units IS NULL OR (units >= 0 AND unit IS NOT NULL)),
  CONSTRAINT "units must be finite and at most 1e12"
    CHECK (units <= 1e12),
  CONSTRAINT "provided_cost_micros must not be negative"
    CHECK (provided_cost_micros >= 0),
  CONSTRAINT "ttft_ms and total_ms must not be negative"
    CHECK (ttft_ms >= 0 AND total_ms >= 0),
  CONSTRAINT "metadata must be a JSON object"
    CHECK (jsonb_typeof(metadata) = 'object')
);

COMMENT ON TABLE ai_cost.calls IS 'One row per AI/LLM API call attempt (success, error or cancelled). Insert from any client; cost_micros is computed on insert from ai_cost.prices.';
COMMENT ON COLUMN ai_cost.calls.id IS 'Row id.';
COMMENT ON COLUMN ai_cost.calls.created_at IS 'Time of the call. The price in force at this instant applies.';
COMMENT ON COLUMN ai_cost.calls.provider IS 'Canonical provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.calls.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.calls.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, audio_speech, moderation, rerank, video, web_search or other.';
COMMENT ON COLUMN ai_cost.calls.status IS 'Outcome: success, error or cancelled. Failed calls that consumed tokens still cost money.';
COMMENT ON COLUMN ai_cost.calls.service_tier IS 'Provider service tier the call ran on: standard, batch, flex or priority (each has its own price).';
COMMENT ON COLUMN ai_cost.calls.tenant_id IS 'Your customer or workspace the call was made for.';
COMMENT ON COLUMN ai_cost.calls.user_id IS 'Your end user the call was made for.';
COMMENT ON COLUMN ai_cost.calls.feature IS 'Product feature that made the call, e.g. summarize or support-bot.';
COMMENT ON COLUMN ai_cost.calls.conversation_id IS 'Conversation or session the call belongs to.';
COMMENT ON COLUMN ai_cost.calls.prompt_id IS 'Prompt template id.';
COMMENT ON COLUMN ai_cost.calls.prompt_version IS 'Prompt template version.';
COMMENT ON COLUMN ai_cost.calls.metadata IS 'Any further attributes, as a JSON object.';
COMMENT ON COLUMN ai_cost.calls.request_id IS 'Idempotency key (e.g. the provider''s response id). Unique when set, so a retried insert cannot count twice: use INSERT ... ON CONFLICT (request_id) DO NOTHING.';
COMMENT ON COLUMN ai_cost.calls.input_tokens IS 'All prompt tokens, INCLUDING cache reads and cache writes (OpenTelemetry GenAI semantics). NULL = not applicable.';
COMMENT ON COLUMN ai_cost.calls.output_tokens IS 'All generated tokens, INCLUDING reasoning tokens. NULL = not applicable.';
COMMENT ON COLUMN ai_cost.calls.cache_read_tokens IS 'Part of input_tokens read from the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.calls.cache_write_tokens IS 'Part of input_tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.calls.reasoning_tokens IS 'Part of output_tokens spent on reasoning (billed as output).';
COMMENT ON COLUMN ai_cost.calls.cache_write_1h_tokens IS 'Part of cache_write_tokens written with a 1-hour lifetime (Anthropic bills these at a higher rate than 5-minute writes).';
COMMENT ON COLUMN ai_cost.calls.audio_input_tokens IS 'Part of input_tokens that was audio.';
COMMENT ON COLUMN ai_cost.calls.audio_output_tokens IS 'Part of output_tokens that was audio.';
COMMENT ON COLUMN ai_cost.calls.units IS 'Quantity billed per unit rather than per token (images, seconds of audio or video, requests, search queries); see unit.';
COMMENT ON COLUMN ai_cost.calls.unit IS 'What units counts: image, second, request, query, ...';
COMMENT ON COLUMN ai_cost.calls.streamed IS 'True when the response was streamed.';
COMMENT ON COLUMN ai_cost.calls.cached IS 'True when your application served the answer from its own cache: no provider call, cost 0.';
COMMENT ON COLUMN ai_cost.calls.ttft_ms IS 'Time to first token in milliseconds (streamed calls only).';
COMMENT ON COLUMN ai_cost.calls.total_ms IS 'Total latency in milliseconds.';
COMMENT ON COLUMN ai_cost.calls.error_message IS 'Error text for failed calls.';
COMMENT ON COLUMN ai_cost.calls.provided_cost_micros IS 'Cost the provider itself reported (e.g. OpenRouter), in micro-dollars. When set, cost_micros takes it as is instead of pricing the tokens.';
COMMENT ON COLUMN ai_cost.calls.cost_micros IS 'Cost in integer micro-dollars (1 = $0.000001), set on insert. NULL = unpriced (no price in force, or a used token kind has no price); 0 = free.';
COMMENT ON COLUMN ai_cost.calls.price_id IS 'The ai_cost.prices row that priced this call; NULL when unpriced or served from the app cache.';
COMMENT ON COLUMN ai_cost.calls.unpriced_reason IS 'Why cost_micros is NULL (e.g. no price for the model, no price for a token kind that was used); NULL when priced.';

CREATE INDEX calls_created_at_idx ON ai_cost.calls (created_at);

------------------------------------------------------------------------------
-- Cost
------------------------------------------------------------------------------

-- The one place the cost formula lives. Token counts follow the OpenTelemetry
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

-- The price row in force for a model at an instant, or NULL.
CREATE FUNCTION ai_cost.price_at(provider text, model text, at timestamptz) RETURNS ai_cost.prices
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.*
    FROM ai_cost.prices p
   WHERE p.provider = price_at.provider
     AND p.model = price_at.model
     AND p.valid_from <= price_at.at
     AND (p.valid_to IS NULL OR p.valid_to > price_at.at)
   ORDER BY p.valid_from DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost.price_at(text, text, timestamptz) IS 'The ai_cost.prices row in force for provider/model at an instant, or NULL.';

-- Prices every inserted call, and re-prices it when a column the cost depends
-- on changes. Whatever a client put in cost_micros or price_id is overwritten:
-- the cost is the database's to compute.
CREATE FUNCTION ai_cost._private_price_call() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price ai_cost.prices;
BEGIN
  IF NEW.cached THEN
    NEW.cost_micros := 0;
    NEW.price_id := NULL;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  NEW.price_id := NULL;
  NEW.unpriced_reason := NULL;
  -- A provider that bills and reports its own cost is the authority on it.
  NEW.cost_micros := NEW.provided_cost_micros;
  IF NEW.cost_micros IS NOT NULL THEN
    RETURN NEW;
  END IF;
  price := ai_cost.price_at(NEW.provider, NEW.model, NEW.created_at);
  IF price.id IS NULL THEN
    NEW.unpriced_reason := 'no price for model ' || NEW.provider || '/' || NEW.model || ' at created_at';
  -- Prices here have one rate per token kind for the standard tier; the
  -- other tiers, audio, 1-hour cache writes and per-unit charges stay
  -- unpriced rather than be billed at a rate that is not theirs.
  ELSIF NEW.service_tier <> 'standard' THEN
    NEW.unpriced_reason := 'no price for service tier ' || NEW.service_tier;
  ELSIF coalesce(NEW.audio_input_tokens, 0) + coalesce(NEW.audio_output_tokens, 0) > 0 THEN
    NEW.unpriced_reason := 'no price for audio tokens';
  ELSIF coalesce(NEW.cache_write_1h_tokens, 0) > 0 THEN
    NEW.unpriced_reason := 'no price for 1-hour cache writes';
  ELSIF coalesce(NEW.units, 0) > 0 THEN
    NEW.unpriced_reason := 'no price per ' || NEW.unit;
  ELSE
    NEW.cost_micros := ai_cost.cost_micros(price, NEW.input_tokens, NEW.output_tokens,
                                           NEW.cache_read_tokens, NEW.cache_write_tokens);
    IF NEW.cost_micros IS NULL THEN
      NEW.unpriced_reason := 'no price for a token kind this call used';
    ELSE
      NEW.price_id := price.id;
    END IF;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost._private_price_call() IS 'Trigger: sets cost_micros, price_id and unpriced_reason of a call from the price in force at its created_at.';

CREATE TRIGGER tg_calls__price_call
  BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, cached, provided_cost_micros, cost_micros, price_id,
    unpriced_reason, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit
  ON ai_cost.calls
  FOR EACH ROW EXECUTE FUNCTION ai_cost._private_price_call();

------------------------------------------------------------------------------
-- Starter catalog
------------------------------------------------------------------------------

-- List prices of current flagship models, USD per 1M tokens, in force from the
-- date each price took effect. Looked up on the providers' published price
-- lists (cross-checked against the community LiteLLM list of 2026-07-24).
INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok,
                            cache_read_per_mtok, cache_write_per_mtok, source, checked_on)
VALUES
  ('openai', 'gpt-4o',                 '2024-10-02', 2.50, 10.00, 1.25,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-4o-mini',            '2024-07-18', 0.15,  0.60, 0.075, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-4.1',                '2025-04-14', 2.00,  8.00, 0.50,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-4.1-mini',           '2025-04-14', 0.40,  1.60, 0.10,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-4.1-nano',           '2025-04-14', 0.10,  0.40, 0.025, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'o3',                     '2025-06-10', 2.00,  8.00, 0.50,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'o4-mini',                '2025-04-16', 1.10,  4.40, 0.275, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-5',                  '2025-08-07', 1.25, 10.00, 0.125, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-5-mini',             '2025-08-07', 0.25,  2.00, 0.025, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-5-nano',             '2025-08-07', 0.05,  0.40, 0.005, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-5.4-mini',           '2026-03-17', 0.75,  4.50, 0.075, NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'gpt-5.4-nano',           '2026-03-17', 0.20,  1.25, 0.02,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'text-embedding-3-small', '2024-01-25', 0.02,  0,    NULL,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('openai', 'text-embedding-3-large', '2024-01-25', 0.13,  0,    NULL,  NULL, 'https://openai.com/api/pricing', '2026-07-24'),
  ('anthropic', 'claude-opus-4-7',            '2026-04-16', 5.00, 25.00, 0.50, 6.25,  'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-opus-4-7-20260416',   '2026-04-16', 5.00, 25.00, 0.50, 6.25,  'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-sonnet-4-6',          '2026-02-17', 3.00, 15.00, 0.30, 3.75,  'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-haiku-4-5',           '2025-10-15', 1.00,  5.00, 0.10, 1.25,  'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-haiku-4-5-20251001',  '2025-10-15', 1.00,  5.00, 0.10, 1.25,  'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-opus-4-1',            '2025-08-05', 15.00, 75.00, 1.50, 18.75, 'https://www.anthropic.com/pricing', '2026-07-24'),
  ('anthropic', 'claude-opus-4-1-20250805',   '2025-08-05', 15.00, 75.00, 1.50, 18.75, 'https://www.anthropic.com/pricing', '2026-07-24'),
  ('google', 'gemini-2.5-flash',       '2025-06-17', 0.30,  2.50, 0.03,  NULL, 'https://ai.google.dev/gemini-api/docs/pricing', '2026-07-24'),
  ('google', 'gemini-2.5-flash-lite',  '2025-07-22', 0.10,  0.40, 0.01,  NULL, 'https://ai.google.dev/gemini-api/docs/pricing', '2026-07-24'),
  ('google', 'gemini-3-flash-preview', '2025-12-17', 0.50,  3.00, 0.05,  NULL, 'https://ai.google.dev/gemini-api/docs/pricing', '2026-07-24');

-- Down Migration

DROP TABLE IF EXISTS ai_cost.calls;
DROP FUNCTION IF EXISTS ai_cost._private_price_call();
DROP FUNCTION IF EXISTS ai_cost.price_at(text, text, timestamptz);
DROP FUNCTION IF EXISTS ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint);
DROP TABLE IF EXISTS ai_cost.prices;
DROP FUNCTION IF EXISTS ai_cost._private_forbid_price_delete();
DROP FUNCTION IF EXISTS ai_cost._private_close_previous_price();
