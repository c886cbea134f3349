-- The ledger: one row per AI/LLM API call, priced on insert.
--
-- Applications insert rows from any language (INSERT, COPY, or
-- ai_cost.insert_calls for batches); the cost trigger (060_cost.sql) sets
-- cost_micros, price_id, discount_id and unpriced_reason. NULL always means
-- unknown, never zero: a token count that does not apply is NULL, and an
-- unpriced call has cost_micros NULL with the reason beside it. CHECK
-- constraints name what is wrong with a bad row, in words a client can show.
-- request_id makes inserts idempotent (ON CONFLICT DO NOTHING).
--
-- Every quantity the rollups add up has a per-call ceiling, so that no sum
-- they keep can overflow bigint (9.2e18):
--   cost_micros, provided_cost_micros  at most 1e10 micro-dollars ($10,000),
--                                      a hundred times the dearest real call
--   token counts                       at most 1e10 (ten billion), a thousand
--                                      times the largest context window
--   ttft_ms, total_ms                  at most 2^31 - 1 ms (24.8 days), by type
-- The widest rollup group is one UTC day of one dimension value, so a sum
-- overflows only after 9.2e8 calls at the ceiling in one day (10,700 a second
-- for 24 hours, $9.2 trillion): beyond any real ledger. A computed cost past
-- the ceiling (absurd token counts at a real price) refuses the insert like
-- any other bad value. Whatever gets past these anyway (the owner dropping a
-- constraint, a row older than it, a hostile flood of that size) is set
-- aside by ai_cost.refresh() instead of stopping it (090_rollups.sql).

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
  -- Which tiers exist is data (ai_cost.service_tiers): a call on a tier
  -- unknown to its provider is unpriced with that reason. The shape is
  -- checked here, since the price book keys a tier as one word.
  CONSTRAINT "service_tier must be 1-100 lowercase letters, digits, _ or -"
    CHECK (service_tier ~ '^[a-z0-9][a-z0-9_-]*$' AND length(service_tier) <= 100),
  CONSTRAINT "token counts must be at most 1e10 (ten billion)"
    CHECK (input_tokens <= 10000000000 AND output_tokens <= 10000000000 AND cache_read_tokens <= 10000000000
       AND cache_write_tokens <= 10000000000 AND reasoning_tokens <= 10000000000
       AND cache_write_1h_tokens <= 10000000000 AND audio_input_tokens <= 10000000000
       AND audio_output_tokens <= 10000000000),
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
  CONSTRAINT "provided_cost_micros must be at most 1e10 ($10,000 a call)"
    CHECK (provided_cost_micros <= 10000000000),
  -- A cost the trigger computed past the ceiling. Named so that it sorts
  -- after the token rule: PostgreSQL checks in name order and reports the
  -- first failure, and absurd tokens are the cause to name.
  CONSTRAINT "total cost_micros must be at most 1e10 ($10,000 a call)"
    CHECK (cost_micros <= 10000000000),
  CONSTRAINT "ttft_ms and total_ms must not be negative"
    CHECK (ttft_ms >= 0 AND total_ms >= 0),
  CONSTRAINT "metadata must be a JSON object"
    CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX calls_created_at_idx ON ai_cost.calls (created_at);

ALTER TABLE ai_cost.calls ADD COLUMN discount_id bigint;
ALTER TABLE ai_cost.calls ADD COLUMN computed_cost_micros bigint;
-- Cached audio is counted where the providers count it: in the cache reads
-- (OpenAI's cached_tokens, Gemini's cachedContentTokenCount) and in the
-- audio input (OpenAI's audio_tokens, Gemini's AUDIO prompt tokens).
ALTER TABLE ai_cost.calls ADD COLUMN cache_read_audio_tokens bigint;
ALTER TABLE ai_cost.calls
  ADD CONSTRAINT "cache_read_audio_tokens must not be negative" CHECK (cache_read_audio_tokens >= 0),
  ADD CONSTRAINT "cache_read_tokens must include cache_read_audio_tokens"
    CHECK (coalesce(cache_read_audio_tokens, 0) <= 0 OR cache_read_audio_tokens <= coalesce(cache_read_tokens, 0)),
  ADD CONSTRAINT "audio_input_tokens must include cache_read_audio_tokens"
    CHECK (coalesce(cache_read_audio_tokens, 0) <= 0 OR cache_read_audio_tokens <= coalesce(audio_input_tokens, 0));
