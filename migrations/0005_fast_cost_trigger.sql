-- Up Migration
--
-- A faster cost trigger, and two pricing rules made stricter.
--
-- Speed. The trigger runs for every inserted call, so its cost is the ledger's
-- write cost. Measured on PostgreSQL 15 (backend CPU per row for a bulk
-- INSERT ... SELECT, `npm run bench trigger` for wall time): calling
-- ai_cost._private_priced() from the trigger cost about 23 us a row on top of
-- 5 us for the insert itself. Of that, about 5 us was the pinned search_path
-- (PostgreSQL before 17 recomputes the search path on every SET and RESET)
-- and about 9 us the cost expression, which converts and multiplies every
-- billing dimension, present or not. The lookup itself is about 5 us.
--
-- So the trigger now runs the same lookup as _private_priced() (same table,
-- same conditions, same order) but fetches the rates and does the arithmetic
-- itself, only for the dimensions the call used. Anything unusual (no price
-- row, a used dimension without a rate, a model matched by pattern, a strict
-- provider) goes the old way, through _private_cost_of(). The two computations
-- must agree: test/pricing-fast-path.test.ts checks the trigger against
-- _private_cost_of() on calls covering every dimension, tier and override.
--
-- The trigger function does not pin search_path. It is SECURITY INVOKER (it
-- runs with the inserting user's rights, so a hijacked name could do nothing
-- the user could not do anyway), every table is schema-qualified, and every
-- operator and function it uses has exactly matching built-in argument types
-- (explicit casts where types differ), which PostgreSQL always resolves in
-- pg_catalog first, before any schema on the path. test/pricing-fast-path
-- also inserts with a hostile search_path that shadows them.
--
-- Rules. A successful call that reports no usage at all (no token count and
-- no units, e.g. an OpenAI stream without stream_options.include_usage) was
-- priced at 0. That is the silent $0 this ledger exists to prevent: it is now
-- unpriced, with the reason 'no usage reported'. A failed or cancelled call
-- that reports no usage still costs 0: providers do not bill a request that
-- consumed nothing. And units of NaN or Infinity no longer make the trigger
-- fail with "cannot convert NaN to bigint": the trigger leaves such a row to
-- the CHECK constraint, whose message names the problem.

