-- Up Migration
--
-- Trust (sql/ holds each definition; this step brings a 0.1.0 schema there):
-- every function either pins its search_path or names each operator,
-- function and type by its schema; no function is executable by PUBLIC and
-- each role is granted what its job needs (grant_roles, run by every
-- `ai-cost migrate up`); tenant isolation rests on ai_cost.tenant_access,
-- not on a setting; per-call ceilings on money and counts, and a refresh that
-- sets aside what it cannot fold; a provider-reported cost is billed only
-- for providers marked reports_own_cost, and every call keeps its list cost
-- in computed_cost_micros; calls dated more than a day ahead are refused and
-- partitions cover a window of months; a reprice waits for the transactions
-- writing calls when it starts.
--
-- Calls recorded before this step keep the cost they were billed: a
-- provider-reported cost of a provider not marked reports_own_cost stays
-- their cost_micros until a reprice (`ai-cost reprice`, audited) applies the
-- rule to them.

SET LOCAL check_function_bodies = off;

-- Providers that bill the cost they report.
ALTER TABLE ai_cost.providers ADD COLUMN reports_own_cost boolean NOT NULL DEFAULT false;
UPDATE ai_cost.providers SET reports_own_cost = true WHERE id = 'openrouter';

-- The list cost of every call, beside what it is billed.
ALTER TABLE ai_cost.calls ADD COLUMN computed_cost_micros bigint;

-- Per-call ceilings. NOT VALID first, so the upgrade never fails on calls
-- recorded before them; each is then validated where the existing rows
-- allow, and otherwise stays NOT VALID with a WARNING naming the query that
-- finds the old rows (new and updated rows are held to it either way).
ALTER TABLE ai_cost.calls DROP CONSTRAINT "token counts must be at most 1e12 (one trillion)";
ALTER TABLE ai_cost.calls ADD CONSTRAINT "token counts must be at most 1e10 (ten billion)"
  CHECK (input_tokens <= 10000000000 AND output_tokens <= 10000000000 AND cache_read_tokens <= 10000000000
     AND cache_write_tokens <= 10000000000 AND reasoning_tokens <= 10000000000
     AND cache_write_1h_tokens <= 10000000000 AND audio_input_tokens <= 10000000000
     AND audio_output_tokens <= 10000000000) NOT VALID;
ALTER TABLE ai_cost.calls ADD CONSTRAINT "provided_cost_micros must be at most 1e10 ($10,000 a call)"
  CHECK (provided_cost_micros <= 10000000000) NOT VALID;
ALTER TABLE ai_cost.calls ADD CONSTRAINT "total cost_micros must be at most 1e10 ($10,000 a call)"
  CHECK (cost_micros <= 10000000000) NOT VALID;
DO $$
DECLARE
  rule record;
BEGIN
  FOR rule IN
    SELECT * FROM (VALUES
      ('token counts must be at most 1e10 (ten billion)',
       'greatest(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens) > 10000000000'),
      ('provided_cost_micros must be at most 1e10 ($10,000 a call)', 'provided_cost_micros > 10000000000'),
      ('total cost_micros must be at most 1e10 ($10,000 a call)', 'cost_micros > 10000000000')) AS r(name, broken)
  LOOP
    BEGIN
      EXECUTE format('ALTER TABLE ai_cost.calls VALIDATE CONSTRAINT %I', rule.name);
    EXCEPTION WHEN check_violation THEN
      RAISE WARNING 'calls recorded before this upgrade break the rule "%": new calls are held to it, these are not, and the refresh sets their changes aside. Find them with SELECT id FROM ai_cost.calls WHERE %; fix or delete them, then run ALTER TABLE ai_cost.calls VALIDATE CONSTRAINT %',
        rule.name, rule.broken, quote_ident(rule.name);
    END;
  END LOOP;
END
$$;

-- The call id on captured changes, and where the refresh sets aside what it
-- cannot fold.
ALTER TABLE ai_cost_internal.call_changes ADD COLUMN call_id bigint;
CREATE TABLE ai_cost_internal.set_aside_changes (
  -- Every column of a captured change, so a change moves between the two
  -- tables as it is.
  LIKE ai_cost_internal.call_changes,
  reason text NOT NULL,
  set_aside_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX set_aside_changes_call_id_idx ON ai_cost_internal.set_aside_changes (call_id);
CREATE VIEW ai_cost.set_aside_calls AS
SELECT call_id, CASE WHEN sign > 0 THEN 'added' ELSE 'removed' END AS change, created_at, provider, model,
       tenant_id, cost_micros, reason, set_aside_at
  FROM ai_cost_internal.set_aside_changes;

-- Which tenants a role may read.
CREATE TABLE ai_cost.tenant_access (
  reader    regrole NOT NULL,
  tenant_id text NOT NULL CHECK (tenant_id <> ''),
  PRIMARY KEY (reader, tenant_id)
);
ALTER TABLE ai_cost.tenant_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT
  USING (pg_catalog.pg_has_role(reader, 'USAGE'));
CREATE POLICY admins_manage ON ai_cost.tenant_access
  USING (pg_catalog.pg_has_role('ai_cost_admin', 'USAGE'))
  WITH CHECK (pg_catalog.pg_has_role('ai_cost_admin', 'USAGE'));
GRANT SELECT ON ai_cost.tenant_access TO PUBLIC;

-- Functions, views and comments, as sql/ defines them.
COMMENT ON COLUMN ai_cost.providers.reports_own_cost IS 'When true, the provider bills each call at a cost it reports in its response (OpenRouter''s usage.cost): a call''s provided_cost_micros becomes its cost_micros, with the list cost kept in computed_cost_micros. When false (the default), a provided cost is kept as data and cost_micros is the list cost. Only admins may set it.';

COMMENT ON COLUMN ai_cost.calls.cached IS 'True when your application served the answer from its own cache: no provider call, so cost_micros is 0; computed_cost_micros keeps what the call would have cost, and the rollups count these calls apart.';

COMMENT ON COLUMN ai_cost.calls.provided_cost_micros IS 'Cost the provider itself reported (e.g. OpenRouter''s usage.cost), in micro-dollars, as the writer sent it. It becomes cost_micros only for a provider marked ai_cost.providers.reports_own_cost; otherwise it is kept for comparison and cost_micros is the list cost.';

COMMENT ON COLUMN ai_cost.calls.cost_micros IS 'Cost in integer micro-dollars (1 = $0.000001), set on insert. NULL = unpriced (no price in force, or a used token kind has no price); 0 = free. At most 1e10 ($10,000) a call.';

COMMENT ON COLUMN ai_cost.calls.price_id IS 'The ai_cost.prices row that gave computed_cost_micros; NULL when no price applies.';

COMMENT ON COLUMN ai_cost.calls.computed_cost_micros IS 'The cost from ai_cost.prices (tenant prices and discounts applied), set on insert for every call, app-cache hits and provider-reported costs included. Equals cost_micros unless the call was cached (cost 0) or its provider reports its own cost. NULL when no price applies.';

-- The cost of a call: the formula, the cost trigger and the batch insert.
--
-- Cost is integer micro-dollars, computed once per call on insert and stored:
--   cost_micros = ceil(factor x sum over dimensions (tokens x USD per 1M tokens)
--                      + units x USD per unit x 10^6)
-- summed exactly and rounded up once (rounding each component would
-- overcharge by up to 4 micro-dollars). Token counts follow the OpenTelemetry
-- semantics: input_tokens includes cache reads, cache writes and audio input,
-- output_tokens includes audio output, so the uncached text input is input
-- minus those. A dimension the call used that its price leaves NULL makes the
-- call unpriced (cost NULL, with a reason), never silently free. A successful
-- call that reports no usage at all (an OpenAI stream without
-- stream_options.include_usage) is unpriced too: 'no usage reported'; a failed
-- or cancelled one with no usage costs 0, since providers do not bill a
-- request that consumed nothing.
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
-- narrowest discount, then the list price; within those, the highest
-- long-context tier the input exceeds) applied to every billing dimension.
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
CREATE OR REPLACE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  units numeric, unit text
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  -- OPERATOR(...) gives every operator the same precedence, so each product
  -- is in parentheses.
  SELECT pg_catalog.ceil(l.factor OPERATOR(pg_catalog.*) (
             (greatest(coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($11, 0), 0)
                                          OPERATOR(pg_catalog.*) coalesce(l.input_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)) OPERATOR(pg_catalog.*) coalesce(l.output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($8, 0)                     OPERATOR(pg_catalog.*) coalesce(l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($10, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_write_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($10, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_write_1h_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($11, 0)                    OPERATOR(pg_catalog.*) coalesce(l.audio_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($12, 0)                    OPERATOR(pg_catalog.*) coalesce(l.audio_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($13, 0) OPERATOR(pg_catalog.*) coalesce(l.unit_price, 0) OPERATOR(pg_catalog.*) 1000000)))::bigint,
         l.price_id,
         l.discount_id,
         CASE
           WHEN l.input_per_mtok IS NULL AND coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($11, 0) OPERATOR(pg_catalog.>) 0
             THEN 'no price for input tokens'
           WHEN l.output_per_mtok IS NULL AND coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0) OPERATOR(pg_catalog.>) 0 THEN 'no price for output tokens'
           WHEN l.cache_read_per_mtok IS NULL AND $8 OPERATOR(pg_catalog.>) 0 THEN 'no price for cache read tokens'
           WHEN l.cache_write_per_mtok IS NULL AND $9 OPERATOR(pg_catalog.>) coalesce($10, 0) THEN 'no price for cache write tokens'
           WHEN l.cache_write_1h_per_mtok IS NULL AND $10 OPERATOR(pg_catalog.>) 0 THEN 'no price for 1-hour cache write tokens'
           WHEN l.audio_input_per_mtok IS NULL AND $11 OPERATOR(pg_catalog.>) 0 THEN 'no price for audio input tokens'
           WHEN l.audio_output_per_mtok IS NULL AND $12 OPERATOR(pg_catalog.>) 0 THEN 'no price for audio output tokens'
           WHEN $13 OPERATOR(pg_catalog.>) 0 AND NOT coalesce(l.unit OPERATOR(pg_catalog.=) $14, l.unit IS NULL AND $14 IS NULL) THEN 'no price per ' OPERATOR(pg_catalog.||) $14
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) $1 AND l.model OPERATOR(pg_catalog.=) $2 AND l.service_tier OPERATOR(pg_catalog.=) $3
     AND (l.tenant_id OPERATOR(pg_catalog.=) '' OR l.tenant_id OPERATOR(pg_catalog.=) $4)
     AND l.valid_from OPERATOR(pg_catalog.<=) $5 AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) $5)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0 OR l.above_input_tokens OPERATOR(pg_catalog.<) $6)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1
$$;

-- The same for a recorded call, as it would be priced now.
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
    c.units, c.unit, c.service_tier, c.tenant_id);
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

DROP FUNCTION ai_cost_internal.cost_of(ai_cost.calls);
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
             c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
    IF NOT FOUND THEN
      pattern_model := ai_cost_internal.pattern_model(c.provider, c.model);
      IF pattern_model IS NOT NULL THEN
        SELECT * INTO computed_cost_micros, price_id, discount_id, unpriced_reason
          FROM ai_cost_internal.priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
                 c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
                 c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
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
CREATE OR REPLACE FUNCTION ai_cost_internal.price_call_slowly(c ai_cost.calls) RETURNS ai_cost.calls
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
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit, provided_cost_micros,
    streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit, c.provided_cost_micros,
    c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
    -- Only read with a cost beside it: the trigger sets its own otherwise.
    b.price_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           j.tenant_id, j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.units, j.unit,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        units numeric, unit text, provided_cost_micros bigint,
        streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text)
  ) c
  -- The book is hashed once per batch; each call probes it once.
  LEFT JOIN ai_cost_internal.price_book_entries() AS b
    ON b.provider = c.provider AND b.service_tier = c.service_tier AND b.model = c.model
  -- The cost trigger's test and sum (price_call below), once per call for
  -- both cost columns. The test's shifts are ORed into one comparison: each
  -- t >> b is 0 exactly when the trigger's t >> b = 0 holds (a negative t
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
                 | (coalesce(c.audio_output_tokens, 0::bigint) >> b.audio_output_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens) IS NULL
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        ELSE (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint)
                       - coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.audio_input_tokens, 0::bigint), 0::bigint) * b.input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
              + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
              + coalesce(c.audio_input_tokens, 0::bigint) * b.audio_input_rate
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