-- Image and video input are counted without what was read from the prompt
-- cache: Gemini bills cached image and video tokens as other cache reads,
-- so they are in cache_read_tokens only, and every input token is in one
-- billed part.
ALTER TABLE ai_cost.calls ADD COLUMN image_input_tokens bigint;
ALTER TABLE ai_cost.calls ADD COLUMN image_output_tokens bigint;
ALTER TABLE ai_cost.calls ADD COLUMN video_input_tokens bigint;
ALTER TABLE ai_cost.calls
  ADD CONSTRAINT "image and video token counts must not be negative"
    CHECK (image_input_tokens >= 0 AND image_output_tokens >= 0 AND video_input_tokens >= 0),
  ADD CONSTRAINT "input_tokens must include image_input_tokens"
    CHECK (coalesce(image_input_tokens, 0) <= 0 OR image_input_tokens <= coalesce(input_tokens, 0)),
  ADD CONSTRAINT "input_tokens must include video_input_tokens"
    CHECK (coalesce(video_input_tokens, 0) <= 0 OR video_input_tokens <= coalesce(input_tokens, 0)),
  ADD CONSTRAINT "output_tokens must include image_output_tokens"
    CHECK (coalesce(image_output_tokens, 0) <= 0 OR image_output_tokens <= coalesce(output_tokens, 0));
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
-- What the call is billed to its tenant, by ai_cost.markups (065_billing.sql):
-- set beside the cost, never in its place.
ALTER TABLE ai_cost.calls ADD COLUMN billed_micros bigint;
ALTER TABLE ai_cost.calls ADD COLUMN markup_id bigint;
ALTER TABLE ai_cost.calls
  ADD CONSTRAINT "total billed_micros must be at most 1e10 ($10,000 a call)" CHECK (billed_micros <= 10000000000);
