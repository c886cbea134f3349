-- Up Migration
--
-- Organisation-wide discounts (sql/ holds each definition; this step brings
-- the schema there). A row of ai_cost.tenant_discounts without a tenant_id
-- applies to every call: an enterprise agreement or a committed-use
-- discount, percent off list prices for everything, a provider or a model.
-- One discount applies to a call, never two: a tenant's own price or
-- discount replaces the organisation's for its calls. The price lookup ranks
-- them so; the price book compiles the organisation's discount into its
-- rates and names it, so the trigger and insert_calls set discount_id.

SET LOCAL check_function_bodies = off;

-- The lookup's ranks make room for the organisation's discounts.
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
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, reasoning_per_mtok, cache_read_audio_per_mtok
    FROM priced
  UNION ALL
  -- List prices with a tenant's or the organisation's discount, for the
  -- discount's period.
  SELECT p.provider, p.name, p.service_tier, coalesce(d.tenant_id, ''),
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END
           + CASE WHEN d.tenant_id IS NULL THEN 3 ELSE 0 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price, p.reasoning_per_mtok, p.cache_read_audio_per_mtok
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

COMMENT ON TABLE ai_cost_internal.price_lookup IS 'Internal: prices resolved for aliases, tenants and discounts (tenant_id '''' for what applies to everyone), maintained from ai_cost.prices, ai_cost.model_aliases and ai_cost.tenant_discounts.';

-- The compiled book names the discount it applies: built again, and
-- compiled below.
DROP FUNCTION ai_cost_internal.price_book_entries();
DROP TABLE ai_cost_internal.price_book;
CREATE TABLE ai_cost_internal.price_book (
  slot integer PRIMARY KEY,
  key text NOT NULL UNIQUE,
  provider text NOT NULL,
  service_tier text NOT NULL,
  model text NOT NULL,
  price_id bigint NOT NULL,
  discount_id bigint,
  input_rate bigint NOT NULL, output_rate bigint NOT NULL, cache_read_rate bigint NOT NULL,
  cache_write_rate bigint NOT NULL, cache_write_1h_rate bigint NOT NULL,
  audio_input_rate bigint NOT NULL, audio_output_rate bigint NOT NULL,
  reasoning_rate bigint NOT NULL, cache_read_audio_rate bigint NOT NULL,
  input_bits integer NOT NULL, output_bits integer NOT NULL, cache_read_bits integer NOT NULL,
  cache_write_bits integer NOT NULL, cache_write_1h_bits integer NOT NULL,
  audio_input_bits integer NOT NULL, audio_output_bits integer NOT NULL,
  reasoning_bits integer NOT NULL, cache_read_audio_bits integer NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz NOT NULL
);
COMMENT ON TABLE ai_cost_internal.price_book IS 'Internal: the compiled price book (current list prices, less the organisation''s discount, as integer picodollars per token), written by ai_cost_internal.compile_price_book().';

CREATE FUNCTION ai_cost_internal.price_book_entries() RETURNS SETOF ai_cost_internal.price_book
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 50 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT * FROM ai_cost_internal.price_book;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_book_entries() IS 'Internal: the rows of ai_cost_internal.price_book, with a planner estimate that makes ai_cost.insert_calls() hash them.';

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost_internal.price_book;
  WITH in_force AS (
    -- Per key the row a call without terms of its own takes now, below any
    -- long-context tier: the list price with the organisation's narrowest
    -- discount, or the list price (the lowest rank, as the lookup orders).
    SELECT DISTINCT ON (l.provider, l.service_tier, l.model) l.*
      FROM ai_cost_internal.price_lookup l
     WHERE l.tenant_id = '' AND l.above_input_tokens = 0
       AND l.valid_from <= now() AND (l.valid_to IS NULL OR l.valid_to > now())
       AND strpos(l.provider, ' ') = 0 AND strpos(l.model, ' ') = 0
     ORDER BY l.provider, l.service_tier, l.model, l.rank
  ), list_prices AS (
    -- A key is three words; provider and model must hold no space, so no
    -- other (provider, tier, model) can spell the same key.
    SELECT l.provider || ' ' || l.service_tier || ' ' || l.model AS key, l.provider, l.service_tier, l.model,
           l.price_id, l.discount_id,
           -- The row's validity, cut to the instants around now where no other
           -- row of the key starts or ends: a list price runs on past the start
           -- or end of a discount on it, which then decides the price.
           greatest(l.valid_from, (SELECT max(b.at) FROM ai_cost_internal.price_lookup o
                                    CROSS JOIN LATERAL (VALUES (o.valid_from), (o.valid_to)) AS b(at)
                                   WHERE o.provider = l.provider AND o.model = l.model AND o.service_tier = l.service_tier
                                     AND o.tenant_id = '' AND o.above_input_tokens = 0 AND b.at <= now())) AS valid_from,
           least(l.valid_to, (SELECT min(b.at) FROM ai_cost_internal.price_lookup o
                               CROSS JOIN LATERAL (VALUES (o.valid_from), (o.valid_to)) AS b(at)
                              WHERE o.provider = l.provider AND o.model = l.model AND o.service_tier = l.service_tier
                                AND o.tenant_id = '' AND o.above_input_tokens = 0 AND b.at > now())) AS valid_to,
           (SELECT min(t.above_input_tokens) FROM ai_cost_internal.price_lookup t
             WHERE t.provider = l.provider AND t.model = l.model AND t.service_tier = l.service_tier
               AND t.tenant_id = '' AND t.above_input_tokens > 0) AS next_tier_above,
           -- The discount is taken off each rate: factor x sum = sum of factor x rate, exactly.
           ARRAY[l.input_per_mtok * l.factor, l.output_per_mtok * l.factor, l.cache_read_per_mtok * l.factor,
                 l.cache_write_per_mtok * l.factor, l.cache_write_1h_per_mtok * l.factor,
                 l.audio_input_per_mtok * l.factor, l.audio_output_per_mtok * l.factor,
                 coalesce(l.reasoning_per_mtok, l.output_per_mtok) * l.factor,
                 coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok) * l.factor] AS per_mtok
      FROM in_force l
  ), compilable AS (
    SELECT row_number() OVER (ORDER BY p.key) AS slot, p.*,
           -- The rates in picodollars per token (0: none).
           ARRAY(SELECT coalesce((r.rate * 1000000)::bigint, 0) FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS rates,
           -- Per dimension the bits a token count may use (see the cost trigger in 060_cost.sql):
           -- 0 without a rate; for input below the first long-context tier,
           -- the largest power of two not above its threshold + 1.
           ARRAY(SELECT CASE WHEN r.rate IS NULL THEN 0
                             WHEN r.n = 1 AND p.next_tier_above IS NOT NULL
                             THEN least(30, floor(log(2::numeric, p.next_tier_above + 1))::integer)
                             ELSE 30 END
                   FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS bits
      FROM list_prices p
     WHERE NOT EXISTS (SELECT FROM unnest(p.per_mtok) AS r(rate)
                        WHERE r.rate * 1000000 <> trunc(r.rate * 1000000) OR r.rate > 1000)
  )
  INSERT INTO ai_cost_internal.price_book
  SELECT c.slot, c.key, c.provider, c.service_tier, c.model, c.price_id, c.discount_id,
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7], c.rates[8], c.rates[9],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7], c.bits[8], c.bits[9],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c;

  -- The same book as constants for the cost trigger, the bits as masks.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce('{' || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits), coalesce(b.discount_id::text, 'NULL')),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce('{' || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
    INTO book_slots, book_rates, book_windows
    FROM ai_cost_internal.price_book b;

  SELECT jsonb_object_agg(t.tenant_id, true) INTO own_price_tenants
    FROM (SELECT DISTINCT l.tenant_id FROM ai_cost_internal.price_lookup l WHERE l.tenant_id <> '') t;

  -- The first moment a price in the lookup starts or ends after now: from
  -- then on the book no longer holds every price that applies.
  SELECT min(b.at) INTO stale_at
    FROM (SELECT l.valid_from AS at FROM ai_cost_internal.price_lookup l WHERE l.valid_from > now()
          UNION ALL
          SELECT l.valid_to FROM ai_cost_internal.price_lookup l WHERE l.valid_to > now()) b;

  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_slot(key text) RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.->>) $1 AS pg_catalog.int4)', book_slots));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_rates() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_rates));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_windows() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])', book_windows));
  -- Without any such tenant the body is the constant false, which the
  -- planner folds out of the trigger's condition.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_has_tenant(tenant_id text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN own_price_tenants IS NULL THEN 'SELECT false'
         ELSE format('SELECT coalesce(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.?) $1, false)', own_price_tenants) END);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_stale_at() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz)', coalesce(stale_at, 'infinity')));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.compile_price_book() IS 'Internal: rewrites the compiled price book (ai_cost_internal.price_book_*) from the resolved price lookup.';

-- A discount with tenant_id '' already applied to every call in the lookup
-- (while the book ignored it): it becomes what it did, an organisation
-- discount.
ALTER TABLE ai_cost.tenant_discounts
  ALTER COLUMN tenant_id DROP NOT NULL,
  DROP CONSTRAINT "discounts for one tenant and scope must not overlap in time";
UPDATE ai_cost.tenant_discounts SET tenant_id = NULL WHERE tenant_id = '';
ALTER TABLE ai_cost.tenant_discounts
  ADD CONSTRAINT "discount tenant_id must not be empty: NULL is every tenant" CHECK (tenant_id <> ''),
  ADD CONSTRAINT "discounts for one tenant and scope must not overlap in time"
    EXCLUDE USING gist ((coalesce(tenant_id, '')) WITH =, (coalesce(provider, '')) WITH =, (coalesce(model, '')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&);
COMMENT ON TABLE ai_cost.tenant_discounts IS 'Negotiated percentage discounts on list prices, for one tenant or (tenant_id NULL) for the whole organisation: on all calls, one provider''s, or one model''s. One discount applies to a call, never two: a tenant''s own rows in ai_cost.prices win, then the tenant''s narrowest discount, then the organisation''s narrowest discount.';
COMMENT ON COLUMN ai_cost.tenant_discounts.tenant_id IS 'The tenant whose calls get the discount; NULL for an organisation-wide discount (an enterprise agreement, committed-use credits) on every call, which a tenant''s own price or discount replaces for that tenant.';

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
  provider text, model text, at timestamptz DEFAULT now(),
  input_tokens bigint DEFAULT NULL, output_tokens bigint DEFAULT NULL,
  cache_read_tokens bigint DEFAULT NULL, cache_write_tokens bigint DEFAULT NULL,
  cache_write_1h_tokens bigint DEFAULT NULL, audio_input_tokens bigint DEFAULT NULL,
  audio_output_tokens bigint DEFAULT NULL, units numeric DEFAULT NULL, unit text DEFAULT NULL,
  service_tier text DEFAULT 'standard', tenant_id text DEFAULT NULL,
  reasoning_tokens bigint DEFAULT NULL, cache_read_audio_tokens bigint DEFAULT NULL
) RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
  p ai_cost_internal.price_lookup;
  priced record;
  write_1h bigint := coalesce(cache_write_1h_tokens, 0);
  write_5m bigint := coalesce(cache_write_tokens, 0) - write_1h;
  cached_audio bigint := coalesce(cache_read_audio_tokens, 0);
BEGIN
  c.provider := provider; c.model := model; c.created_at := at; c.service_tier := service_tier;
  c.tenant_id := tenant_id; c.cached := false;
  c.input_tokens := input_tokens; c.output_tokens := output_tokens;
  c.cache_read_tokens := cache_read_tokens; c.cache_write_tokens := cache_write_tokens;
  c.cache_write_1h_tokens := cache_write_1h_tokens; c.audio_input_tokens := audio_input_tokens;
  c.audio_output_tokens := audio_output_tokens; c.reasoning_tokens := reasoning_tokens;
  c.cache_read_audio_tokens := cache_read_audio_tokens; c.units := units; c.unit := unit;
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
  -- Reasoning has a row of its own only where the price bills it apart;
  -- otherwise it is in the output row, as it is in output_tokens.
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, d.quantity * d.rate * d.scale * p.factor, d.detail
    FROM (VALUES
      ('input', greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - write_5m - write_1h
                         - (coalesce(audio_input_tokens, 0) - cached_audio), 0)::numeric, p.input_per_mtok, '1M tokens', 1, NULL),
      ('cache read', (coalesce(cache_read_tokens, 0) - cached_audio)::numeric, p.cache_read_per_mtok, '1M tokens', 1, NULL),
      ('cache read (audio)', cached_audio::numeric, coalesce(p.cache_read_audio_per_mtok, p.cache_read_per_mtok), '1M tokens', 1,
       CASE WHEN p.cache_read_audio_per_mtok IS NULL THEN 'at the cache read rate: the price has no cache_read_audio_per_mtok' END),
      ('cache write (5 min)', write_5m::numeric, p.cache_write_per_mtok, '1M tokens', 1, NULL),
      ('cache write (1 hour)', write_1h::numeric, p.cache_write_1h_per_mtok, '1M tokens', 1, NULL),
      ('audio input', (coalesce(audio_input_tokens, 0) - cached_audio)::numeric, p.audio_input_per_mtok, '1M tokens', 1, NULL),
      ('output', CASE WHEN p.reasoning_per_mtok IS NULL THEN coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0)
                      ELSE greatest(coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0) - coalesce(reasoning_tokens, 0), 0)
                 END::numeric, p.output_per_mtok, '1M tokens', 1, NULL),
      ('reasoning', CASE WHEN p.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce(reasoning_tokens, 0) END::numeric,
       p.reasoning_per_mtok, '1M tokens', 1, NULL),
      ('audio output', coalesce(audio_output_tokens, 0)::numeric, p.audio_output_per_mtok, '1M tokens', 1, NULL),
      ('per ' || coalesce(unit, 'unit'), coalesce(units, 0), CASE WHEN p.unit = unit THEN p.unit_price END, unit, 1000000, NULL)
    ) AS d(component, quantity, rate, per, scale, detail)
   WHERE d.quantity > 0;
  RETURN QUERY SELECT CASE WHEN priced.cost_micros IS NULL THEN 'unpriced' ELSE 'total' END,
    NULL::numeric, NULL::numeric, NULL::text, priced.cost_micros::numeric,
    coalesce(priced.unpriced_reason, 'sum rounded up once to whole micro-dollars');
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension, then the total (or why it is unpriced).';

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
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens, units, unit,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
    discount_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens, c.units, c.unit,
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
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens, j.units, j.unit,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, units numeric, unit text, provided_cost_micros bigint,
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
                 | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens) IS NULL
             AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        -- Reasoning and audio output beyond the output: the trigger prices
        -- it, with the text output at 0 as priced() does.
        WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint) >= 0::bigint
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)), 0::bigint) * b.input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
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
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes or audio (most calls): three
  -- dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][12])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][13]))
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
      NEW.computed_cost_micros := NEW.cost_micros;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := (ai_cost_internal.price_book_rates())[slot][20];
      RETURN NEW;
    END IF;
  -- The same with cache writes or audio: all nine dimensions.
  ELSIF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning and audio output
    -- beyond the output are left to the lookup, which bills the text output
    -- as 0 then: the sum below would bill it negative.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][12])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][13])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning is at the output rate and cached audio at the cache read
      -- rate where the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.computed_cost_micros := NEW.cost_micros;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := (ai_cost_internal.price_book_rates())[slot][20];
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
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio, r_unit
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
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
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
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)), 0::bigint)::numeric OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_reasoning IS NULL
             THEN (NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric)
             WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint), 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) r_reasoning)
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

-- Resolved with the new ranks and compiled by the new compiler, for the new
-- trigger.
SELECT ai_cost_internal.rebuild_price_lookup();
COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input, audio output, reasoning and cached audio input rates in picodollars per token, less the organisation''s discount (0: none; reasoning at the output rate and cached audio at the cache read rate when the price has no rate of their own); then for the same nine token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL); then the id of the organisation discount applied (NULL: none).';
COMMENT ON FUNCTION ai_cost_internal.price_book_windows() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot when its price and discount apply, [from, to).';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The earlier schema has no discount for everyone: refuse rather than drop
-- contract terms.
DO $$
BEGIN
  IF EXISTS (SELECT FROM ai_cost.tenant_discounts WHERE tenant_id IS NULL) THEN
    RAISE EXCEPTION 'ai_cost.tenant_discounts holds organisation-wide discounts (tenant_id NULL), which the earlier schema cannot hold'
      USING HINT = 'Delete them (DELETE FROM ai_cost.tenant_discounts WHERE tenant_id IS NULL), reprice the calls they applied to, and migrate down again.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes or audio (most calls): three
  -- dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][12])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][13]))
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
      NEW.computed_cost_micros := NEW.cost_micros;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      RETURN NEW;
    END IF;
  -- The same with cache writes or audio: all nine dimensions.
  ELSIF NEW.units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.discount_id IS NULL AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning and audio output
    -- beyond the output are left to the lookup, which bills the text output
    -- as 0 then: the sum below would bill it negative.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][12])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][13])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning is at the output rate and cached audio at the cache read
      -- rate where the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
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
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio, r_unit
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
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
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
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)), 0::bigint)::numeric OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_reasoning IS NULL
             THEN (NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric)
             WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint), 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) r_reasoning)
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
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens, units, unit,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens, c.units, c.unit,
    c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
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
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens, j.units, j.unit,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, units numeric, unit text, provided_cost_micros bigint,
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
                 | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens) IS NULL
             AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        -- Reasoning and audio output beyond the output: the trigger prices
        -- it, with the text output at 0 as priced() does.
        WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint) >= 0::bigint
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)), 0::bigint) * b.input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
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

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(
  provider text, model text, at timestamptz DEFAULT now(),
  input_tokens bigint DEFAULT NULL, output_tokens bigint DEFAULT NULL,
  cache_read_tokens bigint DEFAULT NULL, cache_write_tokens bigint DEFAULT NULL,
  cache_write_1h_tokens bigint DEFAULT NULL, audio_input_tokens bigint DEFAULT NULL,
  audio_output_tokens bigint DEFAULT NULL, units numeric DEFAULT NULL, unit text DEFAULT NULL,
  service_tier text DEFAULT 'standard', tenant_id text DEFAULT NULL,
  reasoning_tokens bigint DEFAULT NULL, cache_read_audio_tokens bigint DEFAULT NULL
) RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
  p ai_cost_internal.price_lookup;
  priced record;
  write_1h bigint := coalesce(cache_write_1h_tokens, 0);
  write_5m bigint := coalesce(cache_write_tokens, 0) - write_1h;
  cached_audio bigint := coalesce(cache_read_audio_tokens, 0);
BEGIN
  c.provider := provider; c.model := model; c.created_at := at; c.service_tier := service_tier;
  c.tenant_id := tenant_id; c.cached := false;
  c.input_tokens := input_tokens; c.output_tokens := output_tokens;
  c.cache_read_tokens := cache_read_tokens; c.cache_write_tokens := cache_write_tokens;
  c.cache_write_1h_tokens := cache_write_1h_tokens; c.audio_input_tokens := audio_input_tokens;
  c.audio_output_tokens := audio_output_tokens; c.reasoning_tokens := reasoning_tokens;
  c.cache_read_audio_tokens := cache_read_audio_tokens; c.units := units; c.unit := unit;
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
                WHEN p.discount_id IS NOT NULL
                THEN format(', tenant %s discount %s: %s%% off', p.tenant_id, p.discount_id, trim_scale((1 - p.factor) * 100))
                ELSE '' END,
           p.valid_from, coalesce(p.valid_to::text, 'now'),
           CASE WHEN p.priced_model <> model THEN ', matched from ' || model ELSE '' END);
  -- Reasoning has a row of its own only where the price bills it apart;
  -- otherwise it is in the output row, as it is in output_tokens.
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, d.quantity * d.rate * d.scale * p.factor, d.detail
    FROM (VALUES
      ('input', greatest(coalesce(input_tokens, 0) - coalesce(cache_read_tokens, 0) - write_5m - write_1h
                         - (coalesce(audio_input_tokens, 0) - cached_audio), 0)::numeric, p.input_per_mtok, '1M tokens', 1, NULL),
      ('cache read', (coalesce(cache_read_tokens, 0) - cached_audio)::numeric, p.cache_read_per_mtok, '1M tokens', 1, NULL),
      ('cache read (audio)', cached_audio::numeric, coalesce(p.cache_read_audio_per_mtok, p.cache_read_per_mtok), '1M tokens', 1,
       CASE WHEN p.cache_read_audio_per_mtok IS NULL THEN 'at the cache read rate: the price has no cache_read_audio_per_mtok' END),
      ('cache write (5 min)', write_5m::numeric, p.cache_write_per_mtok, '1M tokens', 1, NULL),
      ('cache write (1 hour)', write_1h::numeric, p.cache_write_1h_per_mtok, '1M tokens', 1, NULL),
      ('audio input', (coalesce(audio_input_tokens, 0) - cached_audio)::numeric, p.audio_input_per_mtok, '1M tokens', 1, NULL),
      ('output', CASE WHEN p.reasoning_per_mtok IS NULL THEN coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0)
                      ELSE greatest(coalesce(output_tokens, 0) - coalesce(audio_output_tokens, 0) - coalesce(reasoning_tokens, 0), 0)
                 END::numeric, p.output_per_mtok, '1M tokens', 1, NULL),
      ('reasoning', CASE WHEN p.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce(reasoning_tokens, 0) END::numeric,
       p.reasoning_per_mtok, '1M tokens', 1, NULL),
      ('audio output', coalesce(audio_output_tokens, 0)::numeric, p.audio_output_per_mtok, '1M tokens', 1, NULL),
      ('per ' || coalesce(unit, 'unit'), coalesce(units, 0), CASE WHEN p.unit = unit THEN p.unit_price END, unit, 1000000, NULL)
    ) AS d(component, quantity, rate, per, scale, detail)
   WHERE d.quantity > 0;
  RETURN QUERY SELECT CASE WHEN priced.cost_micros IS NULL THEN 'unpriced' ELSE 'total' END,
    NULL::numeric, NULL::numeric, NULL::text, priced.cost_micros::numeric,
    coalesce(priced.unpriced_reason, 'sum rounded up once to whole micro-dollars');
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension, then the total (or why it is unpriced).';

ALTER TABLE ai_cost.tenant_discounts
  DROP CONSTRAINT "discount tenant_id must not be empty: NULL is every tenant",
  DROP CONSTRAINT "discounts for one tenant and scope must not overlap in time",
  ALTER COLUMN tenant_id SET NOT NULL,
  ADD CONSTRAINT "discounts for one tenant and scope must not overlap in time"
    EXCLUDE USING gist (tenant_id WITH =, (coalesce(provider, '')) WITH =, (coalesce(model, '')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&);
COMMENT ON TABLE ai_cost.tenant_discounts IS 'Negotiated percentage discounts on list prices for one tenant: on all its calls, one provider''s, or one model''s (the narrowest scope wins). A tenant''s own rows in ai_cost.prices win over a discount.';
COMMENT ON COLUMN ai_cost.tenant_discounts.tenant_id IS 'The tenant whose calls get the discount.';

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  DELETE FROM ai_cost_internal.price_book;
  WITH list_prices AS (
    -- A key is three words; provider and model must hold no space, so no
    -- other (provider, tier, model) can spell the same key.
    SELECT l.provider || ' ' || l.service_tier || ' ' || l.model AS key, l.provider, l.service_tier, l.model,
           l.price_id, l.valid_from, l.valid_to,
           (SELECT min(t.above_input_tokens) FROM ai_cost_internal.price_lookup t
             WHERE t.provider = l.provider AND t.model = l.model AND t.service_tier = l.service_tier
               AND t.tenant_id = '' AND t.above_input_tokens > 0) AS next_tier_above,
           ARRAY[l.input_per_mtok, l.output_per_mtok, l.cache_read_per_mtok, l.cache_write_per_mtok,
                 l.cache_write_1h_per_mtok, l.audio_input_per_mtok, l.audio_output_per_mtok,
                 coalesce(l.reasoning_per_mtok, l.output_per_mtok),
                 coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok)] AS per_mtok
      FROM ai_cost_internal.price_lookup l
     WHERE l.tenant_id = '' AND l.above_input_tokens = 0
       AND l.valid_from <= now() AND (l.valid_to IS NULL OR l.valid_to > now())
       AND strpos(l.provider, ' ') = 0 AND strpos(l.model, ' ') = 0
  ), compilable AS (
    SELECT row_number() OVER (ORDER BY p.key) AS slot, p.*,
           -- The rates in picodollars per token (0: none).
           ARRAY(SELECT coalesce((r.rate * 1000000)::bigint, 0) FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS rates,
           -- Per dimension the bits a token count may use (see the cost trigger in 060_cost.sql):
           -- 0 without a rate; for input below the first long-context tier,
           -- the largest power of two not above its threshold + 1.
           ARRAY(SELECT CASE WHEN r.rate IS NULL THEN 0
                             WHEN r.n = 1 AND p.next_tier_above IS NOT NULL
                             THEN least(30, floor(log(2::numeric, p.next_tier_above + 1))::integer)
                             ELSE 30 END
                   FROM unnest(p.per_mtok) WITH ORDINALITY AS r(rate, n) ORDER BY r.n) AS bits
      FROM list_prices p
     WHERE NOT EXISTS (SELECT FROM unnest(p.per_mtok) AS r(rate)
                        WHERE r.rate * 1000000 <> trunc(r.rate * 1000000) OR r.rate > 1000)
  )
  INSERT INTO ai_cost_internal.price_book
  SELECT c.slot, c.key, c.provider, c.service_tier, c.model, c.price_id,
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7], c.rates[8], c.rates[9],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7], c.bits[8], c.bits[9],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c;

  -- The same book as constants for the cost trigger, the bits as masks.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce('{' || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce('{' || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
    INTO book_slots, book_rates, book_windows
    FROM ai_cost_internal.price_book b;

  SELECT jsonb_object_agg(t.tenant_id, true) INTO own_price_tenants
    FROM (SELECT DISTINCT l.tenant_id FROM ai_cost_internal.price_lookup l WHERE l.tenant_id <> '') t;

  -- The first moment a price in the lookup starts or ends after now: from
  -- then on the book no longer holds every price that applies.
  SELECT min(b.at) INTO stale_at
    FROM (SELECT l.valid_from AS at FROM ai_cost_internal.price_lookup l WHERE l.valid_from > now()
          UNION ALL
          SELECT l.valid_to FROM ai_cost_internal.price_lookup l WHERE l.valid_to > now()) b;

  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_slot(key text) RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.->>) $1 AS pg_catalog.int4)', book_slots));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_rates() RETURNS bigint[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.int8[])', book_rates));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_windows() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])', book_windows));
  -- Without any such tenant the body is the constant false, which the
  -- planner folds out of the trigger's condition.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_has_tenant(tenant_id text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN own_price_tenants IS NULL THEN 'SELECT false'
         ELSE format('SELECT coalesce(CAST(%L AS pg_catalog.jsonb) OPERATOR(pg_catalog.?) $1, false)', own_price_tenants) END);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_stale_at() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz)', coalesce(stale_at, 'infinity')));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.compile_price_book() IS 'Internal: rewrites the compiled price book (ai_cost_internal.price_book_*) from the resolved price lookup.';

DROP FUNCTION ai_cost_internal.price_book_entries();
DROP TABLE ai_cost_internal.price_book;
CREATE TABLE ai_cost_internal.price_book (
  slot integer PRIMARY KEY,
  key text NOT NULL UNIQUE,
  provider text NOT NULL,
  service_tier text NOT NULL,
  model text NOT NULL,
  price_id bigint NOT NULL,
  input_rate bigint NOT NULL, output_rate bigint NOT NULL, cache_read_rate bigint NOT NULL,
  cache_write_rate bigint NOT NULL, cache_write_1h_rate bigint NOT NULL,
  audio_input_rate bigint NOT NULL, audio_output_rate bigint NOT NULL,
  reasoning_rate bigint NOT NULL, cache_read_audio_rate bigint NOT NULL,
  input_bits integer NOT NULL, output_bits integer NOT NULL, cache_read_bits integer NOT NULL,
  cache_write_bits integer NOT NULL, cache_write_1h_bits integer NOT NULL,
  audio_input_bits integer NOT NULL, audio_output_bits integer NOT NULL,
  reasoning_bits integer NOT NULL, cache_read_audio_bits integer NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_to timestamptz NOT NULL
);
COMMENT ON TABLE ai_cost_internal.price_book IS 'Internal: the compiled price book (current list prices as integer picodollars per token), written by ai_cost_internal.compile_price_book().';

CREATE FUNCTION ai_cost_internal.price_book_entries() RETURNS SETOF ai_cost_internal.price_book
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 50 SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT * FROM ai_cost_internal.price_book;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.price_book_entries() IS 'Internal: the rows of ai_cost_internal.price_book, with a planner estimate that makes ai_cost.insert_calls() hash them.';

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
  SELECT provider, name, service_tier, coalesce(tenant_id, ''), CASE WHEN tenant_id IS NULL THEN 4 ELSE 0 END,
         above_input_tokens, valid_from, valid_to, id, NULL, 1, model,
         input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
         audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, reasoning_per_mtok, cache_read_audio_per_mtok
    FROM priced
  UNION ALL
  -- List prices with a tenant's discount, for the discount's period.
  SELECT p.provider, p.name, p.service_tier, d.tenant_id,
         CASE WHEN d.model IS NOT NULL THEN 1 WHEN d.provider IS NOT NULL THEN 2 ELSE 3 END,
         p.above_input_tokens, lower(r), upper(r), p.id, d.id, 1 - d.percent_off / 100, p.model,
         p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.cache_write_1h_per_mtok,
         p.audio_input_per_mtok, p.audio_output_per_mtok, p.unit, p.unit_price, p.reasoning_per_mtok, p.cache_read_audio_per_mtok
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

COMMENT ON TABLE ai_cost_internal.price_lookup IS 'Internal: prices resolved for aliases, tenants and discounts, maintained from ai_cost.prices, ai_cost.model_aliases and ai_cost.tenant_discounts.';

-- Resolved with the earlier ranks and compiled by the earlier compiler, for
-- the earlier trigger.
SELECT ai_cost_internal.rebuild_price_lookup();
COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input, audio output, reasoning and cached audio input rates in picodollars per token (0: none; reasoning at the output rate and cached audio at the cache read rate when the price has no rate of their own); then for the same nine token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL).';
COMMENT ON FUNCTION ai_cost_internal.price_book_windows() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the validity of its price, [from, to).';

SELECT ai_cost_internal.grant_roles();