-- The cost trigger. A call the compiled price book covers is priced from its
-- constants with no query; everything else goes through the lookup, as
-- ai_cost_internal.cost_of() does. The book path is split in two: calls
-- without cache writes or audio (most calls) and the others, because PL/pgSQL
-- sets up the state of each expression it evaluates once per transaction, so
-- one expression for all seven dimensions made a single-row INSERT set up
-- every check and sum (perf over pgbench single-row INSERTs on PostgreSQL 15:
-- the trigger's share of the backend's time went from 9.1-9.3% to 5.9-6.7%).
--
-- It does not pin search_path: a SET clause costs ~5 us per row before
-- PostgreSQL 17. Instead every table, operator, function and non-keyword
-- type in it is named by its schema (OPERATOR(pg_catalog.+), which gives
-- every operator the same precedence, hence the parentheses around
-- products): the inserting session's search_path may hold a better-matching
-- or same-named operator of a user's, which would set the cost
-- (test/planted-operators.test.ts).
CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes or audio (most calls): three
  -- dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][9]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][10]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][11]::integer OPERATOR(pg_catalog.=) 0::bigint THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- The input part can be negative in a valid row, and is clamped as there.
      -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.computed_cost_micros := NEW.cost_micros;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      RETURN NEW;
    END IF;
  -- The same with cache writes or audio: all seven dimensions.
  ELSIF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][9]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][10]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][11]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][12]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][13]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][14]::integer OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.>>) (ai_cost_internal.price_book_rates())[slot][15]::integer OPERATOR(pg_catalog.=) 0::bigint THEN
      -- A negative part can only come from a row the CHECK constraints
      -- refuse next (audio_output_tokens above output_tokens, say).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.computed_cost_micros := NEW.cost_micros;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      RETURN NEW;
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
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_unit
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
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_read IS NOT NULL OR coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (coalesce(l_unit OPERATOR(pg_catalog.=) NEW.unit, l_unit IS NULL AND NEW.unit IS NULL)
          OR coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 0::numeric) THEN
    NEW.cost_micros := pg_catalog.ceil(l_factor OPERATOR(pg_catalog.*) (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)::numeric OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint THEN (NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric) ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_read_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.cache_read_tokens::numeric OPERATOR(pg_catalog.*) r_cache_read ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_write_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_write_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write_1h, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_input_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.audio_input_tokens::numeric OPERATOR(pg_catalog.*) r_audio_input ELSE 0::numeric END
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

-- Waits until every transaction that was writing to the calls when it was
-- called has ended. A call inserted by a transaction still open when a price
-- was corrected may have been priced at the old price, yet stays invisible to
-- a reprice until it commits: by then the run's cursor may have passed it. So
-- a run first waits for those writers, as CREATE INDEX CONCURRENTLY does (an
-- INSERT or UPDATE holds ROW EXCLUSIVE on the table it writes until its
-- transaction ends), without taking a lock that would stall new inserts.
-- A transaction left open stalls the run, not the writers: the wait says
-- every 10 seconds which backends it waits for, and statement_timeout
-- bounds it.
CREATE FUNCTION ai_cost_internal.wait_for_call_writers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  writers text[];
  waited_seconds numeric := 0;
BEGIN
  SELECT array_agg(DISTINCT l.virtualtransaction) INTO writers
    FROM pg_catalog.pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
     AND l.pid IS DISTINCT FROM pg_backend_pid()
     AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
     AND (l.relation = 'ai_cost.calls'::regclass
          OR l.relation IN (SELECT t.relid FROM pg_catalog.pg_partition_tree('ai_cost.calls') t));
  WHILE writers IS NOT NULL AND EXISTS (
    SELECT FROM pg_catalog.pg_locks l WHERE l.locktype = 'virtualxid' AND l.virtualxid = ANY (writers)
  ) LOOP
    IF waited_seconds > 0 AND waited_seconds % 10 = 0 THEN
      RAISE NOTICE 'reprice waits for transactions that were writing calls when it started to end (backends %)',
        (SELECT string_agg(DISTINCT l.pid::text, ', ') FROM pg_catalog.pg_locks l
          WHERE l.locktype = 'virtualxid' AND l.virtualxid = ANY (writers));
    END IF;
    PERFORM pg_sleep(0.1);
    waited_seconds := waited_seconds + 0.1;
  END LOOP;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.wait_for_call_writers() IS 'Internal: waits until the transactions writing to ai_cost.calls at the time of the call have ended, so a reprice sees every call they wrote.';

-- Starts a repricing run over calls with from_time <= created_at < to_time
-- (optionally one provider/model, optionally only unpriced calls) and
-- returns its id; ai_cost.reprice_batch then does the work. It first waits
-- for transactions still writing calls (see wait_for_call_writers above).
CREATE OR REPLACE FUNCTION ai_cost.start_reprice(
  from_time timestamptz, to_time timestamptz, reason text,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run_id bigint;
BEGIN
  PERFORM ai_cost_internal.wait_for_call_writers();
  INSERT INTO ai_cost.reprice_runs (from_time, to_time, provider, model, only_unpriced, reason, total_calls)
  SELECT start_reprice.from_time, start_reprice.to_time, start_reprice.provider, start_reprice.model,
         start_reprice.only_unpriced, start_reprice.reason, count(*)
    FROM ai_cost.calls c
   WHERE c.created_at >= start_reprice.from_time AND c.created_at < start_reprice.to_time
     AND (start_reprice.provider IS NULL OR c.provider = start_reprice.provider)
     AND (start_reprice.model IS NULL OR c.model = start_reprice.model)
     AND (NOT start_reprice.only_unpriced OR c.cost_micros IS NULL)
  RETURNING id INTO run_id;
  RETURN run_id;
END
$$;

-- Runs a reprice to the end from SQL, committing after every batch so locks
-- are short and an interruption loses at most one batch: CALL it outside a
-- transaction block; CALL it again with the same run id to resume. (A
-- procedure with a SET clause cannot COMMIT, so this one and ai_cost.reprice
-- do not pin search_path; every function and operator in them is named by
-- its schema, and the work is done by pinned functions.)
CREATE OR REPLACE PROCEDURE ai_cost.resume_reprice(run_id bigint, batch_size integer DEFAULT 5000)
LANGUAGE plpgsql AS $$
BEGIN
  WHILE ai_cost.reprice_batch(run_id, batch_size) OPERATOR(pg_catalog.=) batch_size LOOP
    COMMIT;
  END LOOP;
  COMMIT;
END
$$;

-- Latency histograms: fixed log-scale buckets that add up.
--
-- Latencies go into fixed log-scale buckets, four per doubling: bucket 0 is
-- under 1 ms, bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, and bucket 88
-- everything from 2^(87/4) ms (about 58 minutes) on. Fixed buckets make
-- histograms mergeable by adding counts, so p50/p95/p99 of any slice come
-- from the rollups without reading raw rows, within 9% of the exact value.
-- A histogram is a bigint[] of counts per bucket, trailing empty buckets
-- dropped (NULL when empty).
--
-- The refresh folds every change through these helpers, so they are built
-- for it: latency_bucket() is an inlinable SQL expression (0.03 us a row
-- against 3.6 us as a function call), and the others are PL/pgSQL loops over
-- arrays assigned in place (unnest ... WITH ORDINALITY cost 20-30 us a call).
-- None of them pins search_path, because a SET clause blocks inlining and
-- costs a save and restore of the path on every call before PostgreSQL 17.
-- Instead every operator, function and type in them is named by its schema
-- (OPERATOR(pg_catalog.+), pg_catalog.ln, double precision): they are parsed
-- in the caller's session, a view reader's or a refresh's, whose search_path
-- may hold a user's better-matching operator (test/planted-operators.test.ts).
-- Without STRICT and SET the planner inlines this into the calling query, so
-- bucketing a row costs an expression, not a function call.
CREATE OR REPLACE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms OPERATOR(pg_catalog.<) 1 THEN 0
              -- OPERATOR(...) gives every operator the same precedence: hence the parentheses.
              ELSE least(88, 1 OPERATOR(pg_catalog.+) pg_catalog.floor(
                     (4::double precision OPERATOR(pg_catalog.*) pg_catalog.ln(ms::double precision)
                      OPERATOR(pg_catalog./) pg_catalog.ln(2::double precision))
                     OPERATOR(pg_catalog.+) 1e-9::double precision)::integer) END
$$;

-- Drops trailing zero buckets; NULL when nothing is left.
CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  last integer := pg_catalog.cardinality(h);
BEGIN
  WHILE last OPERATOR(pg_catalog.>) 0 AND coalesce(h[last], 0::bigint) OPERATOR(pg_catalog.=) 0::bigint LOOP
    last := last OPERATOR(pg_catalog.-) 1;
  END LOOP;
  IF last OPERATOR(pg_catalog.=) 0 THEN
    RETURN NULL;
  END IF;
  RETURN CASE WHEN last OPERATOR(pg_catalog.=) pg_catalog.cardinality(h) THEN h ELSE h[1:last] END;
END
$$;

-- Adds two histograms bucket by bucket (counts may be negative in a change
-- set), into a copy of the longer one assigned in place; an all-zero sum is
-- NULL again.
CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total bigint[];
  other bigint[];
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  IF pg_catalog.cardinality(a) OPERATOR(pg_catalog.>=) pg_catalog.cardinality(b) THEN
    total := a;
    other := b;
  ELSE
    total := b;
    other := a;
  END IF;
  FOR slot IN 1 .. pg_catalog.cardinality(other) LOOP
    total[slot] := total[slot] OPERATOR(pg_catalog.+) other[slot];
  END LOOP;
  RETURN ai_cost_internal.histogram_trim(total);
END
$$;

-- Adds sparse counts into a histogram: bucket numbers and their counts (a
-- bucket may repeat). The work follows the buckets touched, not the width.
CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_apply(h bigint[], buckets integer[], counts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  width integer := coalesce(pg_catalog.cardinality(h), 0);
  slot integer;
BEGIN
  IF buckets IS NULL THEN
    RETURN h;
  END IF;
  IF h IS NULL THEN
    h := '{}';
  END IF;
  FOR i IN 1 .. pg_catalog.cardinality(buckets) LOOP
    slot := buckets[i] OPERATOR(pg_catalog.+) 1;
    IF slot OPERATOR(pg_catalog.>) width THEN
      h := h OPERATOR(pg_catalog.||) pg_catalog.array_fill(0::bigint, ARRAY[slot OPERATOR(pg_catalog.-) width]);
      width := slot;
    END IF;
    h[slot] := h[slot] OPERATOR(pg_catalog.+) counts[i];
  END LOOP;
  IF width OPERATOR(pg_catalog.=) 0 OR h[width] OPERATOR(pg_catalog.=) 0::bigint THEN
    RETURN ai_cost_internal.histogram_trim(h);
  END IF;
  RETURN h;
END
$$;

-- Step of ai_cost.histogram_merge: adds a histogram into a full-width state in place.
CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF histogram IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  FOR slot IN 1 .. least(89, pg_catalog.cardinality(histogram)) LOOP
    state[slot] := state[slot] OPERATOR(pg_catalog.+) histogram[slot];
  END LOOP;
  RETURN state;
END
$$;

-- Step of the histogram builder: counts one latency with a weight (+1 added, -1 removed).
CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  slot integer;
BEGIN
  IF ms IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  slot := ai_cost.latency_bucket(ms) OPERATOR(pg_catalog.+) 1;
  state[slot] := state[slot] OPERATOR(pg_catalog.+) weight;
  RETURN state;
END
$$;

-- Copies the rows a statement changed into the change table. SECURITY
-- DEFINER: whoever may write ai_cost.calls must not need (or get) rights on
-- the internal table. Updates copy every row as removed-then-added; rows
-- whose reported columns did not change net out to nothing in the refresh.
CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT -1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM old_calls;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;

-- The values a call has, one row per dimension: how a group of calls is
-- counted once under each. A model is named with its provider, since two
-- providers can serve the same model id. No SET clause, so the planner
-- inlines it into the queries that use it instead of calling it per row; its
-- one operator is named by its schema (see 080_histograms.sql on such helpers).
CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_values(
  provider text, model text, operation text, service_tier text, tenant_id text, user_id text, feature text,
  OUT dimension text, OUT value text
) RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES ('provider', provider), ('model', provider OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) model), ('operation', operation),
         ('service_tier', service_tier), ('tenant', tenant_id), ('user', user_id), ('feature', feature)
$$;

COMMENT ON TABLE ai_cost_internal.set_aside_changes IS 'Internal: call changes ai_cost.refresh() could not fold into the rollups, with the reason; listed by ai_cost.set_aside_calls, retried by ai_cost.retry_set_aside_changes().';

COMMENT ON VIEW ai_cost.set_aside_calls IS 'Call changes ai_cost.refresh() could not fold into the rollups, one row each: they are left out of every rollup and report until retried. Fix the call (or delete it), then SELECT ai_cost.retry_set_aside_changes().';

COMMENT ON COLUMN ai_cost.set_aside_calls.call_id IS 'The ai_cost.calls id; NULL when the change does not carry one (changes captured by release 0.1).';

COMMENT ON COLUMN ai_cost.set_aside_calls.change IS 'added (an insert, or the new version of an update) or removed (a delete, or the old version of an update).';

COMMENT ON COLUMN ai_cost.set_aside_calls.created_at IS 'Time of the call.';

COMMENT ON COLUMN ai_cost.set_aside_calls.provider IS 'Provider id.';

COMMENT ON COLUMN ai_cost.set_aside_calls.model IS 'Model id.';

COMMENT ON COLUMN ai_cost.set_aside_calls.tenant_id IS 'Tenant of the call.';

COMMENT ON COLUMN ai_cost.set_aside_calls.cost_micros IS 'Cost of the call in this change, in micro-dollars.';

COMMENT ON COLUMN ai_cost.set_aside_calls.reason IS 'Why it could not be folded: the value past a per-call ceiling, the error folding it raised, or that another change of the call is set aside.';

COMMENT ON COLUMN ai_cost.set_aside_calls.set_aside_at IS 'When the refresh set it aside.';

-- Which value of an added change is past the per-call ceilings of
-- 040_calls.sql, in words; NULL when none is. Called only for the changes
-- the fold's inline check refuses.
CREATE FUNCTION ai_cost_internal.ceiling_breach(change ai_cost_internal.call_changes) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN b.value < 0 THEN format('%s %s is negative', b.name, b.value)
              ELSE format('%s %s is past the per-call ceiling of %s', b.name, b.value, b.ceiling) END
    FROM (VALUES (1, 'cost_micros', change.cost_micros, 10000000000),
                 (2, 'input_tokens', change.input_tokens, 10000000000),
                 (3, 'output_tokens', change.output_tokens, 10000000000),
                 (4, 'cache_read_tokens', change.cache_read_tokens, 10000000000),
                 (5, 'cache_write_tokens', change.cache_write_tokens, 10000000000),
                 (6, 'reasoning_tokens', change.reasoning_tokens, 10000000000),
                 (7, 'ttft_ms', change.ttft_ms, 2147483647),
                 (8, 'total_ms', change.total_ms, 2147483647)) AS b(position, name, value, ceiling)
   WHERE b.value NOT BETWEEN 0 AND b.ceiling
   ORDER BY b.position
   LIMIT 1
$$;

COMMENT ON FUNCTION ai_cost_internal.ceiling_breach(ai_cost_internal.call_changes) IS 'Internal: the first value of a call change past the per-call ceilings, in words, or NULL.';

-- One statement folds the netted changes (all that are committed, or the
-- ones at the given addresses) into every rollup from one hourly grouping of
-- them, and sets aside what must not be folded (see set_aside_changes).
-- Groups that reach zero calls are found from the upserts' own RETURNING and
-- deleted. Planned for its arguments every time, so that a list of addresses
-- is read by a TID scan and no list by a plain one.
CREATE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], OUT applied bigint, OUT set_aside bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  emptied_hourly tid[];
  emptied_daily tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Every part sees the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*,
              CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                   THEN ai_cost_internal.ceiling_breach(c) END AS refusal
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), cells AS (
    -- One row per hourly group and pair of latency buckets: plain sums, no
    -- arrays built per change.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           ai_cost.latency_bucket(total_ms) AS total_bucket,
           ai_cost.latency_bucket(CASE WHEN streamed THEN ttft_ms END) AS ttft_bucket,
           sum(sign)::bigint AS calls,
           coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
           coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
           coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
           coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens,
           coalesce(sum(sign * cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(sum(sign * cache_write_tokens), 0)::bigint AS cache_write_tokens,
           coalesce(sum(sign * reasoning_tokens), 0)::bigint AS reasoning_tokens,
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint AS total_ms_calls,
           coalesce(sum(sign * total_ms), 0)::bigint AS total_ms_sum,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
              unpriced_reason, total_bucket, ttft_bucket
  ), delta AS (
    -- The hourly groups, with their histograms built from the (few) buckets their changes touched.
    SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason,
           sum(calls)::bigint AS calls, sum(unpriced_calls)::bigint AS unpriced_calls,
           sum(cost_micros)::bigint AS cost_micros, sum(input_tokens)::bigint AS input_tokens,
           sum(output_tokens)::bigint AS output_tokens, sum(cache_read_tokens)::bigint AS cache_read_tokens,
           sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(total_ms_calls)::bigint AS total_ms_calls, sum(total_ms_sum)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)) AS total_ms_hist,
           sum(ttft_ms_calls)::bigint AS ttft_ms_calls, sum(ttft_ms_sum)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0)) AS ttft_ms_hist
      FROM cells
     GROUP BY hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
      FROM delta
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason
    ON CONFLICT (day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = d.calls + excluded.calls,
      unpriced_calls = d.unpriced_calls + excluded.unpriced_calls,
      cost_micros = d.cost_micros + excluded.cost_micros,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens
    RETURNING d.ctid, d.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)),
           sum(ttft_ms_calls), sum(ttft_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0))
      FROM cells
     GROUP BY hour, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'), v.dimension, v.value, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens)
      FROM delta CROSS JOIN LATERAL ai_cost_internal.dimension_values(provider, model, operation, service_tier, tenant_id, user_id, feature) AS v
     GROUP BY 1, v.dimension, v.value
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM folded
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed) - (SELECT count(*) FROM aside),
         (SELECT count(*) FROM aside),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
         emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_daily IS NOT NULL THEN
    DELETE FROM ai_cost_internal.calls_daily WHERE ctid = ANY (emptied_daily) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[]) IS 'Internal: folds the captured call changes (all, or those at the given addresses) into the rollups and sets aside those that must not be folded; run by ai_cost_internal.refresh_rollups().';