COMMENT ON TABLE ai_cost.calls IS 'One row per AI/LLM API call attempt (success, error or cancelled). Insert from any client; cost_micros is computed on insert from ai_cost.prices.';
COMMENT ON COLUMN ai_cost.calls.id IS 'Row id.';
COMMENT ON COLUMN ai_cost.calls.created_at IS 'Time of the call. The price in force at this instant applies.';
COMMENT ON COLUMN ai_cost.calls.provider IS 'Canonical provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.calls.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.calls.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, audio_speech, moderation, rerank, video, web_search or other.';
COMMENT ON COLUMN ai_cost.calls.status IS 'Outcome: success, error or cancelled. Failed calls that consumed tokens still cost money.';
COMMENT ON COLUMN ai_cost.calls.service_tier IS 'Provider service tier the call ran on: standard, batch, flex, priority or another tier ai_cost.service_tiers names for the provider (each has its own price, or a multiple of standard). A tier it does not name leaves the call unpriced.';
COMMENT ON COLUMN ai_cost.calls.tenant_id IS 'Your customer or workspace the call was made for. NULL or '''': none (the rollups and reports count '''' as none; a ledger distributed over Citus stores none as '''').';
COMMENT ON COLUMN ai_cost.calls.user_id IS 'Your end user the call was made for.';
COMMENT ON COLUMN ai_cost.calls.feature IS 'Product feature that made the call, e.g. summarize or support-bot.';
COMMENT ON COLUMN ai_cost.calls.conversation_id IS 'Conversation or session the call belongs to.';
COMMENT ON COLUMN ai_cost.calls.prompt_id IS 'Prompt template id.';
COMMENT ON COLUMN ai_cost.calls.prompt_version IS 'Prompt template version.';
COMMENT ON COLUMN ai_cost.calls.metadata IS 'Any further attributes, as a JSON object.';
COMMENT ON COLUMN ai_cost.calls.request_id IS 'Idempotency key (e.g. the provider''s response id). Unique when set, so a retried insert cannot count twice: use INSERT ... ON CONFLICT (request_id) DO NOTHING.';
COMMENT ON COLUMN ai_cost.calls.input_tokens IS 'All prompt tokens, INCLUDING cache reads, cache writes, audio, image and video (OpenTelemetry GenAI semantics). NULL = not applicable.';
COMMENT ON COLUMN ai_cost.calls.output_tokens IS 'All generated tokens, INCLUDING reasoning, audio and image tokens. NULL = not applicable.';
COMMENT ON COLUMN ai_cost.calls.cache_read_tokens IS 'Part of input_tokens read from the provider''s prompt cache, audio, image and video included (see cache_read_audio_tokens).';
COMMENT ON COLUMN ai_cost.calls.cache_write_tokens IS 'Part of input_tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.calls.reasoning_tokens IS 'Part of output_tokens spent on reasoning: billed as output, or at the price''s reasoning_per_mtok when it has one.';
COMMENT ON COLUMN ai_cost.calls.cache_write_1h_tokens IS 'Part of cache_write_tokens written with a 1-hour lifetime (Anthropic bills these at a higher rate than 5-minute writes).';
COMMENT ON COLUMN ai_cost.calls.audio_input_tokens IS 'Part of input_tokens that was audio, cached audio included (see cache_read_audio_tokens).';
COMMENT ON COLUMN ai_cost.calls.audio_output_tokens IS 'Part of output_tokens that was audio.';
COMMENT ON COLUMN ai_cost.calls.units IS 'Quantity billed per unit rather than per token (images, seconds of audio or video, requests, search queries); see unit.';
COMMENT ON COLUMN ai_cost.calls.unit IS 'What units counts: image, second, request, query, ...';
COMMENT ON COLUMN ai_cost.calls.extra_units IS 'Further units the call was billed for, beside units and unit, as a JSON object of unit: quantity, e.g. {"web_search": 3}. Each is priced at the price''s unit_price (where it is the price''s unit) or its unit_prices entry; one without a price leaves the call unpriced. NULL: none.';
COMMENT ON COLUMN ai_cost.calls.streamed IS 'True when the response was streamed.';
COMMENT ON COLUMN ai_cost.calls.cached IS 'True when your application served the answer from its own cache: no provider call, so cost_micros is 0; computed_cost_micros keeps what the call would have cost, and the rollups count these calls apart.';
COMMENT ON COLUMN ai_cost.calls.ttft_ms IS 'Time to first token in milliseconds (streamed calls only).';
COMMENT ON COLUMN ai_cost.calls.total_ms IS 'Total latency in milliseconds.';
COMMENT ON COLUMN ai_cost.calls.error_message IS 'Error text for failed calls.';
COMMENT ON COLUMN ai_cost.calls.provided_cost_micros IS 'Cost the provider itself reported (e.g. OpenRouter''s usage.cost), in micro-dollars, as the writer sent it. It becomes cost_micros only for a provider marked ai_cost.providers.reports_own_cost; otherwise it is kept for comparison and cost_micros is the list cost.';
COMMENT ON COLUMN ai_cost.calls.cost_micros IS 'Cost in integer micro-dollars (1 = $0.000001), set on insert. NULL = unpriced (no price in force, or a used token kind has no price); 0 = free. At most 1e10 ($10,000) a call.';
COMMENT ON COLUMN ai_cost.calls.price_id IS 'The ai_cost.prices row that gave computed_cost_micros; NULL when no price applies.';
COMMENT ON COLUMN ai_cost.calls.unpriced_reason IS 'Why cost_micros is NULL (e.g. no price for the model, no price for a token kind that was used); NULL when priced.';
COMMENT ON COLUMN ai_cost.calls.discount_id IS 'The ai_cost.tenant_discounts row applied to this call''s list price, if any.';
COMMENT ON COLUMN ai_cost.calls.cache_read_audio_tokens IS 'Audio input tokens read from the prompt cache: part of cache_read_tokens and part of audio_input_tokens (OpenAI Realtime: input_token_details.cached_tokens_details.audio_tokens; Gemini: the AUDIO entry of cacheTokensDetails). Billed at the price''s cache_read_audio_per_mtok, or as other cache reads when it has none.';
COMMENT ON COLUMN ai_cost.calls.image_input_tokens IS 'Part of input_tokens that was image, without what was read from the prompt cache: a cached image token is a cache read only. OpenAI Images API: input_tokens_details.image_tokens; Gemini: the IMAGE entry of promptTokensDetails less that of cacheTokensDetails. Billed at the price''s image_input_per_mtok, or as other input when it has none.';
COMMENT ON COLUMN ai_cost.calls.image_output_tokens IS 'Part of output_tokens that was image. OpenAI Images API: output_tokens (all image) or output_tokens_details.image_tokens; Gemini: the IMAGE entry of candidatesTokensDetails. Billed at the price''s image_output_per_mtok, or as other output when it has none.';
COMMENT ON COLUMN ai_cost.calls.video_input_tokens IS 'Part of input_tokens that was video, without what was read from the prompt cache: a cached video token is a cache read only. Gemini: the VIDEO entry of promptTokensDetails less that of cacheTokensDetails. Billed at the price''s video_input_per_mtok, or as other input when it has none.';
COMMENT ON COLUMN ai_cost.calls.billed_micros IS 'What you charge your tenant for the call, in integer micro-dollars, set on insert from cost_micros by the ai_cost.markups row in force (markup_id): cost_micros x (1 + percent/100) + per_call (successful calls) + tokens x per_mtok, rounded up once. NULL = not billed: no markup covers the call, or its cost is unknown. Never part of cost_micros.';
COMMENT ON COLUMN ai_cost.calls.markup_id IS 'The ai_cost.markups row that set billed_micros; NULL when the call is not billed.';
COMMENT ON COLUMN ai_cost.calls.computed_cost_micros IS 'The cost from ai_cost.prices (tenant prices and discounts applied), set on insert for every call, app-cache hits and provider-reported costs included. Equals cost_micros unless the call was cached (cost 0) or its provider reports its own cost. NULL when no price applies.';

-- The transactions writing ai_cost.calls (or one of its partitions) at this
-- moment, other than this one: each holds ROW EXCLUSIVE on it from before
-- it draws an id until it ends, prepared transactions included.
CREATE FUNCTION ai_cost_internal.call_writers() RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT l.virtualtransaction), '{}')
    FROM pg_catalog.pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'
     AND l.pid IS DISTINCT FROM pg_backend_pid()
     AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
     AND (l.relation = 'ai_cost.calls'::regclass
          OR l.relation IN (SELECT t.relid FROM pg_catalog.pg_partition_tree('ai_cost.calls') t))
$$;
COMMENT ON FUNCTION ai_cost_internal.call_writers() IS 'Internal: the virtual transaction ids of the other transactions writing ai_cost.calls now.';