CREATE OR REPLACE FUNCTION ai_cost._private_cost_of(
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
    FROM ai_cost._private_priced(c.provider, c.model, c.service_tier, c.tenant_id, c.created_at,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
           c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
  IF NOT FOUND THEN
    pattern_model := ai_cost._private_pattern_model(c.provider, c.model);
    IF pattern_model IS NOT NULL THEN
      SELECT * INTO cost_micros, price_id, discount_id, unpriced_reason
        FROM ai_cost._private_priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
               c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
               c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
    END IF;
    IF NOT FOUND OR pattern_model IS NULL THEN
      unpriced_reason := ai_cost._private_no_price_reason(c.provider, c.model, c.service_tier, c.created_at);
    END IF;
  END IF;
  IF unpriced_reason IS NOT NULL THEN
    cost_micros := NULL;
    price_id := NULL;
    discount_id := NULL;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost._private_cost_of(ai_cost.calls) IS 'The cost of a call as the trigger, reprice and explain_cost compute it: app-cache hits and provider-reported costs first, then no usage, then the price lookup by id, alias or pattern.';

-- The trigger's way for every call its fast path does not take: the call
-- with its cost as _private_cost_of() computes it, or an error for a call of a
-- strict-mode provider that cannot be priced.
CREATE FUNCTION ai_cost._private_price_call_slowly(c ai_cost.calls) RETURNS ai_cost.calls
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  SELECT * INTO c.cost_micros, c.price_id, c.discount_id, c.unpriced_reason FROM ai_cost._private_cost_of(c);
  IF c.unpriced_reason IS NOT NULL
     AND EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = c.provider AND p.strict) THEN
    RAISE EXCEPTION 'cannot price call of %/%: %', c.provider, c.model, c.unpriced_reason
      USING ERRCODE = 'check_violation',
            HINT = 'Provider ' || c.provider || ' is in strict mode (ai_cost.providers.strict): add a price, or turn strict mode off.';
  END IF;
  RETURN c;
END
$$;
COMMENT ON FUNCTION ai_cost._private_price_call_slowly(ai_cost.calls) IS 'The cost trigger''s path for calls without a plain price: pattern matches, unpriced reasons, strict mode.';

-- Sets cost_micros, price_id, discount_id and unpriced_reason of a call. The
-- common case (a price row found by exact id or alias, every used dimension
-- priced) is computed here in one lookup; everything else goes through
-- _private_cost_of(). See the top of this migration for why, and why there
-- is no SET search_path.
CREATE OR REPLACE FUNCTION ai_cost._private_price_call() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_unit numeric;
BEGIN
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
    RETURN ai_cost._private_price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_unit
    FROM ai_cost._private_price_lookup l
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
  RETURN ai_cost._private_price_call_slowly(NEW);
END
$$;
COMMENT ON FUNCTION ai_cost._private_price_call() IS 'Trigger: sets cost_micros, price_id, discount_id and unpriced_reason of a call (fast path for a found price with every used rate; _private_cost_of() otherwise); raises for calls of a strict-mode provider that cannot be priced.';

-- Down Migration

DROP FUNCTION ai_cost._private_price_call_slowly(ai_cost.calls);
CREATE OR REPLACE FUNCTION ai_cost._private_cost_of(
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
  SELECT * INTO cost_micros, price_id, discount_id, unpriced_reason
    FROM ai_cost._private_priced(c.provider, c.model, c.service_tier, c.tenant_id, c.created_at,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
           c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
  IF NOT FOUND THEN
    pattern_model := ai_cost._private_pattern_model(c.provider, c.model);
    IF pattern_model IS NOT NULL THEN
      SELECT * INTO cost_micros, price_id, discount_id, unpriced_reason
        FROM ai_cost._private_priced(c.provider, pattern_model, c.service_tier, c.tenant_id, c.created_at,
               c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
               c.audio_input_tokens, c.audio_output_tokens, c.units, c.unit);
    END IF;
    IF NOT FOUND OR pattern_model IS NULL THEN
      unpriced_reason := ai_cost._private_no_price_reason(c.provider, c.model, c.service_tier, c.created_at);
    END IF;
  END IF;
  IF unpriced_reason IS NOT NULL THEN
    cost_micros := NULL;
    price_id := NULL;
    discount_id := NULL;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost._private_price_call() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL THEN
    NEW.cost_micros := CASE WHEN NEW.cached THEN 0 ELSE NEW.provided_cost_micros END;
    NEW.price_id := NULL;
    NEW.discount_id := NULL;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  SELECT * INTO NEW.cost_micros, NEW.price_id, NEW.discount_id, NEW.unpriced_reason
    FROM ai_cost._private_priced(NEW.provider, NEW.model, NEW.service_tier, NEW.tenant_id, NEW.created_at,
           NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens,
           NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens, NEW.units, NEW.unit);
  IF NOT FOUND OR NEW.unpriced_reason IS NOT NULL THEN
    SELECT * INTO NEW.cost_micros, NEW.price_id, NEW.discount_id, NEW.unpriced_reason
      FROM ai_cost._private_cost_of(NEW);
    IF NEW.unpriced_reason IS NOT NULL
       AND EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = NEW.provider AND p.strict) THEN
      RAISE EXCEPTION 'cannot price call of %/%: %', NEW.provider, NEW.model, NEW.unpriced_reason
        USING ERRCODE = 'check_violation',
              HINT = 'Provider ' || NEW.provider || ' is in strict mode (ai_cost.providers.strict): add a price, or turn strict mode off.';
    END IF;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost._private_cost_of(ai_cost.calls) IS 'Internal: cost_micros, price_id, discount_id and unpriced_reason for a call row, as the cost trigger computes them.';
COMMENT ON FUNCTION ai_cost._private_price_call() IS 'Trigger: sets cost_micros, price_id, discount_id and unpriced_reason of a call; raises for calls of a strict-mode provider that cannot be priced.';