-- When folding the changes together fails, finds the ones that cannot be
-- folded by halving: each half is folded on its own (a subtransaction), a
-- half that fails is halved again, and a single call's changes that still
-- fail are set aside with the error. The other changes are folded, at the
-- cost of about two folds (10-20 ms each) per bad change per halving level.
-- The changes of one call are never split, so an update or a delete is
-- folded or set aside with the insert it follows. After max_splits halvings
-- (many bad changes, e.g. a rollup group at the edge of bigint) a part that
-- fails is set aside whole instead, so that one refresh stays within seconds;
-- a retry examines it again. Only errors caused by the data are caught:
-- anything else (a lock, the disk, a bug) fails the refresh.
CREATE FUNCTION ai_cost_internal.fold_changes_apart(max_splits integer DEFAULT 500, OUT applied bigint, OUT set_aside bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  changes tid[];
  calls bigint[];
  first_queue integer[];
  last_queue integer[];
  first integer;
  last integer;
  split integer;
  part record;
  failure text;
  splits integer := 0;
BEGIN
  applied := 0;
  set_aside := 0;
  -- Sorted by hourly group, so that the changes that fail together (those of
  -- a group at the edge of bigint) are neighbours and isolated in few
  -- halvings; a call's changes are sorted by the first group among them, so
  -- they are neighbours too. A change with no call id (captured by release
  -- 0.1) stands alone.
  SELECT array_agg(u.tid ORDER BY u.place, u.call_id, u.tid), array_agg(u.call_id ORDER BY u.place, u.call_id, u.tid)
    INTO changes, calls
    FROM (SELECT c.ctid AS tid, c.call_id,
                 CASE WHEN c.call_id IS NULL THEN g.hourly_group
                      ELSE min(g.hourly_group) OVER (PARTITION BY c.call_id) END AS place
            FROM ai_cost_internal.call_changes c
           CROSS JOIN LATERAL (SELECT format('%s %s %s %s %s %s %s', date_trunc('hour', c.created_at, 'UTC'), c.provider,
                                             c.model, c.tenant_id, c.user_id, c.feature, c.status) AS hourly_group) g) u;
  IF changes IS NULL THEN
    RETURN;
  END IF;
  -- Parts are tried in the order they were made, halves before quarters,
  -- so clean parts are folded early and the halvings go where failures are.
  first_queue := ARRAY[1];
  last_queue := ARRAY[cardinality(changes)];
  WHILE cardinality(first_queue) > 0 LOOP
    first := first_queue[1];
    last := last_queue[1];
    first_queue := first_queue[2:];
    last_queue := last_queue[2:];
    BEGIN
      SELECT * INTO part FROM ai_cost_internal.fold_changes(changes[first:last]);
      applied := applied + part.applied;
      set_aside := set_aside + part.set_aside;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      failure := SQLERRM;
      IF splits >= max_splits AND NOT (first = last OR calls[first] = calls[last]) THEN
        failure := format('%s, in a part of %s changes set aside whole: retrying examines them one by one',
                          failure, last - first + 1);
      END IF;
      IF first = last OR calls[first] = calls[last] OR splits >= max_splits THEN
        WITH moved AS (
          DELETE FROM ai_cost_internal.call_changes WHERE ctid = ANY (changes[first:last]) RETURNING *
        )
        INSERT INTO ai_cost_internal.set_aside_changes SELECT moved.*, failure FROM moved;
        set_aside := set_aside + (last - first + 1);
      ELSE
        -- Split between two calls, at the boundary nearest the middle.
        split := (first + last) / 2;
        WHILE split < last AND calls[split] = calls[split + 1] LOOP
          split := split + 1;
        END LOOP;
        IF split = last THEN
          split := (first + last) / 2 - 1;
          WHILE calls[split] = calls[split + 1] LOOP
            split := split - 1;
          END LOOP;
        END IF;
        first_queue := first_queue || ARRAY[first, split + 1];
        last_queue := last_queue || ARRAY[split, last];
        splits := splits + 1;
      END IF;
    END;
  END LOOP;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.fold_changes_apart(integer) IS 'Internal: folds the captured call changes part by part, setting aside those whose folding fails, with the error; run by ai_cost_internal.refresh_rollups() when folding them together failed.';

DROP FUNCTION ai_cost_internal.refresh_rollups();
-- Folds the changes, together (the usual case: one statement) or, when that
-- fails on some bad data, apart (see fold_changes_apart); then records and
-- announces the budget thresholds crossed.
CREATE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  BEGIN
    SELECT f.applied, f.set_aside INTO applied, set_aside FROM ai_cost_internal.fold_changes(NULL) AS f;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    SELECT f.applied, f.set_aside INTO applied, set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
  END;

  -- Each threshold crossed is recorded once per period and announced; the
  -- notification is delivered when this transaction commits.
  WITH crossed AS (
    SELECT s.budget_id, s.period_start, t.percent, s.spent_micros, s.limit_micros
      FROM ai_cost.budget_status s
      JOIN ai_cost.budgets b ON b.id = s.budget_id
     CROSS JOIN LATERAL unnest(b.alert_at_percent) AS t(percent)
     WHERE 100 * s.spent_micros::numeric >= t.percent * s.limit_micros::numeric
  ), recorded AS (
    INSERT INTO ai_cost.budget_alerts (budget_id, period_start, percent, spent_micros, limit_micros)
    SELECT budget_id, period_start, percent, spent_micros, limit_micros FROM crossed
    ON CONFLICT DO NOTHING
    RETURNING *
  )
  SELECT count(pg_notify('ai_cost_budget', json_build_object(
           'budget_id', r.budget_id, 'name', b.name, 'scope', b.scope, 'scope_value', b.scope_value,
           'period', b.period, 'period_start', r.period_start, 'percent', r.percent,
           'spent_micros', r.spent_micros::text, 'limit_micros', r.limit_micros::text)::text))
    INTO alerts
    FROM recorded r JOIN ai_cost.budgets b ON b.id = r.budget_id;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.refresh_rollups() IS 'Internal: folds the captured call changes into the rollups, setting aside those that cannot be folded, and records and announces budget thresholds crossed; run by ai_cost.refresh() under its lock.';

-- TRUNCATE fires no row or DELETE triggers: empty every rollup with the calls.
CREATE OR REPLACE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost_internal.call_changes, ai_cost_internal.set_aside_changes, ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.calls_daily, ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  RETURN NULL;
END
$$;

-- Any window of calls in the rollup shape, exact to the instant: whole hours
-- come from the live rollup, the partial hours at either edge from the raw
-- table (at most two hours of rows, found by calls_created_at_idx), but for
-- the calls the refresh set aside, which no rollup holds either.
CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  WITH bounds AS (
    SELECT date_trunc('hour', since, 'UTC') + CASE WHEN date_trunc('hour', since, 'UTC') = since
                                                  THEN interval '0' ELSE interval '1 hour' END AS first_hour,
           date_trunc('hour', until, 'UTC') AS end_hour
  )
  SELECT l.*
    FROM ai_cost.calls_hourly_live l, bounds b
   WHERE l.hour >= b.first_hour AND l.hour < b.end_hour
  UNION ALL
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    FROM ai_cost.calls c, bounds b
   WHERE c.created_at >= since AND c.created_at < until
     AND (c.created_at < b.first_hour OR c.created_at >= greatest(b.end_hour, b.first_hour))
     AND NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;

-- Folds the pending call changes into the rollups, raises budget alerts,
-- compiles the price book again once a price has started or ended since the
-- last compile, and rebuilds the windowed materialized views. Each part runs
-- under its own advisory lock and is skipped when another session holds it,
-- so overlapping runs (pg_cron plus a manual one) are safe. Just-in-time
-- compilation costs more than it saves on these statements: the budget check
-- over zero budgets alone was estimated expensive enough to spend 0.9 s
-- compiling (jit_above_cost), longer than the whole refresh.
CREATE OR REPLACE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  set_aside bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  IF ai_cost_internal.price_book_stale_at() <= now() THEN
    PERFORM ai_cost_internal.compile_price_book();
  END IF;
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.set_aside, r.alerts INTO applied, set_aside, alerts FROM ai_cost_internal.refresh_rollups() AS r;
    IF set_aside > 0 THEN
      RAISE WARNING 'ai_cost.refresh(): % call change(s) could not be folded and were set aside: see ai_cost.set_aside_calls', set_aside;
    END IF;
  ELSE
    RAISE NOTICE 'ai_cost.refresh(): the rollups are being refreshed by another session: skipped';
  END IF;
  IF views THEN
    IF pg_try_advisory_xact_lock(x'6169636f73745f76'::bigint) THEN
      views_done := true;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_share;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_feature;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_latency_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_top_spenders;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_trends;
    ELSE
      RAISE NOTICE 'ai_cost.refresh(): the materialized views are being rebuilt by another session: skipped';
    END IF;
  END IF;
  IF rollups_done OR views_done THEN
    UPDATE ai_cost_internal.refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

-- How fresh the materialized views are and how much waits for the next refresh.
CREATE OR REPLACE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.call_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes
  FROM ai_cost_internal.refresh_state s;

COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many changes wait for the next run, and how many it set aside (ai_cost.set_aside_calls).';

-- Puts set-aside changes (of one call, or all) back for the next refresh,
-- once the calls are fixed. A fix is itself a change of the call, set aside
-- beside the original (an update removes the bad version and adds the new
-- one; a delete removes it): an addition and a removal of the same version
-- cancel out here, so only what the rollups lack is folded. A change still
-- bad is set aside again by that refresh. To forget a change instead (it
-- stays out of the rollups), delete it from ai_cost_internal.set_aside_changes.
-- Waits for a running refresh of the rollups.
CREATE FUNCTION ai_cost.retry_set_aside_changes(call_id bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  moved bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  WITH taken AS (
    DELETE FROM ai_cost_internal.set_aside_changes s
     WHERE retry_set_aside_changes.call_id IS NULL OR s.call_id = retry_set_aside_changes.call_id
    RETURNING s.*, to_jsonb(s) - '{sign,reason,set_aside_at}'::text[] AS version
  ), numbered AS (
    -- The n-th addition of a version cancels its n-th removal.
    SELECT t.*, row_number() OVER (PARTITION BY t.version, t.sign ORDER BY t.set_aside_at) AS n FROM taken t
  ), returned AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT a.sign, a.created_at, a.provider, a.model, a.operation, a.status, a.service_tier, a.tenant_id,
           a.user_id, a.feature, a.conversation_id, a.cached, a.streamed, a.unpriced_reason, a.cost_micros,
           a.input_tokens, a.output_tokens, a.cache_read_tokens, a.cache_write_tokens, a.reasoning_tokens,
           a.ttft_ms, a.total_ms, a.call_id
      FROM numbered a
     WHERE NOT EXISTS (SELECT FROM numbered b WHERE b.version = a.version AND b.n = a.n AND b.sign = -a.sign)
    RETURNING 1
  )
  SELECT count(*) INTO moved FROM returned;
  RETURN moved;
END
$$;

COMMENT ON FUNCTION ai_cost.retry_set_aside_changes(bigint) IS 'Puts the set-aside changes of a call (or of all calls) back for the next ai_cost.refresh(), once fixed; changes that undo each other cancel out. Returns how many were put back.';

-- The first month of the window of months that have a partition of their
-- own; the window ends months_ahead after this one. It starts at `oldest`
-- (the month of the oldest partition, or of the oldest call when converting)
-- but never more than 60 months back, nor before the retention horizon. So
-- time and the settings bound how many partitions exist, never the dates of
-- rows: a call dated before the window waits in ai_cost.calls_default, and
-- retention removes it there once it is past the horizon. (Calls dated more
-- than a day ahead are refused on insert, 060_cost.sql.)
CREATE FUNCTION ai_cost_internal.first_partition_month(
  oldest timestamp, this_month timestamp, settings ai_cost.partition_settings
) RETURNS timestamp
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT greatest(least(coalesce(oldest, this_month), this_month),
                  this_month - interval '60 months',
                  this_month - make_interval(months => settings.retain_months))
$$;

COMMENT ON FUNCTION ai_cost_internal.first_partition_month(timestamp, timestamp, ai_cost.partition_settings) IS 'Internal: the first UTC month that gets a partition of its own: the oldest one given, at most 60 months back and not before the retention horizon.';

-- Creates the missing partitions of the window of months (see
-- ai_cost_internal.first_partition_month), moving their rows out of the
-- default partition, and applies the retention of
-- ai_cost.partition_settings. One row per action taken. A partition past
-- retention is dropped or detached only when ai_cost_internal.call_changes
-- holds no change of its time range (every one of its calls is in the
-- rollups); otherwise it is reported as waiting, and the next run (after
-- ai_cost.refresh()) takes it. Retention locks ai_cost.calls exclusively for
-- a moment; lock_timeout keeps a long query on calls from making inserts
-- queue behind that lock: the run fails instead and the next one retries.
CREATE OR REPLACE FUNCTION ai_cost.maintain_partitions()
RETURNS TABLE (action text, partition_name text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  cutoff timestamptz;
  month_start timestamp;
  moved bigint;
  pending bigint;
  old record;
  locked boolean := false;
BEGIN
  IF NOT ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is not partitioned: nothing to maintain (see ai_cost.partition_calls())';
    RETURN;
  END IF;
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- Every month of the window has its partition; a call of one that had
  -- none (maintenance did not run for months, say) moves there from the
  -- default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT min(p.range_start) AT TIME ZONE 'UTC' FROM ai_cost.call_partitions p WHERE NOT p.is_default),
        this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    IF NOT EXISTS (SELECT FROM ai_cost.call_partitions p WHERE p.range_start = month_start AT TIME ZONE 'UTC') THEN
      moved := ai_cost_internal.add_month_partition(month_start);
      action := 'created';
      partition_name := 'ai_cost.' || ai_cost_internal.partition_name(month_start);
      detail := CASE WHEN moved > 0 THEN moved || ' calls moved from ai_cost.calls_default' END;
      RETURN NEXT;
    END IF;
  END LOOP;

  IF settings.retain_months IS NOT NULL THEN
    cutoff := (this_month - make_interval(months => settings.retain_months)) AT TIME ZONE 'UTC';
    FOR old IN
      SELECT p.partition, p.range_start, p.range_end FROM ai_cost.call_partitions p
       WHERE NOT p.is_default AND p.range_end <= cutoff ORDER BY p.range_start
    LOOP
      IF NOT locked THEN
        -- Inserts in flight finish first; their changes are then visible below.
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.call_changes c
       WHERE c.created_at >= old.range_start AND c.created_at < old.range_end;
      partition_name := old.partition::text;
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      ELSE
        DELETE FROM ai_cost_internal.request_ids r
         WHERE r.created_at >= old.range_start AND r.created_at < old.range_end;
        IF settings.retention = 'drop' THEN
          EXECUTE format('DROP TABLE %s', old.partition);
          action := 'dropped';
        ELSE
          EXECUTE format('ALTER TABLE ai_cost.calls DETACH PARTITION %s', old.partition);
          action := 'detached';
        END IF;
        detail := format('calls from %s to %s; their totals stay in the rollups', old.range_start, old.range_end);
      END IF;
      RETURN NEXT;
    END LOOP;

    -- Calls in the default partition from before the horizon (dated before
    -- the window, or written after their month's partition went): the same
    -- rule for the rows themselves. Detached, they are kept together in
    -- ai_cost_internal.calls_default_detached, out of the readers' reach.
    IF EXISTS (SELECT FROM ai_cost.calls_default d WHERE d.created_at < cutoff) THEN
      IF NOT locked THEN
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.call_changes c WHERE c.created_at < cutoff;
      partition_name := 'ai_cost.calls_default';
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      -- Deleted from the partition itself: no statement trigger of
      -- ai_cost.calls fires, so the rollups keep these calls' totals.
      ELSIF settings.retention = 'drop' THEN
        WITH gone AS (
          DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff RETURNING d.request_id
        ), ids AS (
          DELETE FROM ai_cost_internal.request_ids r USING gone g WHERE r.request_id = g.request_id
        )
        SELECT count(*) INTO moved FROM gone;
        action := 'deleted';
        detail := format('%s calls from before %s; their totals stay in the rollups', moved, cutoff);
      ELSE
        IF to_regclass('ai_cost_internal.calls_default_detached') IS NULL THEN
          CREATE TABLE ai_cost_internal.calls_default_detached (LIKE ai_cost.calls);
        END IF;
        WITH gone AS (
          DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff RETURNING d.*
        ), kept AS (
          INSERT INTO ai_cost_internal.calls_default_detached SELECT * FROM gone
        ), ids AS (
          DELETE FROM ai_cost_internal.request_ids r USING gone g WHERE r.request_id = g.request_id
        )
        SELECT count(*) INTO moved FROM gone;
        action := 'detached';
        detail := format('%s calls from before %s moved to ai_cost_internal.calls_default_detached; their totals stay in the rollups',
                         moved, cutoff);
      END IF;
      RETURN NEXT;
    END IF;
  END IF;

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
END
$$;

COMMENT ON FUNCTION ai_cost.maintain_partitions() IS 'For a partitioned ai_cost.calls: creates the partitions of every month from the oldest partition (at most 60 months back) to months_ahead ahead, moving their rows out of the default partition, and drops or detaches partitions past retain_months, and default-partition calls from before then, once the rollups hold them (ai_cost.partition_settings). Returns one row per action. ai_cost.refresh() runs it once a day.';

-- Converts ai_cost.calls into a table range-partitioned by month of
-- created_at (UTC), keeping everything clients and the rest of pg-ai-cost
-- rely on: columns, defaults, identity (ids continue), CHECK constraints,
-- comments, indexes, triggers (the cost trigger, the change capture of the
-- rollups), grants, row-level security policies, and the functions that take
-- a calls row. Primary key and unique constraints gain created_at, which a
-- partitioned table requires; UNIQUE (request_id) is replaced by
-- ai_cost_internal.request_ids and its triggers. Partitions: every month
-- from the oldest call's (at most 60 months back) to months_ahead after the
-- current one, and calls_default for any other time. Rows are copied as they are: costs are not recomputed and the
-- rollups see no change. One transaction under an exclusive lock on
-- ai_cost.calls: writers and readers wait until it commits. Run it as the
-- owner of ai_cost.calls.
CREATE OR REPLACE FUNCTION ai_cost.partition_calls(
  OUT partitions integer, OUT calls_copied bigint, OUT duration_ms numeric
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started timestamptz := clock_timestamp();
  old_table oid;
  old_type oid;
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  month_start timestamp;
  sequence_name text;
  next_id bigint;
  table_comment text;
  table_acl aclitem[];
  table_owner oid;
  rls record;
  item record;
  saved_indexes text[];
  saved_constraints text[];
  saved_triggers text[];
  saved_policies text[];
  saved_column_acls jsonb;
  saved_functions jsonb;
  statement text;
BEGIN
  IF ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is already partitioned: nothing to do';
    partitions := (SELECT count(*) FROM ai_cost.call_partitions);
    calls_copied := 0;
    duration_ms := 0;
    RETURN;
  END IF;
  LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
  old_table := 'ai_cost.calls'::regclass;
  SELECT reltype, relowner, relacl INTO old_type, table_owner, table_acl FROM pg_class WHERE oid = old_table;
  SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced INTO rls FROM pg_class WHERE oid = old_table;
  table_comment := obj_description(old_table, 'pg_class');
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- A unique index that is not a constraint cannot be given created_at
  -- without knowing what it is for: refuse rather than guess.
  IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = old_table)) THEN
    RAISE EXCEPTION 'cannot partition ai_cost.calls: it has a unique index that is not a constraint (%)',
      (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique)
      USING HINT = 'Drop it or make it a UNIQUE constraint, then run ai_cost.partition_calls() again.';
  END IF;

  -- Save what is recreated on the new table, as SQL that names
  -- ai_cost.calls, which the new table will be called by then.
  saved_indexes := ARRAY(
    SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
     WHERE i.indrelid = old_table AND NOT i.indisunique ORDER BY i.indexrelid);
  saved_constraints := ARRAY(
    SELECT format('ALTER TABLE ai_cost.calls ADD CONSTRAINT %I %s (%s)', c.conname,
                  CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)
                     FROM unnest(c.conkey || CASE WHEN 'created_at' = ANY (
                            SELECT attname FROM pg_attribute WHERE attrelid = old_table AND attnum = ANY (c.conkey))
                          THEN '{}'::int2[] ELSE ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = old_table AND attname = 'created_at')] END)
                          WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = old_table AND a.attnum = k.attnum))
      FROM pg_constraint c WHERE c.conrelid = old_table AND c.contype IN ('p', 'u') ORDER BY c.contype, c.oid);
  saved_triggers := ARRAY(
    SELECT s.sql FROM (
      SELECT 1 AS pass, t.tgname, pg_get_triggerdef(t.oid) AS sql
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal
      UNION ALL
      SELECT 2, t.tgname, format('COMMENT ON TRIGGER %I ON ai_cost.calls IS %L', t.tgname, obj_description(t.oid, 'pg_trigger'))
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NOT NULL
    ) AS s ORDER BY pass, tgname);
  saved_column_acls := coalesce((
    SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'acl', a.attacl))
      FROM pg_attribute a WHERE a.attrelid = old_table AND a.attnum > 0 AND a.attacl IS NOT NULL), '[]');
  saved_policies := ARRAY(
    SELECT format('CREATE POLICY %I ON ai_cost.calls AS %s FOR %s TO %s%s%s', p.policyname, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
      FROM pg_policies p WHERE p.schemaname = 'ai_cost' AND p.tablename = 'calls');
  -- Functions that take or return a calls row depend on the old row type:
  -- they are dropped with it and created again for the new one.
  saved_functions := coalesce((
    SELECT jsonb_agg(jsonb_build_object('definition', pg_get_functiondef(p.oid), 'signature', p.oid::regprocedure::text,
                                        'comment', obj_description(p.oid, 'pg_proc'), 'owner', p.proowner, 'acl', p.proacl))
      FROM pg_proc p
     WHERE p.oid IN (SELECT d.objid FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass
                        AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid = old_type)
                          OR (d.refclassid = 'pg_class'::regclass AND d.refobjid = old_table)))), '[]');

  sequence_name := pg_get_serial_sequence('ai_cost.calls', 'id');
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %s', sequence_name) INTO next_id;

  CREATE TABLE ai_cost.calls_being_partitioned (
    LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED
                       INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS
  ) PARTITION BY RANGE (created_at);
  CREATE TABLE ai_cost.calls_default PARTITION OF ai_cost.calls_being_partitioned DEFAULT;
  -- The window of months (ai_cost_internal.first_partition_month) from the
  -- month of the oldest call: older calls go to the default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT date_trunc('month', min(created_at) AT TIME ZONE 'UTC') FROM ai_cost.calls), this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    EXECUTE format('CREATE TABLE ai_cost.%I PARTITION OF ai_cost.calls_being_partitioned FOR VALUES FROM (%L) TO (%L)',
                   ai_cost_internal.partition_name(month_start), month_start AT TIME ZONE 'UTC',
                   (month_start + interval '1 month') AT TIME ZONE 'UTC');
  END LOOP;

  -- No trigger on the new table yet: rows keep their cost, and the change
  -- capture does not see them again.
  INSERT INTO ai_cost.calls_being_partitioned OVERRIDING SYSTEM VALUE SELECT * FROM ai_cost.calls;
  GET DIAGNOSTICS calls_copied = ROW_COUNT;
  TRUNCATE ai_cost_internal.request_ids;
  INSERT INTO ai_cost_internal.request_ids (request_id, created_at)
  SELECT request_id, created_at FROM ai_cost.calls WHERE request_id IS NOT NULL;

  -- Swap. DROP without CASCADE: anything else that still depends on the old
  -- table (a view, say) stops the conversion here, naming itself.
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(signature text) LOOP
    EXECUTE format('DROP FUNCTION %s', item.signature);
  END LOOP;
  DROP TABLE ai_cost.calls;
  ALTER TABLE ai_cost.calls_being_partitioned RENAME TO calls;
  EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence('ai_cost.calls', 'id'), 'calls_id_seq');
  PERFORM setval('ai_cost.calls_id_seq', next_id, false);
  EXECUTE format('ALTER TABLE ai_cost.calls OWNER TO %s', table_owner::regrole);
  EXECUTE format('COMMENT ON TABLE ai_cost.calls IS %L', table_comment);
  PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, table_acl);
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_column_acls) AS c(name text, acl aclitem[]) LOOP
    PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, item.acl, item.name);
  END LOOP;

  FOREACH statement IN ARRAY saved_constraints || saved_indexes LOOP
    EXECUTE statement;
  END LOOP;
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(definition text, signature text, comment text, owner oid, acl aclitem[]) LOOP
    EXECUTE item.definition;
    EXECUTE format('ALTER FUNCTION %s OWNER TO %s', item.signature, item.owner::regrole);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', item.signature, item.comment);
    PERFORM ai_cost_internal.restore_acl('FUNCTION', item.signature, item.owner, item.acl);
  END LOOP;
  FOREACH statement IN ARRAY saved_triggers || saved_policies LOOP
    EXECUTE statement;
  END LOOP;
  IF rls.enabled THEN
    ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  END IF;
  IF rls.forced THEN
    ALTER TABLE ai_cost.calls FORCE ROW LEVEL SECURITY;
  END IF;

  -- Idempotency by ai_cost_internal.request_ids (see the top of this file).
  -- tg_calls__claim_request_id sorts before tg_calls__price_call, so a
  -- duplicate is skipped before it is priced.
  CREATE TRIGGER tg_calls__claim_request_id
    BEFORE INSERT ON ai_cost.calls
    FOR EACH ROW WHEN (NEW.request_id IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.claim_request_id();
  CREATE TRIGGER tg_calls__move_request_id
    BEFORE UPDATE OF request_id, created_at ON ai_cost.calls
    FOR EACH ROW WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_cost_internal.move_request_id();
  CREATE TRIGGER tg_calls__end_request_id_move
    AFTER UPDATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.end_request_id_move();
  CREATE TRIGGER tg_calls__release_request_ids
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();
  CREATE TRIGGER tg_calls__truncate_request_ids
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
  partitions := (SELECT count(*) FROM ai_cost.call_partitions);
  duration_ms := round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

-- The functions the cost trigger calls with the rights of whoever inserts a
-- call or reprices one.
CREATE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text)
    TO %I', grantee);
END
$$;

-- Gives each existing role its rights; idempotent, so every `ai-cost migrate
-- up` runs it again and a role created after the install gets them too.
--
-- No function runs for PUBLIC: PostgreSQL lets everyone execute a new
-- function, so each `migrate up` revokes that from every function of the
-- package (those a later upgrade adds too) and grants each role the ones its
-- job needs. A role also needs EXECUTE on what runs in its name: functions
-- inside the views it reads, and the pricing functions the cost trigger calls
-- when it inserts or reprices (trigger functions themselves need no grant).
-- test/execute-rights.test.ts holds each role to its list.
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
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros)
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
      ai_cost_internal.user_slices(timestamptz, timestamptz[])
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
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text)
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
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers()
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

COMMENT ON TABLE ai_cost.tenant_access IS 'Which tenants a role may read once tenant isolation is on: members of reader (and of ai_cost_tenant_reader) see the calls and rollups of tenant_id. Each role sees only its own rows here.';

COMMENT ON COLUMN ai_cost.tenant_access.reader IS 'A role whose members may read the tenant; a member of several such roles reads all their tenants.';

COMMENT ON COLUMN ai_cost.tenant_access.tenant_id IS 'The tenant_id of ai_cost.calls that reader may read.';

-- Turns tenant isolation on for the calls and their rollups, and lets tenant
-- readers read them. Run it as the owner of the tables (the installing user).
CREATE OR REPLACE FUNCTION ai_cost.enable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    RAISE EXCEPTION 'role ai_cost_tenant_reader does not exist: create it (CREATE ROLE ai_cost_tenant_reader NOLOGIN) and run ai-cost migrate again';
  END IF;
  ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly ENABLE ROW LEVEL SECURITY;
  PERFORM ai_cost_internal.grant_roles();
END
$$;

COMMENT ON FUNCTION ai_cost.enable_tenant_isolation() IS 'Turns on row-level security for calls, calls_hourly and conversations_hourly: members of ai_cost_tenant_reader then read only the rows of the tenants ai_cost.tenant_access maps to their roles.';

-- Turns it off again, and takes the tenant readers' rights to read with it.
CREATE OR REPLACE FUNCTION ai_cost.disable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost.calls DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly DISABLE ROW LEVEL SECURITY;
  PERFORM ai_cost_internal.grant_roles();
END
$$;

COMMENT ON FUNCTION ai_cost.disable_tenant_isolation() IS 'Turns row-level security for calls and their rollups off again, and revokes the tenant readers'' SELECT on them.';

-- The tenant policies read ai_cost.tenant_access instead of a setting.
DROP POLICY tenant_rows ON ai_cost.calls;
DROP POLICY tenant_rows ON ai_cost.calls_hourly;
DROP POLICY tenant_rows ON ai_cost.conversations_hourly;
DROP POLICY other_roles_all_rows ON ai_cost.calls;
DROP POLICY other_roles_all_rows ON ai_cost.calls_hourly;
DROP POLICY other_roles_all_rows ON ai_cost.conversations_hourly;
DO $$
DECLARE
  rollup text;
BEGIN
  FOREACH rollup IN ARRAY ARRAY['calls', 'calls_hourly', 'conversations_hourly'] LOOP
    EXECUTE format($policy$
      CREATE POLICY tenant_rows ON ai_cost.%I FOR SELECT
        USING ((SELECT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER'))
               AND tenant_id IN (SELECT a.tenant_id FROM ai_cost.tenant_access a))$policy$, rollup);
    EXECUTE format($policy$
      CREATE POLICY other_roles_all_rows ON ai_cost.%I
        USING ((SELECT NOT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER')))
        WITH CHECK (true)$policy$, rollup);
  END LOOP;
END
$$;

-- The list cost of the calls already recorded (the cost trigger is dropped
-- meanwhile, so no billed cost changes), then the trigger again, now also
-- on updates of computed_cost_micros.
DROP TRIGGER tg_calls__price_call ON ai_cost.calls;
UPDATE ai_cost.calls c
   SET computed_cost_micros = CASE WHEN NOT c.cached AND c.provided_cost_micros IS NULL THEN c.cost_micros
                                   ELSE (ai_cost_internal.cost_of(c)).computed_cost_micros END;
DO $$
BEGIN
  EXECUTE format($t$
    CREATE TRIGGER tg_calls__price_call
      BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit,
    computed_cost_micros
      ON ai_cost.calls
      FOR EACH ROW
      WHEN (NEW.cost_micros IS NULL OR CURRENT_USER <> %L::name
            OR pg_catalog.current_setting('ai_cost.inserting_priced_calls', true) IS DISTINCT FROM 'on')
      EXECUTE FUNCTION ai_cost_internal.price_call()$t$, current_user);
END
$$;

-- Down Migration

SET LOCAL check_function_bodies = off;

DROP TRIGGER tg_calls__price_call ON ai_cost.calls;
DO $$
BEGIN
  EXECUTE format($t$
    CREATE TRIGGER tg_calls__price_call
      BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit
      ON ai_cost.calls
      FOR EACH ROW
      WHEN (NEW.cost_micros IS NULL OR CURRENT_USER <> %L::name
            OR pg_catalog.current_setting('ai_cost.inserting_priced_calls', true) IS DISTINCT FROM 'on')
      EXECUTE FUNCTION ai_cost_internal.price_call()$t$, current_user);
END
$$;

DROP POLICY tenant_rows ON ai_cost.calls;
DROP POLICY tenant_rows ON ai_cost.calls_hourly;
DROP POLICY tenant_rows ON ai_cost.conversations_hourly;
DROP POLICY other_roles_all_rows ON ai_cost.calls;
DROP POLICY other_roles_all_rows ON ai_cost.calls_hourly;
DROP POLICY other_roles_all_rows ON ai_cost.conversations_hourly;
DO $$
DECLARE
  rollup text;
BEGIN
  FOREACH rollup IN ARRAY ARRAY['calls', 'calls_hourly', 'conversations_hourly'] LOOP
    EXECUTE format($policy$
      CREATE POLICY tenant_rows ON ai_cost.%I FOR SELECT
        USING (pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER')
               AND tenant_id = pg_catalog.current_setting('ai_cost.tenant_id', true))$policy$, rollup);
    EXECUTE format($policy$
      CREATE POLICY other_roles_all_rows ON ai_cost.%I
        USING (NOT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER'))
        WITH CHECK (true)$policy$, rollup);
  END LOOP;
END
$$;

DROP FUNCTION ai_cost_internal.grant_pricing_functions(text);

DROP FUNCTION ai_cost_internal.first_partition_month(timestamp, timestamp, ai_cost.partition_settings);

DROP FUNCTION ai_cost.retry_set_aside_changes(bigint);

DROP FUNCTION ai_cost_internal.fold_changes_apart(integer);

DROP FUNCTION ai_cost_internal.fold_changes(tid[]);

DROP FUNCTION ai_cost_internal.ceiling_breach(ai_cost_internal.call_changes);

DROP FUNCTION ai_cost_internal.wait_for_call_writers();

COMMENT ON COLUMN ai_cost.calls.cached IS 'True when your application served the answer from its own cache: no provider call, cost 0.';

COMMENT ON COLUMN ai_cost.calls.provided_cost_micros IS 'Cost the provider itself reported (e.g. OpenRouter), in micro-dollars. When set, cost_micros takes it as is instead of pricing the tokens.';

COMMENT ON COLUMN ai_cost.calls.cost_micros IS 'Cost in integer micro-dollars (1 = $0.000001), set on insert. NULL = unpriced (no price in force, or a used token kind has no price); 0 = free.';

COMMENT ON COLUMN ai_cost.calls.price_id IS 'The ai_cost.prices row that priced this call; NULL when unpriced or served from the app cache.';

CREATE OR REPLACE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  units numeric, unit text
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  SELECT ceil(l.factor * (
             greatest(coalesce($6, 0) - coalesce($8, 0) - coalesce($9, 0) - coalesce($11, 0), 0)
                                          * coalesce(l.input_per_mtok, 0)
           + (coalesce($7, 0) - coalesce($12, 0)) * coalesce(l.output_per_mtok, 0)
           + coalesce($8, 0)                     * coalesce(l.cache_read_per_mtok, 0)
           + (coalesce($9, 0) - coalesce($10, 0)) * coalesce(l.cache_write_per_mtok, 0)
           + coalesce($10, 0)                    * coalesce(l.cache_write_1h_per_mtok, 0)
           + coalesce($11, 0)                    * coalesce(l.audio_input_per_mtok, 0)
           + coalesce($12, 0)                    * coalesce(l.audio_output_per_mtok, 0)
           + coalesce($13, 0) * coalesce(l.unit_price, 0) * 1000000))::bigint,
         l.price_id,
         l.discount_id,
         CASE
           WHEN l.input_per_mtok IS NULL AND coalesce($6, 0) - coalesce($8, 0) - coalesce($9, 0) - coalesce($11, 0) > 0
             THEN 'no price for input tokens'
           WHEN l.output_per_mtok IS NULL AND coalesce($7, 0) - coalesce($12, 0) > 0 THEN 'no price for output tokens'
           WHEN l.cache_read_per_mtok IS NULL AND $8 > 0 THEN 'no price for cache read tokens'
           WHEN l.cache_write_per_mtok IS NULL AND $9 > coalesce($10, 0) THEN 'no price for cache write tokens'
           WHEN l.cache_write_1h_per_mtok IS NULL AND $10 > 0 THEN 'no price for 1-hour cache write tokens'
           WHEN l.audio_input_per_mtok IS NULL AND $11 > 0 THEN 'no price for audio input tokens'
           WHEN l.audio_output_per_mtok IS NULL AND $12 > 0 THEN 'no price for audio output tokens'
           WHEN $13 > 0 AND l.unit IS DISTINCT FROM $14 THEN 'no price per ' || $14
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider = $1 AND l.model = $2 AND l.service_tier = $3
     AND (l.tenant_id = '' OR l.tenant_id = $4)
     AND l.valid_from <= $5 AND (l.valid_to IS NULL OR l.valid_to > $5)
     AND (l.above_input_tokens = 0 OR l.above_input_tokens < $6)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1
$$;

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
  IF c.cached OR c.provided_cost_micros IS NOT NULL THEN
    RETURN QUERY SELECT 'total'::text, NULL::numeric, NULL::numeric, NULL::text, c.cost_micros::numeric,
      CASE WHEN c.cached THEN 'served from the application''s own cache: free' ELSE 'cost reported by the provider' END;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM ai_cost.explain_cost(c.provider, c.model, c.created_at, c.input_tokens, c.output_tokens,
    c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
    c.units, c.unit, c.service_tier, c.tenant_id);
END
$$;

COMMENT ON FUNCTION ai_cost.explain_cost(bigint) IS 'Breaks down the cost of recorded call call_id at today''s prices for its created_at (price row, tier, each component); compare with its stored cost_micros and price_id.';

DROP FUNCTION ai_cost_internal.cost_of(ai_cost.calls);
CREATE FUNCTION ai_cost_internal.cost_of(
  c ai_cost.calls,
  OUT cost_micros bigint, OUT price_id bigint, OUT discount_id bigint, OUT unpriced_reason text
)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pattern_model text;
BEGIN
  IF c.cached OR c.provided_cost_micros IS NOT NULL THEN
    cost_micros := CASE WHEN c.cached THEN 0 ELSE c.provided_cost_micros END;
    RETURN;
  END IF;
  IF c.input_tokens IS NULL AND c.output_tokens IS NULL AND c.units IS NULL THEN
    IF c.status = 'success' THEN
      unpriced_reason := 'no usage reported: input_tokens, output_tokens and units are all NULL';
    ELSE
      cost_micros := 0;
    END IF;
    RETURN;
  END IF;
  SELECT * INTO cost_micros, price_id, discount_id, unpriced_reason
    FROM ai_cost_internal.priced(c.provider, c.model, c.service_tier, c.tenant_id, c.created_at,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
           c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
  IF NOT FOUND THEN
    pattern_model := ai_cost_internal.pattern_model(c.provider, c.model);
    IF pattern_model IS NOT NULL THEN
      SELECT * INTO cost_micros, price_id, discount_id, unpriced_reason
        FROM ai_cost_internal.priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
               c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
               c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
    END IF;
    IF NOT FOUND OR pattern_model IS NULL THEN
      unpriced_reason := ai_cost_internal.no_price_reason(c.provider, c.model, c.service_tier, c.created_at);
    END IF;
  END IF;
  IF unpriced_reason IS NOT NULL THEN
    cost_micros := NULL;
    price_id := NULL;
    discount_id := NULL;
  END IF;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.cost_of(ai_cost.calls) IS 'The cost of a call as the trigger, reprice and explain_cost compute it: app-cache hits and provider-reported costs first, then no usage, then the price lookup by id, alias or pattern.';

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call_slowly(c ai_cost.calls) RETURNS ai_cost.calls
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  SELECT * INTO c.cost_micros, c.price_id, c.discount_id, c.unpriced_reason FROM ai_cost_internal.cost_of(c);
  IF c.unpriced_reason IS NOT NULL
     AND EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = c.provider AND p.strict) THEN
    RAISE EXCEPTION 'cannot price call of %/%: %', c.provider, c.model, c.unpriced_reason
      USING ERRCODE = 'check_violation',
            HINT = 'Provider ' || c.provider || ' is in strict mode (ai_cost.providers.strict): add a price, or turn strict mode off.';
  END IF;
  RETURN c;
END
$$;

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
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit, provided_cost_micros,
    streamed, cached, ttft_ms, total_ms, error_message, cost_micros, price_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit, c.provided_cost_micros,
    c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message,
    -- The cost trigger's test and sum (price_call below). The test's shifts are ORed
    -- into one comparison: each t >> b is 0 exactly when the trigger's
    -- t >> b = 0 holds (a negative t stays negative). The parentheses are
    -- needed: >> and | have the same precedence. Where the book does not
    -- apply the cost stays NULL, and the trigger prices the row.
    CASE WHEN c.units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
          AND NOT c.cached AND c.provided_cost_micros IS NULL
          AND NOT ai_cost_internal.price_book_has_tenant(c.tenant_id)
          AND b.valid_from <= c.created_at AND c.created_at < b.valid_to
          AND ((coalesce(c.input_tokens, 0::bigint) >> b.input_bits) | (coalesce(c.output_tokens, 0::bigint) >> b.output_bits)
               | (coalesce(c.cache_read_tokens, 0::bigint) >> b.cache_read_bits)
               | (coalesce(c.cache_write_tokens, 0::bigint) >> b.cache_write_bits)
               | (coalesce(c.cache_write_1h_tokens, 0::bigint) >> b.cache_write_1h_bits)
               | (coalesce(c.audio_input_tokens, 0::bigint) >> b.audio_input_bits)
               | (coalesce(c.audio_output_tokens, 0::bigint) >> b.audio_output_bits)) = 0::bigint
    THEN CASE
      WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens) IS NULL
      THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
            + coalesce(c.output_tokens, 0::bigint) * b.output_rate
            + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
            + 999999::bigint) / 1000000::bigint
      ELSE (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint)
                     - coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.audio_input_tokens, 0::bigint), 0::bigint) * b.input_rate
            + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint)) * b.output_rate
            + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
            + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
            + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
            + coalesce(c.audio_input_tokens, 0::bigint) * b.audio_input_rate
            + coalesce(c.audio_output_tokens, 0::bigint) * b.audio_output_rate
            + 999999::bigint) / 1000000::bigint
      END
    END,
    -- Only read with a cost beside it: the trigger sets its own otherwise.
    b.price_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           j.tenant_id, j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.units, j.unit,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        units numeric, unit text, provided_cost_micros bigint,
        streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text)
  ) c
  -- The book is hashed once per batch; each call probes it once.
  LEFT JOIN ai_cost_internal.price_book_entries() AS b
    ON b.provider = c.provider AND b.service_tier = c.service_tier AND b.model = c.model
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes or audio (most calls): three
  -- dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider || ' ' || NEW.service_tier || ' ' || NEW.model);
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] <= NEW.created_at
       AND NEW.created_at < (ai_cost_internal.price_book_windows())[slot][2]
       AND coalesce(NEW.input_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][9]::integer = 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][10]::integer = 0::bigint
       AND coalesce(NEW.cache_read_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][11]::integer = 0::bigint THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- The input part can be negative in a valid row, and is clamped as there.
      NEW.cost_micros := (greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint), 0::bigint)
                            * (ai_cost_internal.price_book_rates())[slot][2]
                          + coalesce(NEW.output_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][3]
                          + coalesce(NEW.cache_read_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][4]
                          + 999999::bigint) / 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      RETURN NEW;
    END IF;
  -- The same with cache writes or audio: all seven dimensions.
  ELSIF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider || ' ' || NEW.service_tier || ' ' || NEW.model);
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] <= NEW.created_at
       AND NEW.created_at < (ai_cost_internal.price_book_windows())[slot][2]
       AND coalesce(NEW.input_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][9]::integer = 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][10]::integer = 0::bigint
       AND coalesce(NEW.cache_read_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][11]::integer = 0::bigint
       AND coalesce(NEW.cache_write_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][12]::integer = 0::bigint
       AND coalesce(NEW.cache_write_1h_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][13]::integer = 0::bigint
       AND coalesce(NEW.audio_input_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][14]::integer = 0::bigint
       AND coalesce(NEW.audio_output_tokens, 0::bigint) >> (ai_cost_internal.price_book_rates())[slot][15]::integer = 0::bigint THEN
      -- A negative part can only come from a row the CHECK constraints
      -- refuse next (audio_output_tokens above output_tokens, say).
      NEW.cost_micros := (greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                                   - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)
                            * (ai_cost_internal.price_book_rates())[slot][2]
                          + (coalesce(NEW.output_tokens, 0::bigint) - coalesce(NEW.audio_output_tokens, 0::bigint)) * (ai_cost_internal.price_book_rates())[slot][3]
                          + coalesce(NEW.cache_read_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][4]
                          + (coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.cache_write_1h_tokens, 0::bigint)) * (ai_cost_internal.price_book_rates())[slot][5]
                          + coalesce(NEW.cache_write_1h_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][6]
                          + coalesce(NEW.audio_input_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][7]
                          + coalesce(NEW.audio_output_tokens, 0::bigint) * (ai_cost_internal.price_book_rates())[slot][8]
                          + 999999::bigint) / 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      RETURN NEW;
    END IF;
  END IF;

  -- Not covered by the book: the lookup, as priced() does it.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) <= 1000000000000::numeric) THEN
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
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider = NEW.provider AND l.model = NEW.model AND l.service_tier = NEW.service_tier
     AND (l.tenant_id = ''::text OR l.tenant_id = NEW.tenant_id)
     AND l.valid_from <= NEW.created_at AND (l.valid_to IS NULL OR l.valid_to > NEW.created_at)
     AND (l.above_input_tokens = 0::bigint OR l.above_input_tokens < NEW.input_tokens)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                                 - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) - coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_read IS NOT NULL OR coalesce(NEW.cache_read_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) <= 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) <= 0::bigint)
     AND (l_unit IS NOT DISTINCT FROM NEW.unit OR coalesce(NEW.units, 0::numeric) <= 0::numeric) THEN
    NEW.cost_micros := ceil(l_factor * (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) - coalesce(NEW.cache_read_tokens, 0::bigint)
                           - coalesce(NEW.cache_write_tokens, 0::bigint) - coalesce(NEW.audio_input_tokens, 0::bigint), 0::bigint)::numeric * r_input END
      + CASE WHEN NEW.output_tokens > 0::bigint THEN (NEW.output_tokens - coalesce(NEW.audio_output_tokens, 0::bigint))::numeric * coalesce(r_output, 0::numeric) ELSE 0::numeric END
      + CASE WHEN NEW.cache_read_tokens > 0::bigint THEN NEW.cache_read_tokens::numeric * r_cache_read ELSE 0::numeric END
      + CASE WHEN NEW.cache_write_tokens > 0::bigint
             THEN (NEW.cache_write_tokens - coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric * coalesce(r_cache_write, 0::numeric)
                + coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric * coalesce(r_cache_write_1h, 0::numeric)
             ELSE 0::numeric END
      + CASE WHEN NEW.audio_input_tokens > 0::bigint THEN NEW.audio_input_tokens::numeric * r_audio_input ELSE 0::numeric END
      + CASE WHEN NEW.audio_output_tokens > 0::bigint THEN NEW.audio_output_tokens::numeric * r_audio_output ELSE 0::numeric END
      + CASE WHEN NEW.units > 0::numeric THEN NEW.units * r_unit * 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost_internal.price_call_slowly(NEW);
END
$$;

COMMENT ON FUNCTION ai_cost_internal.price_call() IS 'Trigger: sets cost_micros, price_id, discount_id and unpriced_reason of a call (from the compiled price book for a current list price; by the price lookup or ai_cost_internal.cost_of() otherwise); raises for calls of a strict-mode provider that cannot be priced.';

CREATE OR REPLACE FUNCTION ai_cost.start_reprice(
  from_time timestamptz, to_time timestamptz, reason text,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run_id bigint;
BEGIN
  INSERT INTO ai_cost.reprice_runs (from_time, to_time, provider, model, only_unpriced, reason, total_calls)
  SELECT start_reprice.from_time, start_reprice.to_time, start_reprice.provider, start_reprice.model,
         start_reprice.only_unpriced, start_reprice.reason, count(*)
    FROM ai_cost.calls c
   WHERE c.created_at >= start_reprice.from_time AND c.created_at < start_reprice.to_time
     AND (start_reprice.provider IS NULL OR c.provider = start_reprice.provider)
     AND (start_reprice.model IS NULL OR c.model = start_reprice.model)
     AND (NOT start_reprice.only_unpriced OR c.cost_micros IS NULL)
  RETURNING id INTO run_id;
  RETURN run_id;
END
$$;

CREATE OR REPLACE PROCEDURE ai_cost.resume_reprice(run_id bigint, batch_size integer DEFAULT 5000)
LANGUAGE plpgsql AS $$
BEGIN
  WHILE ai_cost.reprice_batch(run_id, batch_size) = batch_size LOOP
    COMMIT;
  END LOOP;
  COMMIT;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms < 1 THEN 0
              ELSE least(88, 1 + pg_catalog.floor(4 * pg_catalog.ln(ms::float8) / pg_catalog.ln(2::float8) + 1e-9)::integer) END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  last integer := pg_catalog.cardinality(h);
BEGIN
  WHILE last > 0 AND coalesce(h[last], 0) = 0 LOOP
    last := last - 1;
  END LOOP;
  IF last = 0 THEN
    RETURN NULL;
  END IF;
  RETURN CASE WHEN last = pg_catalog.cardinality(h) THEN h ELSE h[1:last] END;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total bigint[];
  other bigint[];
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  IF pg_catalog.cardinality(a) >= pg_catalog.cardinality(b) THEN
    total := a;
    other := b;
  ELSE
    total := b;
    other := a;
  END IF;
  FOR slot IN 1 .. pg_catalog.cardinality(other) LOOP
    total[slot] := total[slot] + other[slot];
  END LOOP;
  RETURN ai_cost_internal.histogram_trim(total);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_apply(h bigint[], buckets integer[], counts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  width integer := coalesce(pg_catalog.cardinality(h), 0);
  slot integer;
BEGIN
  IF buckets IS NULL THEN
    RETURN h;
  END IF;
  IF h IS NULL THEN
    h := '{}';
  END IF;
  FOR i IN 1 .. pg_catalog.cardinality(buckets) LOOP
    slot := buckets[i] + 1;
    IF slot > width THEN
      h := h || pg_catalog.array_fill(0::bigint, ARRAY[slot - width]);
      width := slot;
    END IF;
    h[slot] := h[slot] + counts[i];
  END LOOP;
  IF width = 0 OR h[width] = 0 THEN
    RETURN ai_cost_internal.histogram_trim(h);
  END IF;
  RETURN h;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF histogram IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  FOR slot IN 1 .. least(89, pg_catalog.cardinality(histogram)) LOOP
    state[slot] := state[slot] + histogram[slot];
  END LOOP;
  RETURN state;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  slot integer;
BEGIN
  IF ms IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  slot := ai_cost.latency_bucket(ms) + 1;
  state[slot] := state[slot] + weight;
  RETURN state;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT -1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms
      FROM old_calls;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_values(
  provider text, model text, operation text, service_tier text, tenant_id text, user_id text, feature text,
  OUT dimension text, OUT value text
) RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES ('provider', provider), ('model', provider || '/' || model), ('operation', operation),
         ('service_tier', service_tier), ('tenant', tenant_id), ('user', user_id), ('feature', feature)
$$;

DROP FUNCTION ai_cost_internal.refresh_rollups();
CREATE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  emptied_hourly tid[];
  emptied_daily tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Every part sees the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost_internal.call_changes RETURNING *
  ), cells AS (
    -- One row per hourly group and pair of latency buckets: plain sums, no
    -- arrays built per change.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           ai_cost.latency_bucket(total_ms) AS total_bucket,
           ai_cost.latency_bucket(CASE WHEN streamed THEN ttft_ms END) AS ttft_bucket,
           sum(sign)::bigint AS calls,
           coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
           coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
           coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
           coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens,
           coalesce(sum(sign * cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(sum(sign * cache_write_tokens), 0)::bigint AS cache_write_tokens,
           coalesce(sum(sign * reasoning_tokens), 0)::bigint AS reasoning_tokens,
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint AS total_ms_calls,
           coalesce(sum(sign * total_ms), 0)::bigint AS total_ms_sum,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum
      FROM consumed
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
              unpriced_reason, total_bucket, ttft_bucket
  ), delta AS (
    -- The hourly groups, with their histograms built from the (few) buckets their changes touched.
    SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason,
           sum(calls)::bigint AS calls, sum(unpriced_calls)::bigint AS unpriced_calls,
           sum(cost_micros)::bigint AS cost_micros, sum(input_tokens)::bigint AS input_tokens,
           sum(output_tokens)::bigint AS output_tokens, sum(cache_read_tokens)::bigint AS cache_read_tokens,
           sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(total_ms_calls)::bigint AS total_ms_calls, sum(total_ms_sum)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)) AS total_ms_hist,
           sum(ttft_ms_calls)::bigint AS ttft_ms_calls, sum(ttft_ms_sum)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0)) AS ttft_ms_hist
      FROM cells
     GROUP BY hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
      FROM delta
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason
    ON CONFLICT (day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = d.calls + excluded.calls,
      unpriced_calls = d.unpriced_calls + excluded.unpriced_calls,
      cost_micros = d.cost_micros + excluded.cost_micros,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens
    RETURNING d.ctid, d.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)),
           sum(ttft_ms_calls), sum(ttft_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0))
      FROM cells
     GROUP BY hour, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'), v.dimension, v.value, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens)
      FROM delta CROSS JOIN LATERAL ai_cost_internal.dimension_values(provider, model, operation, service_tier, tenant_id, user_id, feature) AS v
     GROUP BY 1, v.dimension, v.value
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM consumed
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
         emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_daily IS NOT NULL THEN
    DELETE FROM ai_cost_internal.calls_daily WHERE ctid = ANY (emptied_daily) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;

  -- Each threshold crossed is recorded once per period and announced; the
  -- notification is delivered when this transaction commits.
  WITH crossed AS (
    SELECT s.budget_id, s.period_start, t.percent, s.spent_micros, s.limit_micros
      FROM ai_cost.budget_status s
      JOIN ai_cost.budgets b ON b.id = s.budget_id
     CROSS JOIN LATERAL unnest(b.alert_at_percent) AS t(percent)
     WHERE 100 * s.spent_micros::numeric >= t.percent * s.limit_micros::numeric
  ), recorded AS (
    INSERT INTO ai_cost.budget_alerts (budget_id, period_start, percent, spent_micros, limit_micros)
    SELECT budget_id, period_start, percent, spent_micros, limit_micros FROM crossed
    ON CONFLICT DO NOTHING
    RETURNING *
  )
  SELECT count(pg_notify('ai_cost_budget', json_build_object(
           'budget_id', r.budget_id, 'name', b.name, 'scope', b.scope, 'scope_value', b.scope_value,
           'period', b.period, 'period_start', r.period_start, 'percent', r.percent,
           'spent_micros', r.spent_micros::text, 'limit_micros', r.limit_micros::text)::text))
    INTO alerts
    FROM recorded r JOIN ai_cost.budgets b ON b.id = r.budget_id;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.refresh_rollups() IS 'Internal: folds the captured call changes into the rollups and records and announces budget thresholds crossed; run by ai_cost.refresh() under its lock.';

CREATE OR REPLACE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost_internal.call_changes, ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.calls_daily, ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  WITH bounds AS (
    SELECT date_trunc('hour', since, 'UTC') + CASE WHEN date_trunc('hour', since, 'UTC') = since
                                                  THEN interval '0' ELSE interval '1 hour' END AS first_hour,
           date_trunc('hour', until, 'UTC') AS end_hour
  )
  SELECT l.*
    FROM ai_cost.calls_hourly_live l, bounds b
   WHERE l.hour >= b.first_hour AND l.hour < b.end_hour
  UNION ALL
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    FROM ai_cost.calls c, bounds b
   WHERE c.created_at >= since AND c.created_at < until
     AND (c.created_at < b.first_hour OR c.created_at >= greatest(b.end_hour, b.first_hour))
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;

CREATE OR REPLACE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  IF ai_cost_internal.price_book_stale_at() <= now() THEN
    PERFORM ai_cost_internal.compile_price_book();
  END IF;
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.alerts INTO applied, alerts FROM ai_cost_internal.refresh_rollups() AS r;
  ELSE
    RAISE NOTICE 'ai_cost.refresh(): the rollups are being refreshed by another session: skipped';
  END IF;
  IF views THEN
    IF pg_try_advisory_xact_lock(x'6169636f73745f76'::bigint) THEN
      views_done := true;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_share;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_feature;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_latency_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_top_spenders;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_trends;
    ELSE
      RAISE NOTICE 'ai_cost.refresh(): the materialized views are being rebuilt by another session: skipped';
    END IF;
  END IF;
  IF rollups_done OR views_done THEN
    UPDATE ai_cost_internal.refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

DROP VIEW ai_cost.refresh_status;
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.call_changes) AS pending_changes
  FROM ai_cost_internal.refresh_state s;

COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, and how many changes wait for the next run.';

CREATE OR REPLACE FUNCTION ai_cost.maintain_partitions()
RETURNS TABLE (action text, partition_name text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  cutoff timestamptz;
  month_start timestamp;
  moved bigint;
  pending bigint;
  old record;
  locked boolean := false;
BEGIN
  IF NOT ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is not partitioned: nothing to maintain (see ai_cost.partition_calls())';
    RETURN;
  END IF;
  SELECT * INTO settings FROM ai_cost.partition_settings;

  FOR month_start IN
    SELECT m FROM generate_series(this_month, this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
    UNION
    SELECT DISTINCT date_trunc('month', d.created_at AT TIME ZONE 'UTC') FROM ai_cost.calls_default d
    ORDER BY 1
  LOOP
    IF NOT EXISTS (SELECT FROM ai_cost.call_partitions p WHERE p.range_start = month_start AT TIME ZONE 'UTC') THEN
      moved := ai_cost_internal.add_month_partition(month_start);
      action := 'created';
      partition_name := 'ai_cost.' || ai_cost_internal.partition_name(month_start);
      detail := CASE WHEN moved > 0 THEN moved || ' calls moved from ai_cost.calls_default' END;
      RETURN NEXT;
    END IF;
  END LOOP;

  IF settings.retain_months IS NOT NULL THEN
    cutoff := (this_month - make_interval(months => settings.retain_months)) AT TIME ZONE 'UTC';
    FOR old IN
      SELECT p.partition, p.range_start, p.range_end FROM ai_cost.call_partitions p
       WHERE NOT p.is_default AND p.range_end <= cutoff ORDER BY p.range_start
    LOOP
      IF NOT locked THEN
        -- Inserts in flight finish first; their changes are then visible below.
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.call_changes c
       WHERE c.created_at >= old.range_start AND c.created_at < old.range_end;
      partition_name := old.partition::text;
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      ELSE
        DELETE FROM ai_cost_internal.request_ids r
         WHERE r.created_at >= old.range_start AND r.created_at < old.range_end;
        IF settings.retention = 'drop' THEN
          EXECUTE format('DROP TABLE %s', old.partition);
          action := 'dropped';
        ELSE
          EXECUTE format('ALTER TABLE ai_cost.calls DETACH PARTITION %s', old.partition);
          action := 'detached';
        END IF;
        detail := format('calls from %s to %s; their totals stay in the rollups', old.range_start, old.range_end);
      END IF;
      RETURN NEXT;
    END LOOP;
  END IF;

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
END
$$;

COMMENT ON FUNCTION ai_cost.maintain_partitions() IS 'For a partitioned ai_cost.calls: creates the partitions of the next months_ahead months, moves rows out of the default partition, and drops or detaches partitions past retain_months once the rollups hold them (ai_cost.partition_settings). Returns one row per action. ai_cost.refresh() runs it once a day.';

CREATE OR REPLACE FUNCTION ai_cost.partition_calls(
  OUT partitions integer, OUT calls_copied bigint, OUT duration_ms numeric
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started timestamptz := clock_timestamp();
  old_table oid;
  old_type oid;
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  month_start timestamp;
  sequence_name text;
  next_id bigint;
  table_comment text;
  table_acl aclitem[];
  table_owner oid;
  rls record;
  item record;
  saved_indexes text[];
  saved_constraints text[];
  saved_triggers text[];
  saved_policies text[];
  saved_column_acls jsonb;
  saved_functions jsonb;
  statement text;
BEGIN
  IF ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is already partitioned: nothing to do';
    partitions := (SELECT count(*) FROM ai_cost.call_partitions);
    calls_copied := 0;
    duration_ms := 0;
    RETURN;
  END IF;
  LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
  old_table := 'ai_cost.calls'::regclass;
  SELECT reltype, relowner, relacl INTO old_type, table_owner, table_acl FROM pg_class WHERE oid = old_table;
  SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced INTO rls FROM pg_class WHERE oid = old_table;
  table_comment := obj_description(old_table, 'pg_class');
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- A unique index that is not a constraint cannot be given created_at
  -- without knowing what it is for: refuse rather than guess.
  IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = old_table)) THEN
    RAISE EXCEPTION 'cannot partition ai_cost.calls: it has a unique index that is not a constraint (%)',
      (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique)
      USING HINT = 'Drop it or make it a UNIQUE constraint, then run ai_cost.partition_calls() again.';
  END IF;

  -- Save what is recreated on the new table, as SQL that names
  -- ai_cost.calls, which the new table will be called by then.
  saved_indexes := ARRAY(
    SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
     WHERE i.indrelid = old_table AND NOT i.indisunique ORDER BY i.indexrelid);
  saved_constraints := ARRAY(
    SELECT format('ALTER TABLE ai_cost.calls ADD CONSTRAINT %I %s (%s)', c.conname,
                  CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)
                     FROM unnest(c.conkey || CASE WHEN 'created_at' = ANY (
                            SELECT attname FROM pg_attribute WHERE attrelid = old_table AND attnum = ANY (c.conkey))
                          THEN '{}'::int2[] ELSE ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = old_table AND attname = 'created_at')] END)
                          WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = old_table AND a.attnum = k.attnum))
      FROM pg_constraint c WHERE c.conrelid = old_table AND c.contype IN ('p', 'u') ORDER BY c.contype, c.oid);
  saved_triggers := ARRAY(
    SELECT s.sql FROM (
      SELECT 1 AS pass, t.tgname, pg_get_triggerdef(t.oid) AS sql
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal
      UNION ALL
      SELECT 2, t.tgname, format('COMMENT ON TRIGGER %I ON ai_cost.calls IS %L', t.tgname, obj_description(t.oid, 'pg_trigger'))
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NOT NULL
    ) AS s ORDER BY pass, tgname);
  saved_column_acls := coalesce((
    SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'acl', a.attacl))
      FROM pg_attribute a WHERE a.attrelid = old_table AND a.attnum > 0 AND a.attacl IS NOT NULL), '[]');
  saved_policies := ARRAY(
    SELECT format('CREATE POLICY %I ON ai_cost.calls AS %s FOR %s TO %s%s%s', p.policyname, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
      FROM pg_policies p WHERE p.schemaname = 'ai_cost' AND p.tablename = 'calls');
  -- Functions that take or return a calls row depend on the old row type:
  -- they are dropped with it and created again for the new one.
  saved_functions := coalesce((
    SELECT jsonb_agg(jsonb_build_object('definition', pg_get_functiondef(p.oid), 'signature', p.oid::regprocedure::text,
                                        'comment', obj_description(p.oid, 'pg_proc'), 'owner', p.proowner, 'acl', p.proacl))
      FROM pg_proc p
     WHERE p.oid IN (SELECT d.objid FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass
                        AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid = old_type)
                          OR (d.refclassid = 'pg_class'::regclass AND d.refobjid = old_table)))), '[]');

  sequence_name := pg_get_serial_sequence('ai_cost.calls', 'id');
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %s', sequence_name) INTO next_id;

  CREATE TABLE ai_cost.calls_being_partitioned (
    LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED
                       INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS
  ) PARTITION BY RANGE (created_at);
  CREATE TABLE ai_cost.calls_default PARTITION OF ai_cost.calls_being_partitioned DEFAULT;
  FOR month_start IN
    SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM ai_cost.calls
    UNION
    SELECT m FROM generate_series(this_month, this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    EXECUTE format('CREATE TABLE ai_cost.%I PARTITION OF ai_cost.calls_being_partitioned FOR VALUES FROM (%L) TO (%L)',
                   ai_cost_internal.partition_name(month_start), month_start AT TIME ZONE 'UTC',
                   (month_start + interval '1 month') AT TIME ZONE 'UTC');
  END LOOP;

  -- No trigger on the new table yet: rows keep their cost, and the change
  -- capture does not see them again.
  INSERT INTO ai_cost.calls_being_partitioned OVERRIDING SYSTEM VALUE SELECT * FROM ai_cost.calls;
  GET DIAGNOSTICS calls_copied = ROW_COUNT;
  TRUNCATE ai_cost_internal.request_ids;
  INSERT INTO ai_cost_internal.request_ids (request_id, created_at)
  SELECT request_id, created_at FROM ai_cost.calls WHERE request_id IS NOT NULL;

  -- Swap. DROP without CASCADE: anything else that still depends on the old
  -- table (a view, say) stops the conversion here, naming itself.
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(signature text) LOOP
    EXECUTE format('DROP FUNCTION %s', item.signature);
  END LOOP;
  DROP TABLE ai_cost.calls;
  ALTER TABLE ai_cost.calls_being_partitioned RENAME TO calls;
  EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence('ai_cost.calls', 'id'), 'calls_id_seq');
  PERFORM setval('ai_cost.calls_id_seq', next_id, false);
  EXECUTE format('ALTER TABLE ai_cost.calls OWNER TO %s', table_owner::regrole);
  EXECUTE format('COMMENT ON TABLE ai_cost.calls IS %L', table_comment);
  PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, table_acl);
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_column_acls) AS c(name text, acl aclitem[]) LOOP
    PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, item.acl, item.name);
  END LOOP;

  FOREACH statement IN ARRAY saved_constraints || saved_indexes LOOP
    EXECUTE statement;
  END LOOP;
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(definition text, signature text, comment text, owner oid, acl aclitem[]) LOOP
    EXECUTE item.definition;
    EXECUTE format('ALTER FUNCTION %s OWNER TO %s', item.signature, item.owner::regrole);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', item.signature, item.comment);
    PERFORM ai_cost_internal.restore_acl('FUNCTION', item.signature, item.owner, item.acl);
  END LOOP;
  FOREACH statement IN ARRAY saved_triggers || saved_policies LOOP
    EXECUTE statement;
  END LOOP;
  IF rls.enabled THEN
    ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  END IF;
  IF rls.forced THEN
    ALTER TABLE ai_cost.calls FORCE ROW LEVEL SECURITY;
  END IF;

  -- Idempotency by ai_cost_internal.request_ids (see the top of this file).
  -- tg_calls__claim_request_id sorts before tg_calls__price_call, so a
  -- duplicate is skipped before it is priced.
  CREATE TRIGGER tg_calls__claim_request_id
    BEFORE INSERT ON ai_cost.calls
    FOR EACH ROW WHEN (NEW.request_id IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.claim_request_id();
  CREATE TRIGGER tg_calls__move_request_id
    BEFORE UPDATE OF request_id, created_at ON ai_cost.calls
    FOR EACH ROW WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_cost_internal.move_request_id();
  CREATE TRIGGER tg_calls__end_request_id_move
    AFTER UPDATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.end_request_id_move();
  CREATE TRIGGER tg_calls__release_request_ids
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();
  CREATE TRIGGER tg_calls__truncate_request_ids
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
  partitions := (SELECT count(*) FROM ai_cost.call_partitions);
  duration_ms := round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_reader;
    -- Every table and view but the calls and their partitions (reading a
    -- partition directly would bypass the column grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id)
       ON ai_cost.calls TO ai_cost_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
                              ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never the calls' content.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb) TO ai_cost_writer;
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
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets
       TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION ai_cost_internal.compile_price_book() TO ai_cost_admin;
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
    GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost.enable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    RAISE EXCEPTION 'role ai_cost_tenant_reader does not exist: create it (CREATE ROLE ai_cost_tenant_reader NOLOGIN) and run ai-cost migrate again';
  END IF;
  ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly ENABLE ROW LEVEL SECURITY;
END
$$;

COMMENT ON FUNCTION ai_cost.enable_tenant_isolation() IS 'Turns on row-level security for calls, calls_hourly and conversations_hourly: members of ai_cost_tenant_reader then see only rows of the tenant in the session setting ai_cost.tenant_id.';

CREATE OR REPLACE FUNCTION ai_cost.disable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost.calls DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly DISABLE ROW LEVEL SECURITY;
END
$$;

COMMENT ON FUNCTION ai_cost.disable_tenant_isolation() IS 'Turns row-level security for calls and their rollups off again: every role with SELECT sees every row.';

DROP VIEW ai_cost.set_aside_calls;
-- Set-aside changes go back to the change table.
INSERT INTO ai_cost_internal.call_changes
SELECT sign, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
       conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id
  FROM ai_cost_internal.set_aside_changes;
DROP TABLE ai_cost_internal.set_aside_changes;
ALTER TABLE ai_cost_internal.call_changes DROP COLUMN call_id;
DROP TABLE ai_cost.tenant_access;
ALTER TABLE ai_cost.calls DROP CONSTRAINT "total cost_micros must be at most 1e10 ($10,000 a call)";
ALTER TABLE ai_cost.calls DROP CONSTRAINT "provided_cost_micros must be at most 1e10 ($10,000 a call)";
ALTER TABLE ai_cost.calls DROP CONSTRAINT "token counts must be at most 1e10 (ten billion)";
ALTER TABLE ai_cost.calls ADD CONSTRAINT "token counts must be at most 1e12 (one trillion)"
  CHECK (input_tokens <= 1e12 AND output_tokens <= 1e12 AND cache_read_tokens <= 1e12
     AND cache_write_tokens <= 1e12 AND reasoning_tokens <= 1e12 AND cache_write_1h_tokens <= 1e12
     AND audio_input_tokens <= 1e12 AND audio_output_tokens <= 1e12);
ALTER TABLE ai_cost.calls DROP COLUMN computed_cost_micros;
ALTER TABLE ai_cost.providers DROP COLUMN reports_own_cost;

-- Execute rights as release 0.1.0 left them: PUBLIC may run what it did not
-- revoke, and each role what its grant_roles() gave.
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal TO PUBLIC;
DO $$
DECLARE
  role_name text;
BEGIN
  FOR role_name IN SELECT rolname FROM pg_catalog.pg_roles
                    WHERE rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader') LOOP
    EXECUTE format('REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM %I', role_name);
  END LOOP;
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    REVOKE USAGE ON SCHEMA ai_cost_internal FROM ai_cost_reader;
  END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION ai_cost.refresh(boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.maintain_partitions() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.partition_calls() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
  ai_cost_internal.close_previous_price(), ai_cost_internal.forbid_price_delete(),
  ai_cost_internal.price_sources_changed(), ai_cost_internal.price_call(),
  ai_cost_internal.capture_call_changes(), ai_cost_internal.truncate_rollups(),
  ai_cost_internal.claim_request_id(), ai_cost_internal.move_request_id(),
  ai_cost_internal.end_request_id_move(), ai_cost_internal.release_request_ids(),
  ai_cost_internal.maintain_partitions_when_due(), ai_cost_internal.compile_price_book()
  FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.enable_tenant_isolation() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.disable_tenant_isolation() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost_internal.create_roles(), ai_cost_internal.grant_roles() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.schedule_refresh() FROM PUBLIC;
SELECT ai_cost_internal.grant_roles();
