-- Up Migration
--
-- Markups and billing (sql/ holds each definition; this step brings the
-- schema there): ai_cost.markups says what tenants are charged beyond the
-- cost of their calls; each call gets billed_micros and markup_id on
-- insert (065_billing.sql), reprice re-bills and audits charges, and the
-- hourly and daily rollups, spend_daily and ai_cost.calls_between() carry
-- billed_micros and unbilled_calls beside the cost. The calls already
-- recorded are not billed (no markup existed): every one is counted as
-- unbilled.

SET LOCAL check_function_bodies = off;

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

-- On a Citus coordinator (a ledger distributed by ai_cost.distribute()):
-- the shards of ai_cost.calls are changed one after another, since Citus
-- cannot create functions on the workers after a parallel change in the
-- same transaction, and a trigger on a distributed table needs
-- citus.enable_unsafe_triggers (145_distribution.sql).
DO $citus$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
END
$citus$;

-- What the call is billed to its tenant, by ai_cost.markups (065_billing.sql).
-- On a Citus coordinator the DDL of a distributed ai_cost.calls reaches its
-- shards as the text of the statement that made it, which must then be one
-- statement, not this whole file: each is executed on its own.
DO $citus$
BEGIN
  EXECUTE $ddl$ALTER TABLE ai_cost.calls ADD COLUMN billed_micros bigint$ddl$;
  EXECUTE $ddl$ALTER TABLE ai_cost.calls ADD COLUMN markup_id bigint$ddl$;
  EXECUTE $ddl$ALTER TABLE ai_cost.calls
  ADD CONSTRAINT "total billed_micros must be at most 1e10 ($10,000 a call)" CHECK (billed_micros <= 10000000000)$ddl$;
  EXECUTE $ddl$COMMENT ON COLUMN ai_cost.calls.billed_micros IS 'What you charge your tenant for the call, in integer micro-dollars, set on insert from cost_micros by the ai_cost.markups row in force (markup_id): cost_micros x (1 + percent/100) + per_call (successful calls) + tokens x per_mtok, rounded up once. NULL = not billed: no markup covers the call, or its cost is unknown. Never part of cost_micros.'$ddl$;
  EXECUTE $ddl$COMMENT ON COLUMN ai_cost.calls.markup_id IS 'The ai_cost.markups row that set billed_micros; NULL when the call is not billed.'$ddl$;
END
$citus$;

-- Markups change no price, but the compiled book says whether any exist
-- (ai_cost_internal.bills_calls), which the billing trigger asks.
CREATE TRIGGER tg_markups__rebuild_lookup
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ai_cost.markups
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.price_sources_changed();

COMMENT ON FUNCTION ai_cost_internal.price_sources_changed() IS 'Trigger: rebuilds the resolved price lookup and the compiled book after prices, aliases, discounts, service tiers or markups change.';

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
  markups jsonb;
  markups_from timestamptz;
  base integer;
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  UPDATE ai_cost_internal.price_book_generation
     SET generation = CASE WHEN compiled_in = pg_current_xact_id() THEN generation ELSE (generation + 1) % 2047 END,
         compiled_in = pg_current_xact_id()
  RETURNING 1 + generation * 1048576 INTO base;
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
       -- A key with a price of certain hours of the day, now or to come,
       -- depends on the hour of each call: the lookup prices it.
       AND NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup w
                        WHERE w.provider = l.provider AND w.model = l.model AND w.service_tier = l.service_tier
                          AND w.daily_from IS NOT NULL AND (w.valid_to IS NULL OR w.valid_to > now()))
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
                 coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok) * l.factor,
                 coalesce(l.image_input_per_mtok, l.input_per_mtok) * l.factor,
                 coalesce(l.image_output_per_mtok, l.output_per_mtok) * l.factor,
                 coalesce(l.video_input_per_mtok, l.input_per_mtok) * l.factor] AS per_mtok
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
       -- The book writes no discount as 0: a discount id of 0 or less (an
       -- identity overridden by hand) is left to the lookup.
       AND coalesce(p.discount_id, 1) > 0
  )
  INSERT INTO ai_cost_internal.price_book
  SELECT base + c.slot - 1, c.key, c.provider, c.service_tier, c.model, c.price_id, c.discount_id,
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7], c.rates[8], c.rates[9],
         c.rates[10], c.rates[11], c.rates[12],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7], c.bits[8], c.bits[9],
         c.bits[10], c.bits[11], c.bits[12],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c
   WHERE c.slot <= 1048576;

  -- The same book as constants for the cost trigger, the bits as masks, in
  -- arrays whose first slot is base. The discount id is 0 for none, so that
  -- NULL always means a slot outside the array; without NULLs an array has
  -- no null bitmap either, and a subscript is an offset rather than a walk
  -- over the elements before it.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce(format('[%s:%s][1:26]={', base, max(b.slot)) || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           b.image_input_rate, b.image_output_rate, b.video_input_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits), -(1::bigint << b.image_input_bits),
                                           -(1::bigint << b.image_output_bits), -(1::bigint << b.video_input_bits),
                                           coalesce(b.discount_id, 0)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:2]={', base, max(b.slot)) || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
    INTO book_slots, book_rates, book_windows
    FROM ai_cost_internal.price_book b;

  SELECT jsonb_object_agg(t.tenant_id, true) INTO own_price_tenants
    FROM (SELECT DISTINCT l.tenant_id FROM ai_cost_internal.price_lookup l WHERE l.tenant_id <> '') t;

  -- The first moment a price in the lookup starts or ends after now: from
  -- then on the book no longer holds every price that applies.
  SELECT min(b.at) INTO stale_at
    FROM (SELECT l.valid_from AS at FROM ai_cost_internal.price_lookup l WHERE l.valid_from > now()
          UNION ALL
          SELECT l.valid_to FROM ai_cost_internal.price_lookup l WHERE l.valid_to > now()
          UNION ALL
          SELECT m.valid_from FROM ai_cost.markups m WHERE m.valid_from > now()
          UNION ALL
          SELECT m.valid_to FROM ai_cost.markups m WHERE m.valid_to > now()) b;

  -- The markups in force now, for the billing trigger (065_billing.sql), as
  -- {scope: {provider: {model: [id, percent, per_call, per_mtok]}}}: scope is
  -- the tenant, or '' for every tenant; provider and model '' for all. They
  -- hold for calls from the last moment a markup started or ended up to the
  -- next (stale_at).
  SELECT coalesce(jsonb_object_agg(p.scope, p.providers), '{}') INTO markups
    FROM (SELECT m.scope, jsonb_object_agg(m.provider, m.models) AS providers
            FROM (SELECT coalesce(k.tenant_id, '') AS scope, coalesce(k.provider, '') AS provider,
                         jsonb_object_agg(coalesce(k.model, ''), jsonb_build_array(k.id, k.percent, k.per_call, k.per_mtok)) AS models
                    FROM ai_cost.markups k
                   WHERE k.valid_from <= now() AND (k.valid_to IS NULL OR k.valid_to > now())
                   GROUP BY 1, 2) m
           GROUP BY m.scope) p;
  SELECT max(b.at) INTO markups_from
    FROM (SELECT m.valid_from AS at FROM ai_cost.markups m WHERE m.valid_from <= now()
          UNION ALL
          SELECT m.valid_to FROM ai_cost.markups m WHERE m.valid_to <= now()) b;

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
  -- The billing trigger's condition asks this: a constant, folded out of
  -- it, so a ledger without markups pays nothing for billing.
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.bills_calls() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    CASE WHEN EXISTS (SELECT FROM ai_cost.markups) THEN 'SELECT true' ELSE 'SELECT false' END);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.markup_book() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.jsonb)', markups));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.markup_book_window() RETURNS timestamptz[]
    LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz[])',
           ARRAY[coalesce(markups_from, '-infinity'), coalesce(stale_at, 'infinity')]::timestamptz[]));
  EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_stale_at() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS %L$f$,
    format('SELECT CAST(%L AS pg_catalog.timestamptz)', coalesce(stale_at, 'infinity')));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.compile_price_book() IS 'Internal: rewrites the compiled price book (ai_cost_internal.price_book_*) from the resolved price lookup.';

SELECT ai_cost_internal.compile_price_book();
COMMENT ON FUNCTION ai_cost_internal.bills_calls() IS 'Internal, generated by ai_cost_internal.compile_price_book(): whether ai_cost.markups has any row, so that calls are billed (065_billing.sql).';
COMMENT ON FUNCTION ai_cost_internal.price_book_stale_at() IS 'Internal, generated by ai_cost_internal.compile_price_book(): when a price or markup next starts or ends, after which ai_cost.refresh() compiles the book again.';
COMMENT ON FUNCTION ai_cost_internal.markup_book() IS 'Internal, generated by ai_cost_internal.compile_price_book(): the markups in force now as {scope: {provider: {model: [id, percent, per_call, per_mtok]}}}, scope the tenant or '''' for every tenant, provider and model '''' for all (065_billing.sql).';
COMMENT ON FUNCTION ai_cost_internal.markup_book_window() IS 'Internal, generated by ai_cost_internal.compile_price_book(): [from, to) of created_at for which ai_cost_internal.markup_book() holds the markups in force.';

-- Billing: what each call is charged to its tenant, beside what it cost.
--
-- A team that resells AI features charges its tenants the cost of their
-- calls plus a margin (ai_cost.markups, 020_prices.sql). Each call's charge
-- is worked out once, when it is recorded, from its cost by the markup in
-- force for its tenant, provider and model at its created_at:
--   billed_micros = ceil(cost_micros x (1 + percent / 100)
--                        + per_call x 10^6           (successful calls)
--                        + (input_tokens + output_tokens) x per_mtok)
-- in exact numeric, rounded up to a micro-dollar once. The base is the
-- call's cost_micros, the integer the ledger already shows, so a tenant can
-- check every charge against the cost beside it. A call with an unknown cost
-- has an unknown charge, and a call no markup covers is not billed: both
-- are NULL, counted apart in the rollups, never a charge of 0.

-- The charge of a call of this cost, status and tokens under a markup of
-- these terms. Inlinable SQL, for the trigger's expressions and
-- billing_of()'s query alike; with no SET clause (which prevents inlining),
-- every function, operator and type is named by its schema.
CREATE FUNCTION ai_cost_internal.charge(
  cost_micros bigint, status text, input_tokens bigint, output_tokens bigint,
  percent numeric, per_call numeric, per_mtok numeric
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
  SELECT pg_catalog.ceil(
           (cost_micros::pg_catalog.numeric
              OPERATOR(pg_catalog.*) (1::pg_catalog.numeric OPERATOR(pg_catalog.+) (percent OPERATOR(pg_catalog./) 100::pg_catalog.numeric)))
           OPERATOR(pg_catalog.+) CASE WHEN status OPERATOR(pg_catalog.=) 'success'::pg_catalog.text
                                       THEN per_call OPERATOR(pg_catalog.*) 1000000::pg_catalog.numeric
                                       ELSE 0::pg_catalog.numeric END
           OPERATOR(pg_catalog.+) ((coalesce(input_tokens, 0::pg_catalog.int8) OPERATOR(pg_catalog.+) coalesce(output_tokens, 0::pg_catalog.int8))::pg_catalog.numeric
                                   OPERATOR(pg_catalog.*) per_mtok))::pg_catalog.int8
$$;
COMMENT ON FUNCTION ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric) IS 'Internal: cost_micros x (1 + percent/100) + per_call x 10^6 (successful calls) + tokens x per_mtok, rounded up once.';

-- The charge of a call and the markup that gives it, from ai_cost.markups;
-- no row when its cost is unknown or no markup covers it. The model is
-- matched as recorded or as the price that priced it is named, so a markup
-- on a model covers its dated snapshots and aliases. Inlinable SQL, like
-- charge(): reprice and explain_cost read it, and the trigger where the
-- markups in force now do not decide.
CREATE FUNCTION ai_cost_internal.billing_of(
  call_tenant_id text, call_provider text, call_model text, call_price_id bigint, call_status text,
  call_created_at timestamptz, call_cost_micros bigint, call_input_tokens bigint, call_output_tokens bigint
) RETURNS TABLE (billed_micros bigint, markup_id bigint)
LANGUAGE sql STABLE AS $$
  SELECT ai_cost_internal.charge(call_cost_micros, call_status, call_input_tokens, call_output_tokens,
                                 m.percent, m.per_call, m.per_mtok),
         m.id
    FROM ai_cost.markups m
   WHERE call_cost_micros IS NOT NULL
     AND (m.tenant_id IS NULL OR m.tenant_id OPERATOR(pg_catalog.=) call_tenant_id)
     AND (m.provider IS NULL OR m.provider OPERATOR(pg_catalog.=) call_provider)
     AND (m.model IS NULL OR m.model OPERATOR(pg_catalog.=) call_model
          OR m.model OPERATOR(pg_catalog.=) (SELECT p.model FROM ai_cost.prices p WHERE p.id OPERATOR(pg_catalog.=) call_price_id))
     AND m.valid_from OPERATOR(pg_catalog.<=) call_created_at
     AND (m.valid_to IS NULL OR m.valid_to OPERATOR(pg_catalog.>) call_created_at)
   -- The tenant's own markups first, then those for every tenant; within
   -- each, a model's before a provider's before all calls'.
   ORDER BY m.tenant_id IS NULL, m.model IS NULL, m.provider IS NULL
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint) IS 'Internal: what a call is billed by the ai_cost.markups row in force for it (billed_micros, markup_id); no row when its cost is unknown or no markup covers it.';

-- The billing trigger. It runs after the cost trigger (triggers of one
-- event fire in name order: tg_calls__price_call, then tg_calls__set_billed),
-- so NEW.cost_micros is the cost the ledger keeps, whichever way it was set.
--
-- A query per call costs about 5 us, as much as the insert: a call made
-- while the markups in force now apply (ai_cost_internal.markup_book(),
-- compiled with the price book) is billed from them without one, in the
-- order billing_of() chooses, tenant before every tenant. Where the call's
-- provider has markups on other models, one of them may cover it through
-- the price's model, and billing_of() decides; so it does for a call from
-- before the last markup change. Like the cost trigger it does not pin
-- search_path (~5 us a call before PostgreSQL 17): every object, operator
-- and type is named by its schema.
CREATE FUNCTION ai_cost_internal.set_billed() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  decided boolean := false;
  scope pg_catalog.text;
  models pg_catalog.jsonb;
  markup pg_catalog.jsonb;
BEGIN
  IF NEW.cost_micros IS NULL THEN
    NEW.billed_micros := NULL;
    NEW.markup_id := NULL;
    RETURN NEW;
  END IF;
  IF (ai_cost_internal.markup_book_window())[1] OPERATOR(pg_catalog.<=) NEW.created_at
     AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.markup_book_window())[2] THEN
    decided := true;
    -- The tenant's markups, then those for every tenant. A call without a
    -- tenant ('' on a distributed ledger too) has only the latter.
    FOREACH scope IN ARRAY ARRAY[coalesce(NEW.tenant_id, ''::pg_catalog.text), ''::pg_catalog.text] LOOP
      models := ai_cost_internal.markup_book() OPERATOR(pg_catalog.#>) ARRAY[scope, NEW.provider];
      markup := models OPERATOR(pg_catalog.->) NEW.model;
      IF markup IS NULL AND (models OPERATOR(pg_catalog.-) ''::pg_catalog.text) OPERATOR(pg_catalog.<>) '{}'::pg_catalog.jsonb THEN
        decided := false;
        EXIT;
      END IF;
      markup := coalesce(markup, models OPERATOR(pg_catalog.->) ''::pg_catalog.text,
                         ai_cost_internal.markup_book() OPERATOR(pg_catalog.#>) ARRAY[scope, ''::pg_catalog.text, ''::pg_catalog.text]);
      EXIT WHEN markup IS NOT NULL;
    END LOOP;
  END IF;
  IF decided THEN
    -- Without a markup, both are NULL: not billed.
    NEW.markup_id := (markup OPERATOR(pg_catalog.->) 0)::pg_catalog.int8;
    NEW.billed_micros := ai_cost_internal.charge(NEW.cost_micros, NEW.status, NEW.input_tokens, NEW.output_tokens,
      (markup OPERATOR(pg_catalog.->) 1)::pg_catalog.numeric, (markup OPERATOR(pg_catalog.->) 2)::pg_catalog.numeric,
      (markup OPERATOR(pg_catalog.->) 3)::pg_catalog.numeric);
    RETURN NEW;
  END IF;
  -- No row sets both to NULL: not billed.
  SELECT b.billed_micros, b.markup_id INTO NEW.billed_micros, NEW.markup_id
    FROM ai_cost_internal.billing_of(NEW.tenant_id, NEW.provider, NEW.model, NEW.price_id, NEW.status, NEW.created_at,
                                     NEW.cost_micros, NEW.input_tokens, NEW.output_tokens) b;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.set_billed() IS 'Trigger: sets billed_micros and markup_id of a call from the markups in force (compiled with the price book), or by ai_cost_internal.billing_of().';


-- It fires on an update of any column the cost trigger fires on (whatever
-- changes the cost changes the charge), of the status, and of the charge.
-- Without markups the condition is false for every call that does not try
-- to set a charge of its own (ai_cost_internal.bills_calls() is a constant
-- the planner folds), so a ledger that bills nothing pays nothing for it;
-- a charge a writer sends is always recomputed, to NULL if need be.
-- On a Citus coordinator the DDL of a distributed ai_cost.calls reaches its
-- shards as the text of the statement that made it, which must then be one
-- statement, not this whole file: each is executed on its own.
DO $citus$
BEGIN
  EXECUTE $ddl$CREATE TRIGGER tg_calls__set_billed
  BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, reasoning_tokens,
    cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, units, unit, computed_cost_micros,
    extra_units, status, billed_micros, markup_id
  ON ai_cost.calls
  FOR EACH ROW
  WHEN (NEW.billed_micros IS NOT NULL OR NEW.markup_id IS NOT NULL OR ai_cost_internal.bills_calls())
  EXECUTE FUNCTION ai_cost_internal.set_billed()$ddl$;
END
$citus$;

-- The charge of a call broken down, in the rows of ai_cost.explain_cost: the
-- markup row, each part of it that adds something, and the charge; or why
-- the call is not billed, when any markup exists.
CREATE FUNCTION ai_cost_internal.explain_billing(
  call_tenant_id text, call_provider text, call_model text, call_price_id bigint, call_status text,
  call_created_at timestamptz, call_cost_micros bigint, call_input_tokens bigint, call_output_tokens bigint
) RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  billed record;
  markup ai_cost.markups;
  tokens numeric := coalesce(call_input_tokens, 0) + coalesce(call_output_tokens, 0);
BEGIN
  SELECT * INTO billed FROM ai_cost_internal.billing_of(call_tenant_id, call_provider, call_model, call_price_id, call_status,
                                                         call_created_at, call_cost_micros, call_input_tokens, call_output_tokens);
  IF NOT FOUND THEN
    IF EXISTS (SELECT FROM ai_cost.markups) THEN
      RETURN QUERY SELECT 'not billed'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric,
        CASE WHEN call_cost_micros IS NULL THEN 'the cost is unknown, so the charge is too'
             ELSE 'no markup in ai_cost.markups covers this call' END;
    END IF;
    RETURN;
  END IF;
  SELECT * INTO markup FROM ai_cost.markups m WHERE m.id = billed.markup_id;
  RETURN QUERY SELECT 'markup'::text, NULL::numeric, NULL::numeric, NULL::text, NULL::numeric,
    format('markup row %s (%s, %s) in force %s to %s', markup.id,
           coalesce('tenant ' || markup.tenant_id, 'every tenant'),
           coalesce(markup.provider || coalesce('/' || markup.model, ''), 'every provider'),
           markup.valid_from, coalesce(markup.valid_to::text, 'now'));
  RETURN QUERY
  SELECT d.component, d.quantity, d.rate, d.per, trim_scale(d.added), d.detail
    FROM (VALUES
      ('markup on cost', call_cost_micros::numeric, markup.percent, 'percent', call_cost_micros * markup.percent / 100,
       'cost_micros x percent / 100'),
      ('fee per call', CASE WHEN call_status = 'success' THEN 1 ELSE 0 END::numeric, markup.per_call, 'call',
       CASE WHEN call_status = 'success' THEN markup.per_call * 1000000 ELSE 0 END,
       CASE WHEN call_status = 'success' THEN NULL ELSE 'successful calls only' END),
      ('fee per token', tokens, markup.per_mtok, '1M tokens', tokens * markup.per_mtok, 'input_tokens + output_tokens')
    ) AS d(component, quantity, rate, per, added, detail)
   WHERE d.rate <> 0;
  RETURN QUERY SELECT 'billed'::text, NULL::numeric, NULL::numeric, NULL::text, billed.billed_micros::numeric,
    'cost_micros plus the markup, rounded up once to whole micro-dollars'::text;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint) IS 'Internal: the rows of ai_cost.explain_cost that break down what a call is billed by ai_cost.markups.';

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
    format('price row %s (%s/%s, %s, %s%s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
           CASE WHEN p.daily_from IS NOT NULL
                THEN format(', daily from %s to %s %s', left(p.daily_from::text, 5), left(p.daily_to::text, 5), p.time_zone)
                ELSE '' END,
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
  -- What a successful call like it is billed (ai_cost.markups).
  RETURN QUERY SELECT * FROM ai_cost_internal.explain_billing(explain_cost.tenant_id, provider, model, priced.price_id,
    'success', at, priced.cost_micros, input_tokens, output_tokens);
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb) IS 'Breaks down the cost of a hypothetical call: the price row, tier and tenant price or discount that apply, then quantity, USD rate and micro-dollars of each billing dimension and each billed unit, then the total (or why it is unpriced); then, where ai_cost.markups has rows, what the call is billed if it succeeds.';

CREATE OR REPLACE FUNCTION ai_cost.explain_cost(call_id bigint)
RETURNS TABLE (component text, quantity numeric, usd_rate numeric, rate_per text, micros numeric, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c ai_cost.calls;
  now_priced record;
BEGIN
  SELECT * INTO c FROM ai_cost.calls WHERE id = call_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no call with id %', call_id USING ERRCODE = 'no_data_found';
  END IF;
  -- The charge comes last, from the cost the call keeps.
  RETURN QUERY SELECT e.* FROM ai_cost.explain_cost(c.provider, c.model, c.created_at, c.input_tokens, c.output_tokens,
    c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
    c.units, c.unit, c.service_tier, c.tenant_id, c.reasoning_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.extra_units) AS e
   WHERE e.component NOT IN ('markup', 'markup on cost', 'fee per call', 'fee per token', 'billed', 'not billed');
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
  -- What the call is billed from that cost, with today's markups.
  now_priced := ai_cost_internal.cost_of(c);
  RETURN QUERY SELECT * FROM ai_cost_internal.explain_billing(c.tenant_id, c.provider, c.model, now_priced.price_id,
    c.status, c.created_at, now_priced.cost_micros, c.input_tokens, c.output_tokens);
END
$$;
COMMENT ON FUNCTION ai_cost.explain_cost(bigint) IS 'Breaks down the cost of recorded call call_id at today''s prices for its created_at (price row, tier, each component, total: its computed_cost_micros), then, for an app-cache hit or a provider-reported cost, the number cost_micros took instead, then what the call is billed by today''s ai_cost.markups; compare with the stored cost_micros, price_id and billed_micros.';

ALTER TABLE ai_cost.reprice_audit ADD COLUMN old_billed_micros bigint, ADD COLUMN new_billed_micros bigint;
COMMENT ON TABLE ai_cost.reprice_audit IS 'Every change a reprice or backfill made to a call: old and new cost, price row, unpriced reason and charge, when and why.';
COMMENT ON COLUMN ai_cost.reprice_audit.old_billed_micros IS 'What the call was charged to its tenant before (ai_cost.calls.billed_micros), in micro-dollars; NULL: not billed.';
COMMENT ON COLUMN ai_cost.reprice_audit.new_billed_micros IS 'What the call is charged after, in micro-dollars; NULL: not billed.';
COMMENT ON COLUMN ai_cost.reprice_runs.calls_changed IS 'Calls whose cost, price, reason or charge changed.';

CREATE OR REPLACE FUNCTION ai_cost.reprice_batch(run_id bigint, batch_size integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ai_cost.reprice_runs;
  examined integer;
  changed integer;
  delta numeric;
  last_created_at timestamptz;
  last_id bigint;
BEGIN
  SELECT * INTO run FROM ai_cost.reprice_runs r WHERE r.id = run_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no reprice run with id %', run_id USING ERRCODE = 'no_data_found';
  END IF;
  IF run.finished_at IS NOT NULL THEN
    RETURN 0;
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
  END IF;

  WITH batch AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= run.from_time AND c.created_at < run.to_time
       AND (run.cursor_id IS NULL OR (c.created_at, c.id) > (run.cursor_created_at, run.cursor_id))
       AND (run.provider IS NULL OR c.provider = run.provider)
       AND (run.model IS NULL OR c.model = run.model)
       AND (NOT run.only_unpriced OR c.cost_micros IS NULL)
     ORDER BY c.created_at, c.id
     LIMIT batch_size
     FOR UPDATE
  ),
  repriced AS (
    SELECT b.id, b.created_at, b.cost_micros AS old_cost, b.price_id AS old_price,
           b.unpriced_reason AS old_reason, b.discount_id AS old_discount, b.billed_micros AS old_billed,
           b.markup_id AS old_markup, n.*, m.billed_micros, m.markup_id
      FROM batch b CROSS JOIN LATERAL ai_cost_internal.cost_of(b) n
      LEFT JOIN LATERAL ai_cost_internal.billing_of(b.tenant_id, b.provider, b.model, n.price_id, b.status, b.created_at,
                                                    n.cost_micros, b.input_tokens, b.output_tokens) m ON true
  ),
  updated AS (
    UPDATE ai_cost.calls c
       SET cost_micros = r.cost_micros, price_id = r.price_id, discount_id = r.discount_id,
           unpriced_reason = r.unpriced_reason, billed_micros = r.billed_micros, markup_id = r.markup_id
      FROM repriced r
     WHERE c.id = r.id
       AND (r.cost_micros IS DISTINCT FROM r.old_cost OR r.price_id IS DISTINCT FROM r.old_price
            OR r.discount_id IS DISTINCT FROM r.old_discount OR r.unpriced_reason IS DISTINCT FROM r.old_reason
            OR r.billed_micros IS DISTINCT FROM r.old_billed OR r.markup_id IS DISTINCT FROM r.old_markup)
       AND (run.catalog IS NULL
            OR EXISTS (SELECT FROM ai_cost.prices p WHERE p.id = r.price_id AND p.catalog IS NOT NULL))
    RETURNING c.id, c.cost_micros, c.price_id, c.unpriced_reason, c.billed_micros
  ),
  audited AS (
    INSERT INTO ai_cost.reprice_audit (run_id, call_id, old_cost_micros, new_cost_micros, old_price_id, new_price_id,
                                       old_unpriced_reason, new_unpriced_reason, reason, old_billed_micros, new_billed_micros)
    SELECT run.id, u.id, r.old_cost, u.cost_micros, r.old_price, u.price_id, r.old_reason, u.unpriced_reason, run.reason,
           r.old_billed, u.billed_micros
      FROM updated u JOIN repriced r USING (id)
    RETURNING new_cost_micros - old_cost_micros AS delta
  )
  SELECT (SELECT count(*) FROM repriced),
         (SELECT count(*) FROM audited),
         (SELECT coalesce(sum(a.delta), 0) FROM audited a),
         last_row.created_at, last_row.id
    INTO examined, changed, delta, last_created_at, last_id
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (SELECT r.created_at, r.id FROM repriced r ORDER BY r.created_at DESC, r.id DESC LIMIT 1) last_row ON true;

  UPDATE ai_cost.reprice_runs r
     SET cursor_created_at = coalesce(last_created_at, r.cursor_created_at),
         cursor_id = coalesce(last_id, r.cursor_id),
         calls_done = r.calls_done + examined,
         calls_changed = r.calls_changed + changed,
         delta_micros = r.delta_micros + delta,
         updated_at = now(),
         finished_at = CASE WHEN examined < batch_size THEN now() END
   WHERE r.id = run.id;
  RETURN examined;
END
$$;
COMMENT ON FUNCTION ai_cost.reprice_batch(bigint, integer) IS 'Reprices the next batch_size calls of a run, updating and auditing only calls whose cost or charge changed; returns the number examined (0 once the run is finished). Call it in a loop, one transaction per call.';

ALTER TABLE ai_cost_internal.call_changes ADD COLUMN billed_micros bigint;
ALTER TABLE ai_cost_internal.set_aside_changes ADD COLUMN billed_micros bigint;

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id, billed_micros
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id, billed_micros
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_call_changes() IS 'Trigger: records the calls a statement updated or deleted for the next ai_cost.refresh().';

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id, c.billed_micros
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id, c.billed_micros
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND u.last_id
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls() IS 'Internal: the calls visible now that ai_cost.refresh() has not folded into the rollups yet, as additions (+1).';

CREATE OR REPLACE FUNCTION ai_cost_internal.ceiling_breach(change ai_cost_internal.call_changes) RETURNS text
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
                 (8, 'total_ms', change.total_ms, 2147483647),
                 (9, 'billed_micros', change.billed_micros, 10000000000)) AS b(position, name, value, ceiling)
   WHERE b.value NOT BETWEEN 0 AND b.ceiling
   ORDER BY b.position
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.ceiling_breach(ai_cost_internal.call_changes) IS 'Internal: the first value of a call change past the per-call ceilings, in words, or NULL.';

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
                                              OUT applied bigint, OUT set_aside bigint, OUT arrived_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
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
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls() u WHERE only_changes IS NULL AND u.call_id <= range_end
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
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
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
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
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0)) AS ttft_ms_hist,
           sum(billed_micros)::bigint AS billed_micros, sum(unbilled_calls)::bigint AS unbilled_calls
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
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens),
           sum(billed_micros), sum(unbilled_calls)
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
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
      billed_micros = d.billed_micros + excluded.billed_micros,
      unbilled_calls = d.unbilled_calls + excluded.unbilled_calls
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
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
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
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
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
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
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
         (SELECT array_agg(a.call_id) FROM arrived a),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
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
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls read; run by ai_cost_internal.refresh_rollups().';

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes_apart(max_splits integer DEFAULT 500, OUT applied bigint, OUT set_aside bigint)
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
      SELECT * INTO part FROM ai_cost_internal.fold_changes(changes[first:last], NULL);
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
        INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status,
               service_tier, tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason,
               cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
               ttft_ms, total_ms, call_id, billed_micros, reason)
        SELECT m.sign, m.created_at, m.provider, m.model, m.operation, m.status, m.service_tier, m.tenant_id,
               m.user_id, m.feature, m.conversation_id, m.cached, m.streamed, m.unpriced_reason, m.cost_micros,
               m.input_tokens, m.output_tokens, m.cache_read_tokens, m.cache_write_tokens, m.reasoning_tokens,
               m.ttft_ms, m.total_ms, m.call_id, m.billed_micros, failure
          FROM moved m;
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

CREATE OR REPLACE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM ai_cost_internal.call_changes c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));

-- Every call folded so far was recorded before markups existed: unbilled.
ALTER TABLE ai_cost.calls_hourly ADD COLUMN billed_micros bigint NOT NULL DEFAULT 0,
                                 ADD COLUMN unbilled_calls bigint NOT NULL DEFAULT 0;
UPDATE ai_cost.calls_hourly SET unbilled_calls = calls;
ALTER TABLE ai_cost.calls_hourly ALTER billed_micros DROP DEFAULT, ALTER unbilled_calls DROP DEFAULT;
ALTER TABLE ai_cost_internal.calls_daily ADD COLUMN billed_micros bigint NOT NULL DEFAULT 0,
                                         ADD COLUMN unbilled_calls bigint NOT NULL DEFAULT 0;
UPDATE ai_cost_internal.calls_daily SET unbilled_calls = calls;
ALTER TABLE ai_cost_internal.calls_daily ALTER billed_micros DROP DEFAULT, ALTER unbilled_calls DROP DEFAULT;
COMMENT ON COLUMN ai_cost.calls_hourly.billed_micros IS 'Sum of what the billed calls were charged to their tenants (ai_cost.calls.billed_micros, set by ai_cost.markups), in micro-dollars; never part of cost_micros. Calls not billed add nothing (see unbilled_calls). To aggregate: CASE WHEN sum(calls) > sum(unbilled_calls) THEN sum(billed_micros) END (NULL = none billed).';
COMMENT ON COLUMN ai_cost.calls_hourly.unbilled_calls IS 'Calls with billed_micros NULL: no markup covers them, or their cost is unknown.';
COMMENT ON TABLE ai_cost_internal.calls_daily IS 'Internal: daily (UTC) rollup of ai_cost.calls by every dimension but the user (day is the start of the UTC day): calls, cost, tokens and charges, maintained with calls_hourly by ai_cost.refresh(); what the windowed materialized views and budgets read.';

CREATE OR REPLACE VIEW ai_cost_internal.calls_hourly_pending AS
SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
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
       ai_cost_internal.histogram(total_ms, sign) AS total_ms_hist,
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed) AS ttft_ms_hist,
       coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
       coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;

CREATE OR REPLACE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist, billed_micros, unbilled_calls
  FROM ai_cost.calls_hourly
UNION ALL
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist, billed_micros, unbilled_calls
  FROM ai_cost_internal.calls_hourly_pending;

COMMENT ON COLUMN ai_cost.calls_hourly_live.billed_micros IS 'What the billed calls were charged to their tenants (ai_cost.markups), in micro-dollars, never part of cost_micros; calls not billed add nothing (see unbilled_calls).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.unbilled_calls IS 'Calls not billed: no markup covers them, or their cost is unknown.';

CREATE OR REPLACE VIEW ai_cost.spend_daily AS
SELECT day, provider, model, operation, service_tier, tenant_id, user_id, feature, calls, successes, errors,
       cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
       CASE WHEN calls <> unbilled_calls THEN billed_micros END AS billed_micros, unbilled_calls
  FROM (SELECT (hour AT TIME ZONE 'UTC')::date AS day, provider, model, operation, service_tier,
               tenant_id, user_id, feature,
               sum(calls)::bigint AS calls,
               coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
               coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
               coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
               sum(cost_micros)::bigint AS cost_micros,
               coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0)::bigint AS success_cost_micros,
               sum(unpriced_calls)::bigint AS unpriced_calls,
               coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)::bigint AS unpriced_successes,
               sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens,
               sum(cache_read_tokens)::bigint AS cache_read_tokens,
               sum(cache_write_tokens)::bigint AS cache_write_tokens,
               sum(reasoning_tokens)::bigint AS reasoning_tokens,
               sum(billed_micros)::bigint AS billed_micros,
               sum(unbilled_calls)::bigint AS unbilled_calls
          FROM ai_cost.calls_hourly_live
         GROUP BY 1, provider, model, operation, service_tier, tenant_id, user_id, feature
        HAVING sum(calls) <> 0) AS d;

COMMENT ON COLUMN ai_cost.spend_daily.billed_micros IS 'What the calls were charged to their tenants (ai_cost.markups), in micro-dollars, beside their cost and never part of it: the sum over the billed calls. NULL when none of the calls is billed; see unbilled_calls.';
COMMENT ON COLUMN ai_cost.spend_daily.unbilled_calls IS 'Calls not billed: no markup covers them, or their cost is unknown.';

CREATE OR REPLACE VIEW ai_cost_internal.calls_daily_live AS
SELECT day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason,
       calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, billed_micros, unbilled_calls
  FROM ai_cost_internal.calls_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), provider, model, operation, status, service_tier, tenant_id,
       feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign * billed_micros), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;

CREATE OR REPLACE FUNCTION ai_cost_internal.calls_hourly_pending_between(first_hour timestamptz, end_hour timestamptz)
RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT p.* FROM ai_cost_internal.calls_hourly_pending p WHERE p.hour >= first_hour AND p.hour < end_hour;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz) IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly, for the hours from first_hour to end_hour (ai_cost.calls_between()).';

CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_hour CONSTANT timestamptz := date_trunc('hour', since, 'UTC')
    + CASE WHEN date_trunc('hour', since, 'UTC') = since THEN interval '0' ELSE interval '1 hour' END;
  end_hour CONSTANT timestamptz := date_trunc('hour', until, 'UTC');
BEGIN
  -- Three statements of one function, which is STABLE: they read one
  -- snapshot, so a refresh is seen entirely or not at all, as in
  -- ai_cost.calls_hourly_live.
  RETURN QUERY
  SELECT h.* FROM ai_cost.calls_hourly h WHERE h.hour >= first_hour AND h.hour < end_hour;
  RETURN QUERY
  SELECT p.* FROM ai_cost_internal.calls_hourly_pending_between(first_hour, end_hour) p;
  RETURN QUERY
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed),
         coalesce(sum(c.billed_micros), 0)::bigint, count(*) FILTER (WHERE c.billed_micros IS NULL)
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, '') AS tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms, billed_micros
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, first_hour)
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms, billed_micros
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, end_hour, first_hour)
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason;
END
$$;
COMMENT ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz) IS 'Rollup rows (the shape of ai_cost.calls_hourly) for calls with since <= created_at < until, exact to the instant and current. Several rows can share a key: aggregate them.';

CREATE OR REPLACE FUNCTION ai_cost.retry_set_aside_changes(call_id bigint DEFAULT NULL) RETURNS bigint
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
           a.ttft_ms, a.total_ms, a.call_id, a.billed_micros
      FROM numbered a
     WHERE NOT EXISTS (SELECT FROM numbered b WHERE b.version = a.version AND b.n = a.n AND b.sign = -a.sign)
    RETURNING 1
  )
  SELECT count(*) INTO moved FROM returned;
  RETURN moved;
END
$$;
COMMENT ON FUNCTION ai_cost.retry_set_aside_changes(bigint) IS 'Puts the set-aside changes of a call (or of all calls) back for the next ai_cost.refresh(), once fixed; changes that undo each other cancel out. Returns how many were put back.';

CREATE FUNCTION ai_cost_internal.reference_tables() RETURNS regclass[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ARRAY['ai_cost.providers', 'ai_cost.service_tiers', 'ai_cost.prices', 'ai_cost.model_aliases',
               'ai_cost.model_patterns', 'ai_cost.tenant_discounts', 'ai_cost.tenant_access', 'ai_cost.markups']::regclass[]
$$;
COMMENT ON FUNCTION ai_cost_internal.reference_tables() IS 'Internal: the tables ai_cost.distribute() makes reference tables, a copy on every node.';

CREATE OR REPLACE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price_tables CONSTANT regclass[] := ai_cost_internal.reference_tables();
  node_local_tables CONSTANT regclass[] := ARRAY['ai_cost_internal.price_lookup', 'ai_cost_internal.price_book',
                                                 'ai_cost_internal.price_book_generation'];
  local_price_tables regclass[];
  t regclass;
  trigger_name name;
  source_triggers text[];
  definition text;
  worker record;
  workers integer;
  already boolean;
  moved bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'ai_cost.distribute() needs Citus, and this database has no citus extension: on a Citus coordinator, CREATE EXTENSION citus and add the workers (citus_add_node) first';
  END IF;
  IF (SELECT groupid FROM pg_dist_local_group) <> 0 THEN
    RAISE EXCEPTION 'ai_cost.distribute() runs on the Citus coordinator, and this is a worker';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0) THEN
    RAISE EXCEPTION 'the coordinator is not in the Citus metadata, so it would hold no copy of the price tables: run SELECT citus_set_coordinator_host(''<its host>'', <its port>) first';
  END IF;
  IF (SELECT relkind FROM pg_class WHERE oid = 'ai_cost.calls'::regclass) = 'p' THEN
    RAISE EXCEPTION 'ai_cost.calls is partitioned, and a partitioned ledger cannot be distributed yet';
  END IF;
  already := EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.calls'::regclass);
  PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);

  -- Node-local price state on every worker, created before the statement
  -- below asks each node to fill it. run_command_on_workers commits on its
  -- own: a run that fails later leaves empty tables, which the next run uses.
  FOR worker IN
    SELECT r.nodename, r.nodeport, r.success, r.result
      FROM unnest(node_local_tables) AS n(t),
           LATERAL run_command_on_workers(ai_cost_internal.node_local_table_ddl(n.t)
                                          || CASE WHEN n.t = 'ai_cost_internal.price_book_generation'::regclass
                                                  THEN ' INSERT INTO ai_cost_internal.price_book_generation (generation)'
                                                       ' SELECT 0 WHERE NOT EXISTS (SELECT FROM ai_cost_internal.price_book_generation);'
                                                  ELSE '' END) AS r
     WHERE NOT r.success
  LOOP
    RAISE EXCEPTION 'could not create the price lookup on worker %:%: %', worker.nodename, worker.nodeport, worker.result;
  END LOOP;
  SELECT count(*) INTO workers FROM pg_dist_node WHERE groupid <> 0 AND isactive AND noderole = 'primary';
  step := 'workers'; detail := format('%s worker(s) have the node-local price lookup and book', workers); RETURN NEXT;

  -- Every node compiles its own price book: its DDL stays on the node.
  ALTER FUNCTION ai_cost_internal.compile_price_book() SET citus.enable_ddl_propagation = off;
  -- Otherwise Citus locks every shard an INSERT ... SELECT ... ON CONFLICT
  -- writes against every other one (to keep several copies of a shard
  -- alike): two batches would wait for each other, and all of them for one
  -- long transaction. The calls' shards have one copy, whose unique index
  -- settles a conflict by itself.
  ALTER FUNCTION ai_cost.insert_calls(jsonb) SET citus.all_modifications_commutative = on;
  -- The calls' policy reads the tenant_access reference table on the node of
  -- the shard it filters: a read Citus calls nested, and which is local.
  ALTER FUNCTION ai_cost_internal.may_read_tenant(text) SET citus.allow_nested_distributed_execution = on;

  -- The price tables not yet distributed: all of them on the first run, a
  -- table an upgrade added on a later one.
  local_price_tables := ARRAY(SELECT p FROM unnest(price_tables) AS p
                               WHERE NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = p));
  IF cardinality(local_price_tables) > 0 THEN
    -- Copying a table's rows to its shard copies would fire its triggers
    -- there: they go first and come back on the reference tables, where they
    -- fire on each node's copy. They come back without TRUNCATE among their
    -- events: Citus does not run TRUNCATE triggers on shards.
    source_triggers := ARRAY(
      SELECT regexp_replace(pg_get_triggerdef(g.oid), ' OR TRUNCATE', '')
        FROM pg_trigger g WHERE g.tgrelid = ANY (local_price_tables) AND NOT g.tgisinternal ORDER BY g.tgrelid, g.tgname);
    FOR trigger_name, t IN
      SELECT g.tgname, g.tgrelid::regclass FROM pg_trigger g WHERE g.tgrelid = ANY (local_price_tables) AND NOT g.tgisinternal
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, t);
    END LOOP;
    -- A role's oid differs from node to node: the copy of tenant_access on
    -- every node names its roles.
    IF 'ai_cost.tenant_access'::regclass = ANY (local_price_tables) THEN
      DROP POLICY own_tenants ON ai_cost.tenant_access;
      ALTER TABLE ai_cost.tenant_access ALTER reader TYPE name USING pg_get_userbyid(reader::oid);
      CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT USING (pg_has_role(reader, 'USAGE'));
    END IF;
    FOREACH t IN ARRAY local_price_tables LOOP
      EXECUTE 'SELECT create_reference_table($1)' USING t;
    END LOOP;
    FOREACH definition IN ARRAY source_triggers LOOP
      EXECUTE definition;
    END LOOP;
    step := 'price tables'; detail := (SELECT string_agg(replace(p::text, 'ai_cost.', ''), ', ') FROM unnest(local_price_tables) AS p)
                                      || ' are reference tables'; RETURN NEXT;
  END IF;

  IF already THEN
    -- A worker added since the last run gets its copies of the price tables:
    -- small tables, copied while writes to them wait (the default would need
    -- logical replication, wal_level = logical, on every node).
    EXECUTE 'SELECT replicate_reference_tables(''block_writes'')';
  END IF;
  PERFORM ai_cost_internal.distribute_functions();
  -- A statement on every copy of the prices fires the lookup trigger there:
  -- each node builds its lookup and compiles its book from its copy.
  UPDATE ai_cost.prices SET source = source WHERE id < 0;
  step := 'price book'; detail := 'every node built its price lookup and compiled its price book'; RETURN NEXT;

  IF NOT already THEN
    -- A distribution column cannot be NULL: calls without a tenant get '',
    -- which the rollups read as none (090_rollups.sql), so they do not
    -- change. The rows keep their costs: the cost trigger and the capture
    -- stay out of it.
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__set_billed,
                              DISABLE TRIGGER tg_calls__capture_updates;
    UPDATE ai_cost.calls SET tenant_id = '' WHERE tenant_id IS NULL;
    GET DIAGNOSTICS moved = ROW_COUNT;
    ALTER TABLE ai_cost.calls ALTER tenant_id SET DEFAULT '', ALTER tenant_id SET NOT NULL;
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   'ai_cost_internal.tenant_of_calls_without_one', 'SELECT ''''::pg_catalog.text');
    step := 'calls without a tenant'; detail := format('%s call(s) without a tenant now have tenant_id '''' (a distribution column cannot be NULL)', moved); RETURN NEXT;

    -- Unique keys must hold the distribution column: request ids are unique
    -- per tenant, and ON CONFLICT DO NOTHING (no target) works as before.
    ALTER TABLE ai_cost.calls DROP CONSTRAINT calls_pkey, DROP CONSTRAINT calls_request_id_key;
    ALTER TABLE ai_cost.calls ADD CONSTRAINT calls_pkey PRIMARY KEY (tenant_id, id),
                              ADD CONSTRAINT calls_request_id_key UNIQUE (tenant_id, request_id);
    -- The refresh and the live views read calls by id alone, which the new
    -- primary key, led by the tenant, cannot serve.
    CREATE INDEX calls_id_idx ON ai_cost.calls (id);
    -- The refresh finds new calls by the ids the coordinator draws and the
    -- writers its lock table shows. A call inserted on a worker draws from
    -- the worker's own range of ids, from 2^48 up, and would never be folded.
    ALTER TABLE ai_cost.calls ADD CONSTRAINT "calls are recorded through the coordinator" CHECK (id < 281474976710656);
    -- The policies of the calls and their rollups ask functions instead of
    -- subqueries: Citus refuses subqueries in the policies of a distributed
    -- table, and plans the rollups' join with the tenant_access reference
    -- table recursively, without end. The rollups are on the coordinator.
    FOREACH t IN ARRAY ARRAY['ai_cost.calls', 'ai_cost.calls_hourly', 'ai_cost.conversations_hourly']::regclass[] LOOP
      EXECUTE format('DROP POLICY tenant_rows ON %s', t);
      EXECUTE format('DROP POLICY other_roles_all_rows ON %s', t);
      EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT
                        USING (ai_cost_internal.is_tenant_reader() AND ai_cost_internal.may_read_tenant(tenant_id))', t);
      EXECUTE format('CREATE POLICY other_roles_all_rows ON %s
                        USING (NOT ai_cost_internal.is_tenant_reader()) WITH CHECK (true)', t);
    END LOOP;
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    CREATE TRIGGER tg_calls__refuse_changes BEFORE UPDATE OR DELETE ON ai_cost.calls
      FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.refuse_call_changes();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    -- Citus takes one ENABLE TRIGGER per statement.
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__price_call;
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__set_billed;
    PERFORM ai_cost_internal.distribute_functions();
    step := 'calls'; detail := format('ai_cost.calls is distributed by tenant_id over %s shard(s)',
                                      (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'ai_cost.calls'::regclass));
    RETURN NEXT;
  ELSE
    step := 'calls'; detail := 'ai_cost.calls was already distributed'; RETURN NEXT;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost.distribute() IS 'Distributes the ledger over the Citus cluster this coordinator runs: calls by tenant_id, the price tables as reference tables, a price lookup and book on every node. Idempotent: run it again after adding a worker. See docs/scaling.md.';

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text),
      ai_cost_internal.in_daily_window(timestamptz, time, time, text), ai_cost_internal.bills_calls(),
      ai_cost_internal.markup_book(), ai_cost_internal.markup_book_window(),
      ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric),
      ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint),
      ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)
    TO %I', grantee);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
  calls_reader name;
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
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units,
                  billed_micros, markup_id)
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
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables()
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
                    ai_cost.service_tiers, ai_cost.markups
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
    -- Repricing rewrites the cost and charge columns; the cost and billing
    -- triggers recompute them from the prices and markups, so this cannot
    -- set an arbitrary cost or charge either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason, billed_micros, markup_id) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers, ai_cost.markups
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

  -- On a ledger distributed over Citus the calls' policies call these, as
  -- whoever reads the calls (145_distribution.sql).
  FOR calls_reader IN
    SELECT r.rolname FROM pg_catalog.pg_roles r
     WHERE r.rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION ai_cost_internal.is_tenant_reader(), ai_cost_internal.may_read_tenant(text) TO %I',
                   calls_reader);
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- On a Citus coordinator (a ledger distributed by ai_cost.distribute()):
-- the shards of ai_cost.calls are changed one after another, since Citus
-- cannot create functions on the workers after a parallel change in the
-- same transaction, and a trigger on a distributed table needs
-- citus.enable_unsafe_triggers (145_distribution.sql).
DO $citus$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
END
$citus$;

-- On a Citus coordinator the DDL of a distributed ai_cost.calls reaches its
-- shards as the text of the statement that made it, which must then be one
-- statement, not this whole file: each is executed on its own.
DO $citus$
BEGIN
  EXECUTE $ddl$DROP TRIGGER tg_calls__set_billed ON ai_cost.calls$ddl$;
END
$citus$;

DO $citus$
BEGIN
  EXECUTE $ddl$DROP TRIGGER tg_markups__rebuild_lookup ON ai_cost.markups$ddl$;
END
$citus$;

DROP VIEW ai_cost_internal.pending_changes CASCADE;

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_call_changes() IS 'Trigger: records the calls a statement updated or deleted for the next ai_cost.refresh().';

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND u.last_id
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls() IS 'Internal: the calls visible now that ai_cost.refresh() has not folded into the rollups yet, as additions (+1).';

CREATE OR REPLACE FUNCTION ai_cost_internal.ceiling_breach(change ai_cost_internal.call_changes) RETURNS text
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

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
                                              OUT applied bigint, OUT set_aside bigint, OUT arrived_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
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
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls() u WHERE only_changes IS NULL AND u.call_id <= range_end
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
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
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
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
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
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
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
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
         (SELECT array_agg(a.call_id) FROM arrived a),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
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
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls read; run by ai_cost_internal.refresh_rollups().';

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes_apart(max_splits integer DEFAULT 500, OUT applied bigint, OUT set_aside bigint)
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
      SELECT * INTO part FROM ai_cost_internal.fold_changes(changes[first:last], NULL);
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

CREATE OR REPLACE FUNCTION ai_cost_internal.calls_hourly_pending_between(first_hour timestamptz, end_hour timestamptz)
RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT p.* FROM ai_cost_internal.calls_hourly_pending p WHERE p.hour >= first_hour AND p.hour < end_hour;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz) IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly, for the hours from first_hour to end_hour (ai_cost.calls_between()).';

CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_hour CONSTANT timestamptz := date_trunc('hour', since, 'UTC')
    + CASE WHEN date_trunc('hour', since, 'UTC') = since THEN interval '0' ELSE interval '1 hour' END;
  end_hour CONSTANT timestamptz := date_trunc('hour', until, 'UTC');
BEGIN
  -- Three statements of one function, which is STABLE: they read one
  -- snapshot, so a refresh is seen entirely or not at all, as in
  -- ai_cost.calls_hourly_live.
  RETURN QUERY
  SELECT h.* FROM ai_cost.calls_hourly h WHERE h.hour >= first_hour AND h.hour < end_hour;
  RETURN QUERY
  SELECT p.* FROM ai_cost_internal.calls_hourly_pending_between(first_hour, end_hour) p;
  RETURN QUERY
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
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, '') AS tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, first_hour)
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, end_hour, first_hour)
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason;
END
$$;
COMMENT ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz) IS 'Rollup rows (the shape of ai_cost.calls_hourly) for calls with since <= created_at < until, exact to the instant and current. Several rows can share a key: aggregate them.';

CREATE OR REPLACE FUNCTION ai_cost.retry_set_aside_changes(call_id bigint DEFAULT NULL) RETURNS bigint
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

CREATE OR REPLACE FUNCTION ai_cost.reprice_batch(run_id bigint, batch_size integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ai_cost.reprice_runs;
  examined integer;
  changed integer;
  delta numeric;
  last_created_at timestamptz;
  last_id bigint;
BEGIN
  SELECT * INTO run FROM ai_cost.reprice_runs r WHERE r.id = run_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no reprice run with id %', run_id USING ERRCODE = 'no_data_found';
  END IF;
  IF run.finished_at IS NOT NULL THEN
    RETURN 0;
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
  END IF;

  WITH batch AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= run.from_time AND c.created_at < run.to_time
       AND (run.cursor_id IS NULL OR (c.created_at, c.id) > (run.cursor_created_at, run.cursor_id))
       AND (run.provider IS NULL OR c.provider = run.provider)
       AND (run.model IS NULL OR c.model = run.model)
       AND (NOT run.only_unpriced OR c.cost_micros IS NULL)
     ORDER BY c.created_at, c.id
     LIMIT batch_size
     FOR UPDATE
  ),
  repriced AS (
    SELECT b.id, b.created_at, b.cost_micros AS old_cost, b.price_id AS old_price,
           b.unpriced_reason AS old_reason, b.discount_id AS old_discount, n.*
      FROM batch b CROSS JOIN LATERAL ai_cost_internal.cost_of(b) n
  ),
  updated AS (
    UPDATE ai_cost.calls c
       SET cost_micros = r.cost_micros, price_id = r.price_id, discount_id = r.discount_id,
           unpriced_reason = r.unpriced_reason
      FROM repriced r
     WHERE c.id = r.id
       AND (r.cost_micros IS DISTINCT FROM r.old_cost OR r.price_id IS DISTINCT FROM r.old_price
            OR r.discount_id IS DISTINCT FROM r.old_discount OR r.unpriced_reason IS DISTINCT FROM r.old_reason)
       AND (run.catalog IS NULL
            OR EXISTS (SELECT FROM ai_cost.prices p WHERE p.id = r.price_id AND p.catalog IS NOT NULL))
    RETURNING c.id, c.cost_micros, c.price_id, c.unpriced_reason
  ),
  audited AS (
    INSERT INTO ai_cost.reprice_audit (run_id, call_id, old_cost_micros, new_cost_micros, old_price_id, new_price_id,
                                       old_unpriced_reason, new_unpriced_reason, reason)
    SELECT run.id, u.id, r.old_cost, u.cost_micros, r.old_price, u.price_id, r.old_reason, u.unpriced_reason, run.reason
      FROM updated u JOIN repriced r USING (id)
    RETURNING new_cost_micros - old_cost_micros AS delta
  )
  SELECT (SELECT count(*) FROM repriced),
         (SELECT count(*) FROM audited),
         (SELECT coalesce(sum(a.delta), 0) FROM audited a),
         last_row.created_at, last_row.id
    INTO examined, changed, delta, last_created_at, last_id
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (SELECT r.created_at, r.id FROM repriced r ORDER BY r.created_at DESC, r.id DESC LIMIT 1) last_row ON true;

  UPDATE ai_cost.reprice_runs r
     SET cursor_created_at = coalesce(last_created_at, r.cursor_created_at),
         cursor_id = coalesce(last_id, r.cursor_id),
         calls_done = r.calls_done + examined,
         calls_changed = r.calls_changed + changed,
         delta_micros = r.delta_micros + delta,
         updated_at = now(),
         finished_at = CASE WHEN examined < batch_size THEN now() END
   WHERE r.id = run.id;
  RETURN examined;
END
$$;
COMMENT ON FUNCTION ai_cost.reprice_batch(bigint, integer) IS 'Reprices the next batch_size calls of a run, updating and auditing only calls whose cost changed; returns the number examined (0 once the run is finished). Call it in a loop, one transaction per call.';

CREATE OR REPLACE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price_tables CONSTANT regclass[] := ARRAY['ai_cost.providers', 'ai_cost.service_tiers', 'ai_cost.prices', 'ai_cost.model_aliases',
                                            'ai_cost.model_patterns', 'ai_cost.tenant_discounts', 'ai_cost.tenant_access'];
  node_local_tables CONSTANT regclass[] := ARRAY['ai_cost_internal.price_lookup', 'ai_cost_internal.price_book',
                                                 'ai_cost_internal.price_book_generation'];
  t regclass;
  trigger_name name;
  source_triggers text[];
  definition text;
  worker record;
  workers integer;
  already boolean;
  moved bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'ai_cost.distribute() needs Citus, and this database has no citus extension: on a Citus coordinator, CREATE EXTENSION citus and add the workers (citus_add_node) first';
  END IF;
  IF (SELECT groupid FROM pg_dist_local_group) <> 0 THEN
    RAISE EXCEPTION 'ai_cost.distribute() runs on the Citus coordinator, and this is a worker';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0) THEN
    RAISE EXCEPTION 'the coordinator is not in the Citus metadata, so it would hold no copy of the price tables: run SELECT citus_set_coordinator_host(''<its host>'', <its port>) first';
  END IF;
  IF (SELECT relkind FROM pg_class WHERE oid = 'ai_cost.calls'::regclass) = 'p' THEN
    RAISE EXCEPTION 'ai_cost.calls is partitioned, and a partitioned ledger cannot be distributed yet';
  END IF;
  already := EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.calls'::regclass);
  PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);

  -- Node-local price state on every worker, created before the statement
  -- below asks each node to fill it. run_command_on_workers commits on its
  -- own: a run that fails later leaves empty tables, which the next run uses.
  FOR worker IN
    SELECT r.nodename, r.nodeport, r.success, r.result
      FROM unnest(node_local_tables) AS n(t),
           LATERAL run_command_on_workers(ai_cost_internal.node_local_table_ddl(n.t)
                                          || CASE WHEN n.t = 'ai_cost_internal.price_book_generation'::regclass
                                                  THEN ' INSERT INTO ai_cost_internal.price_book_generation (generation)'
                                                       ' SELECT 0 WHERE NOT EXISTS (SELECT FROM ai_cost_internal.price_book_generation);'
                                                  ELSE '' END) AS r
     WHERE NOT r.success
  LOOP
    RAISE EXCEPTION 'could not create the price lookup on worker %:%: %', worker.nodename, worker.nodeport, worker.result;
  END LOOP;
  SELECT count(*) INTO workers FROM pg_dist_node WHERE groupid <> 0 AND isactive AND noderole = 'primary';
  step := 'workers'; detail := format('%s worker(s) have the node-local price lookup and book', workers); RETURN NEXT;

  -- Every node compiles its own price book: its DDL stays on the node.
  ALTER FUNCTION ai_cost_internal.compile_price_book() SET citus.enable_ddl_propagation = off;
  -- Otherwise Citus locks every shard an INSERT ... SELECT ... ON CONFLICT
  -- writes against every other one (to keep several copies of a shard
  -- alike): two batches would wait for each other, and all of them for one
  -- long transaction. The calls' shards have one copy, whose unique index
  -- settles a conflict by itself.
  ALTER FUNCTION ai_cost.insert_calls(jsonb) SET citus.all_modifications_commutative = on;
  -- The calls' policy reads the tenant_access reference table on the node of
  -- the shard it filters: a read Citus calls nested, and which is local.
  ALTER FUNCTION ai_cost_internal.may_read_tenant(text) SET citus.allow_nested_distributed_execution = on;

  IF NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.prices'::regclass) THEN
    -- Copying a table's rows to its shard copies would fire its triggers
    -- there: they go first and come back on the reference tables, where they
    -- fire on each node's copy. They come back without TRUNCATE among their
    -- events: Citus does not run TRUNCATE triggers on shards.
    source_triggers := ARRAY(
      SELECT regexp_replace(pg_get_triggerdef(g.oid), ' OR TRUNCATE', '')
        FROM pg_trigger g WHERE g.tgrelid = ANY (price_tables) AND NOT g.tgisinternal ORDER BY g.tgrelid, g.tgname);
    FOR trigger_name, t IN
      SELECT g.tgname, g.tgrelid::regclass FROM pg_trigger g WHERE g.tgrelid = ANY (price_tables) AND NOT g.tgisinternal
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, t);
    END LOOP;
    -- A role's oid differs from node to node: the copy of tenant_access on
    -- every node names its roles.
    DROP POLICY own_tenants ON ai_cost.tenant_access;
    ALTER TABLE ai_cost.tenant_access ALTER reader TYPE name USING pg_get_userbyid(reader::oid);
    CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT USING (pg_has_role(reader, 'USAGE'));
    FOREACH t IN ARRAY price_tables LOOP
      EXECUTE 'SELECT create_reference_table($1)' USING t;
    END LOOP;
    FOREACH definition IN ARRAY source_triggers LOOP
      EXECUTE definition;
    END LOOP;
    step := 'price tables'; detail := (SELECT string_agg(replace(p::text, 'ai_cost.', ''), ', ') FROM unnest(price_tables) AS p)
                                      || ' are reference tables'; RETURN NEXT;
  END IF;

  IF already THEN
    -- A worker added since the last run gets its copies of the price tables:
    -- small tables, copied while writes to them wait (the default would need
    -- logical replication, wal_level = logical, on every node).
    EXECUTE 'SELECT replicate_reference_tables(''block_writes'')';
  END IF;
  PERFORM ai_cost_internal.distribute_functions();
  -- A statement on every copy of the prices fires the lookup trigger there:
  -- each node builds its lookup and compiles its book from its copy.
  UPDATE ai_cost.prices SET source = source WHERE id < 0;
  step := 'price book'; detail := 'every node built its price lookup and compiled its price book'; RETURN NEXT;

  IF NOT already THEN
    -- A distribution column cannot be NULL: calls without a tenant get '',
    -- which the rollups read as none (090_rollups.sql), so they do not
    -- change. The rows keep their costs: the cost trigger and the capture
    -- stay out of it.
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__capture_updates;
    UPDATE ai_cost.calls SET tenant_id = '' WHERE tenant_id IS NULL;
    GET DIAGNOSTICS moved = ROW_COUNT;
    ALTER TABLE ai_cost.calls ALTER tenant_id SET DEFAULT '', ALTER tenant_id SET NOT NULL;
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   'ai_cost_internal.tenant_of_calls_without_one', 'SELECT ''''::pg_catalog.text');
    step := 'calls without a tenant'; detail := format('%s call(s) without a tenant now have tenant_id '''' (a distribution column cannot be NULL)', moved); RETURN NEXT;

    -- Unique keys must hold the distribution column: request ids are unique
    -- per tenant, and ON CONFLICT DO NOTHING (no target) works as before.
    ALTER TABLE ai_cost.calls DROP CONSTRAINT calls_pkey, DROP CONSTRAINT calls_request_id_key;
    ALTER TABLE ai_cost.calls ADD CONSTRAINT calls_pkey PRIMARY KEY (tenant_id, id),
                              ADD CONSTRAINT calls_request_id_key UNIQUE (tenant_id, request_id);
    -- The refresh and the live views read calls by id alone, which the new
    -- primary key, led by the tenant, cannot serve.
    CREATE INDEX calls_id_idx ON ai_cost.calls (id);
    -- The refresh finds new calls by the ids the coordinator draws and the
    -- writers its lock table shows. A call inserted on a worker draws from
    -- the worker's own range of ids, from 2^48 up, and would never be folded.
    ALTER TABLE ai_cost.calls ADD CONSTRAINT "calls are recorded through the coordinator" CHECK (id < 281474976710656);
    -- The policies of the calls and their rollups ask functions instead of
    -- subqueries: Citus refuses subqueries in the policies of a distributed
    -- table, and plans the rollups' join with the tenant_access reference
    -- table recursively, without end. The rollups are on the coordinator.
    FOREACH t IN ARRAY ARRAY['ai_cost.calls', 'ai_cost.calls_hourly', 'ai_cost.conversations_hourly']::regclass[] LOOP
      EXECUTE format('DROP POLICY tenant_rows ON %s', t);
      EXECUTE format('DROP POLICY other_roles_all_rows ON %s', t);
      EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT
                        USING (ai_cost_internal.is_tenant_reader() AND ai_cost_internal.may_read_tenant(tenant_id))', t);
      EXECUTE format('CREATE POLICY other_roles_all_rows ON %s
                        USING (NOT ai_cost_internal.is_tenant_reader()) WITH CHECK (true)', t);
    END LOOP;
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    CREATE TRIGGER tg_calls__refuse_changes BEFORE UPDATE OR DELETE ON ai_cost.calls
      FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.refuse_call_changes();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__price_call;
    PERFORM ai_cost_internal.distribute_functions();
    step := 'calls'; detail := format('ai_cost.calls is distributed by tenant_id over %s shard(s)',
                                      (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'ai_cost.calls'::regclass));
    RETURN NEXT;
  ELSE
    step := 'calls'; detail := 'ai_cost.calls was already distributed'; RETURN NEXT;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost.distribute() IS 'Distributes the ledger over the Citus cluster this coordinator runs: calls by tenant_id, the price tables as reference tables, a price lookup and book on every node. Idempotent: run it again after adding a worker. See docs/scaling.md.';

CREATE OR REPLACE FUNCTION ai_cost_internal.compile_price_book() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  book_slots jsonb;
  book_rates text;
  book_windows text;
  own_price_tenants jsonb;
  stale_at timestamptz;
  base integer;
BEGIN
  LOCK TABLE ai_cost_internal.price_lookup IN EXCLUSIVE MODE;
  UPDATE ai_cost_internal.price_book_generation
     SET generation = CASE WHEN compiled_in = pg_current_xact_id() THEN generation ELSE (generation + 1) % 2047 END,
         compiled_in = pg_current_xact_id()
  RETURNING 1 + generation * 1048576 INTO base;
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
       -- A key with a price of certain hours of the day, now or to come,
       -- depends on the hour of each call: the lookup prices it.
       AND NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup w
                        WHERE w.provider = l.provider AND w.model = l.model AND w.service_tier = l.service_tier
                          AND w.daily_from IS NOT NULL AND (w.valid_to IS NULL OR w.valid_to > now()))
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
                 coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok) * l.factor,
                 coalesce(l.image_input_per_mtok, l.input_per_mtok) * l.factor,
                 coalesce(l.image_output_per_mtok, l.output_per_mtok) * l.factor,
                 coalesce(l.video_input_per_mtok, l.input_per_mtok) * l.factor] AS per_mtok
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
       -- The book writes no discount as 0: a discount id of 0 or less (an
       -- identity overridden by hand) is left to the lookup.
       AND coalesce(p.discount_id, 1) > 0
  )
  INSERT INTO ai_cost_internal.price_book
  SELECT base + c.slot - 1, c.key, c.provider, c.service_tier, c.model, c.price_id, c.discount_id,
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7], c.rates[8], c.rates[9],
         c.rates[10], c.rates[11], c.rates[12],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7], c.bits[8], c.bits[9],
         c.bits[10], c.bits[11], c.bits[12],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c
   WHERE c.slot <= 1048576;

  -- The same book as constants for the cost trigger, the bits as masks, in
  -- arrays whose first slot is base. The discount id is 0 for none, so that
  -- NULL always means a slot outside the array; without NULLs an array has
  -- no null bitmap either, and a subscript is an offset rather than a walk
  -- over the elements before it.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce(format('[%s:%s][1:26]={', base, max(b.slot)) || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.reasoning_rate, b.cache_read_audio_rate,
                                           b.image_input_rate, b.image_output_rate, b.video_input_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits), -(1::bigint << b.reasoning_bits),
                                           -(1::bigint << b.cache_read_audio_bits), -(1::bigint << b.image_input_bits),
                                           -(1::bigint << b.image_output_bits), -(1::bigint << b.video_input_bits),
                                           coalesce(b.discount_id, 0)),
                                    ',' ORDER BY b.slot) || '}', '{}'),
         coalesce(format('[%s:%s][1:2]={', base, max(b.slot)) || string_agg('{"' || b.valid_from || '","' || b.valid_to || '"}', ',' ORDER BY b.slot) || '}', '{}')
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

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text),
      ai_cost_internal.in_daily_window(timestamptz, time, time, text)
    TO %I', grantee);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
  calls_reader name;
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
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz)
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

  -- On a ledger distributed over Citus the calls' policies call these, as
  -- whoever reads the calls (145_distribution.sql).
  FOR calls_reader IN
    SELECT r.rolname FROM pg_catalog.pg_roles r
     WHERE r.rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION ai_cost_internal.is_tenant_reader(), ai_cost_internal.may_read_tenant(text) TO %I',
                   calls_reader);
  END LOOP;
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
    format('price row %s (%s/%s, %s, %s%s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
           CASE WHEN p.daily_from IS NOT NULL
                THEN format(', daily from %s to %s %s', left(p.daily_from::text, 5), left(p.daily_to::text, 5), p.time_zone)
                ELSE '' END,
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

ALTER TABLE ai_cost.calls_hourly DROP COLUMN billed_micros, DROP COLUMN unbilled_calls;
ALTER TABLE ai_cost_internal.calls_daily DROP COLUMN billed_micros, DROP COLUMN unbilled_calls;
ALTER TABLE ai_cost_internal.call_changes DROP COLUMN billed_micros;
ALTER TABLE ai_cost_internal.set_aside_changes DROP COLUMN billed_micros;
ALTER TABLE ai_cost.reprice_audit DROP COLUMN old_billed_micros, DROP COLUMN new_billed_micros;

COMMENT ON TABLE ai_cost.reprice_audit IS 'Every change a reprice or backfill made to a call: old and new cost, price row and unpriced reason, when and why.';
COMMENT ON COLUMN ai_cost.reprice_runs.calls_changed IS 'Calls whose cost, price or reason changed.';

COMMENT ON TABLE ai_cost_internal.calls_daily IS 'Internal: daily (UTC) rollup of ai_cost.calls by every dimension but the user (day is the start of the UTC day): calls, cost and tokens, maintained with calls_hourly by ai_cost.refresh(); what the windowed materialized views and budgets read.';

COMMENT ON FUNCTION ai_cost_internal.price_sources_changed() IS 'Trigger: rebuilds the resolved price lookup after prices, aliases, discounts or service tiers change.';

COMMENT ON FUNCTION ai_cost_internal.price_book_stale_at() IS 'Internal, generated by ai_cost_internal.compile_price_book(): when a price next starts or ends, after which ai_cost.refresh() compiles the book again.';

CREATE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM ai_cost_internal.call_changes c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));
COMMENT ON VIEW ai_cost_internal.pending_changes IS 'Internal: what the next ai_cost.refresh() will fold: the unfolded calls (+1) and the changes of calls already folded.';

CREATE VIEW ai_cost_internal.calls_hourly_pending AS
SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
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
       ai_cost_internal.histogram(total_ms, sign) AS total_ms_hist,
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed) AS ttft_ms_hist
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_hourly_pending IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly; ai_cost.calls_hourly_live adds them to it.';

CREATE VIEW ai_cost.conversations_hourly_live AS
SELECT hour, conversation_id, tenant_id, user_id, calls, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost.conversations_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
       sum(sign)::bigint, coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint, coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost_internal.pending_changes
 WHERE conversation_id IS NOT NULL
 GROUP BY 1, conversation_id, tenant_id, user_id;
COMMENT ON VIEW ai_cost.conversations_hourly_live IS 'ai_cost.conversations_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.hour IS 'Start of the UTC hour of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.conversation_id IS 'Conversation or session id.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.tenant_id IS 'Tenant of the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.user_id IS 'End user of the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.calls IS 'Number of call attempts. A row of changes since the last refresh can be negative (a deleted or repriced call): sum the rows.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.output_tokens IS 'Sum of output tokens (reasoning included).';

CREATE VIEW ai_cost_internal.calls_daily_live AS
SELECT day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason,
       calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens
  FROM ai_cost_internal.calls_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), provider, model, operation, status, service_tier, tenant_id,
       feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_daily_live IS 'Internal: the daily calls rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.users_daily_live AS
SELECT day, tenant_id, user_id, calls, successes, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost_internal.users_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), tenant_id, user_id,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, tenant_id, user_id;
COMMENT ON VIEW ai_cost_internal.users_daily_live IS 'Internal: the daily per-user rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost.spend_daily_by_user AS
WITH pending AS (
  SELECT date_trunc('day', created_at, 'UTC') AS day, tenant_id, user_id,
         sum(sign)::bigint AS calls,
         coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
         coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes
   GROUP BY 1, tenant_id, user_id
)
SELECT day, tenant_id, user_id, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.tenant_id, r.user_id,
               r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
               r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
               r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
               r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
               r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
          FROM ai_cost_internal.users_daily r
          LEFT JOIN pending p
            ON p.day = r.day AND coalesce(p.tenant_id, '') = coalesce(r.tenant_id, '')
           AND (p.tenant_id IS NULL) = (r.tenant_id IS NULL)
           AND coalesce(p.user_id, '') = coalesce(r.user_id, '') AND (p.user_id IS NULL) = (r.user_id IS NULL)
        UNION ALL
        SELECT (p.day AT TIME ZONE 'UTC')::date, p.tenant_id, p.user_id, p.calls, p.successes, p.cost_micros,
               p.unpriced_calls, p.input_tokens, p.output_tokens
          FROM pending p
         WHERE NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                            WHERE r.day = p.day AND r.user_id = p.user_id AND r.tenant_id = p.tenant_id)
           AND (p.tenant_id IS NOT NULL AND p.user_id IS NOT NULL
                OR NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                                WHERE r.day = p.day AND r.user_id IS NOT DISTINCT FROM p.user_id
                                  AND r.tenant_id IS NOT DISTINCT FROM p.tenant_id))) AS u
 WHERE calls <> 0;
COMMENT ON VIEW ai_cost.spend_daily_by_user IS 'Spend per UTC day by tenant and user; always current. What a drill-down from a tenant to its users, or to one user, should read over weeks or months: a row per user and day. cost_micros counts every attempt (failed calls are billed too) and is the sum over priced calls, NULL when every call behind it is unpriced; unpriced_calls counts the calls whose cost is unknown. For a user''s spend by model or feature, filter ai_cost.spend_daily to the user and a few days.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.day IS 'UTC calendar day of the calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.calls IS 'Call attempts: successes, errors and cancelled calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.output_tokens IS 'Sum of output tokens (reasoning included).';

CREATE VIEW ai_cost_internal.models_hourly_live AS
SELECT hour, provider, model, status, cached, calls, total_ms_calls, total_ms_sum, total_ms_hist,
       ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost_internal.models_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, status, cached;
COMMENT ON VIEW ai_cost_internal.models_hourly_live IS 'Internal: the per-model hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, feature, status;
COMMENT ON VIEW ai_cost_internal.features_hourly_live IS 'Internal: the per-feature hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost.activity_hourly AS
SELECT hour, calls, successes, errors, cancelled, app_cache_hits,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       input_tokens, output_tokens, unpriced_calls
  FROM (SELECT hour, sum(calls)::bigint AS calls,
               coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
               coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
               coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(calls) FILTER (WHERE cached), 0)::bigint AS app_cache_hits,
               sum(cost_micros)::bigint AS cost_micros,
               sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
               sum(unpriced_calls)::bigint AS unpriced_calls
          FROM (SELECT hour, status, cached, calls, cost_micros, input_tokens, output_tokens, unpriced_calls
                  FROM ai_cost_internal.activity_hourly
                UNION ALL
                SELECT date_trunc('hour', created_at, 'UTC'), status, cached, sign, coalesce(sign * cost_micros, 0),
                       coalesce(sign * input_tokens, 0), coalesce(sign * output_tokens, 0),
                       CASE WHEN cost_micros IS NULL THEN sign ELSE 0 END
                  FROM ai_cost_internal.pending_changes) AS a
         GROUP BY hour
        HAVING sum(calls) <> 0) AS h;
COMMENT ON VIEW ai_cost.activity_hourly IS 'Calls, failures, app-cache hits, tokens and spend per UTC hour; always current. cost_micros is the sum over priced calls, NULL when every call of the hour is unpriced; unpriced_calls counts the calls whose cost is unknown.';
COMMENT ON COLUMN ai_cost.activity_hourly.hour IS 'Start of the UTC hour of the calls.';
COMMENT ON COLUMN ai_cost.activity_hourly.calls IS 'Call attempts: successes + errors + cancelled.';
COMMENT ON COLUMN ai_cost.activity_hourly.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.activity_hourly.errors IS 'Calls with status error (billed for the tokens they used).';
COMMENT ON COLUMN ai_cost.activity_hourly.cancelled IS 'Calls with status cancelled.';
COMMENT ON COLUMN ai_cost.activity_hourly.app_cache_hits IS 'Calls answered from the application''s own cache (no provider call, cost 0); counted in calls too.';
COMMENT ON COLUMN ai_cost.activity_hourly.cost_micros IS 'Cost of every attempt in the hour, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.activity_hourly.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.activity_hourly.output_tokens IS 'Sum of output tokens (reasoning included).';
COMMENT ON COLUMN ai_cost.activity_hourly.unpriced_calls IS 'Calls in the hour without a price: their cost is unknown and not in cost_micros.';

CREATE VIEW ai_cost.unpriced_models AS
SELECT provider, model, service_tier, unpriced_reason, sum(calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       min(hour) AS first_hour, max(hour) AS last_hour
  FROM (SELECT hour, provider, model, service_tier, unpriced_reason, sum(calls) AS calls,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
          FROM (SELECT hour, provider, model, service_tier, unpriced_reason, calls, input_tokens, output_tokens
                  FROM ai_cost_internal.unpriced_hourly
                UNION ALL
                SELECT date_trunc('hour', created_at, 'UTC'), provider, model, service_tier, unpriced_reason, sign,
                       coalesce(sign * input_tokens, 0), coalesce(sign * output_tokens, 0)
                  FROM ai_cost_internal.pending_changes
                 WHERE unpriced_reason IS NOT NULL) AS u
         GROUP BY hour, provider, model, service_tier, unpriced_reason
        HAVING sum(calls) <> 0) AS h
 GROUP BY provider, model, service_tier, unpriced_reason;
COMMENT ON VIEW ai_cost.unpriced_models IS 'Models (and the reason) with calls that have no cost: add a price to ai_cost.prices and reprice them. first_hour/last_hour bound when they happened.';
COMMENT ON COLUMN ai_cost.unpriced_models.provider IS 'Provider id of the unpriced calls.';
COMMENT ON COLUMN ai_cost.unpriced_models.model IS 'Model id the calls reported: add a price for it to ai_cost.prices (or an alias), then reprice.';
COMMENT ON COLUMN ai_cost.unpriced_models.service_tier IS 'Service tier of the calls (each tier needs its own price).';
COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_reason IS 'Why the calls have no cost, e.g. no price for the model, or no price for a token kind they used.';
COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_calls IS 'Number of calls of this model, tier and reason without a cost.';
COMMENT ON COLUMN ai_cost.unpriced_models.input_tokens IS 'Sum of their input tokens: what a price would bill.';
COMMENT ON COLUMN ai_cost.unpriced_models.output_tokens IS 'Sum of their output tokens: what a price would bill.';
COMMENT ON COLUMN ai_cost.unpriced_models.first_hour IS 'Start of the first UTC hour that holds such calls.';
COMMENT ON COLUMN ai_cost.unpriced_models.last_hour IS 'Start of the last UTC hour that holds such calls.';

CREATE VIEW ai_cost_internal.dimensions_daily_live AS
WITH pending AS (
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, v.dimension, v.value,
         sum(c.sign)::bigint AS calls,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'success'), 0)::bigint AS successes,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'error'), 0)::bigint AS errors,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'cancelled'), 0)::bigint AS cancelled,
         coalesce(sum(c.sign * c.cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(c.sign * c.cost_micros) FILTER (WHERE c.status = 'success'), 0)::bigint AS success_cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL AND c.status = 'success'), 0)::bigint AS unpriced_successes,
         coalesce(sum(c.sign * c.input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(c.sign * c.output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                        c.tenant_id, c.user_id, c.feature) AS v
   GROUP BY 1, v.dimension, v.value
)
SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.dimension, r.value,
       r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
       r.errors + coalesce(p.errors, 0) AS errors, r.cancelled + coalesce(p.cancelled, 0) AS cancelled,
       r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
       r.success_cost_micros + coalesce(p.success_cost_micros, 0) AS success_cost_micros,
       r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
       r.unpriced_successes + coalesce(p.unpriced_successes, 0) AS unpriced_successes,
       r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
       r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
  FROM ai_cost_internal.dimensions_daily r
  LEFT JOIN pending p
    ON p.day = r.day AND p.dimension = r.dimension AND coalesce(p.value, '') = coalesce(r.value, '')
   AND (p.value IS NULL) = (r.value IS NULL)
 WHERE r.calls + coalesce(p.calls, 0) <> 0
UNION ALL
SELECT (p.day AT TIME ZONE 'UTC')::date, p.dimension, p.value, p.calls, p.successes, p.errors, p.cancelled,
       p.cost_micros, p.success_cost_micros, p.unpriced_calls, p.unpriced_successes, p.input_tokens, p.output_tokens
  FROM pending p
 WHERE p.calls <> 0
   AND NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                    WHERE r.day = p.day AND r.dimension = p.dimension AND r.value = p.value)
   AND (p.value IS NOT NULL
        OR NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                        WHERE r.day = p.day AND r.dimension = p.dimension AND r.value IS NULL));
COMMENT ON VIEW ai_cost_internal.dimensions_daily_live IS 'Internal: the daily dimension rollup plus the changes since the last refresh, one row per UTC day, dimension and value; costs are sums over priced calls.';

CREATE VIEW ai_cost.budget_status AS
WITH periods AS (
  SELECT b.*, p.period_start, p.period_end
    FROM ai_cost.budgets b
   CROSS JOIN LATERAL (
     SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
            (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
   ) AS p
), pending AS (
  -- Keyed like the budgets: '' stands for the global scope, so that the join
  -- below is a plain equality; calls without a tenant, user or feature
  -- count toward global budgets only.
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, s.scope, s.value, sum(c.sign) AS calls,
         coalesce(sum(c.sign * c.cost_micros), 0) AS cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0) AS unpriced_calls
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL (VALUES ('global', ''), ('tenant', c.tenant_id), ('user', c.user_id), ('feature', c.feature)) AS s(scope, value)
   WHERE s.value IS NOT NULL
   GROUP BY 1, s.scope, s.value
), pending_spend AS (
  SELECT b.id, sum(x.calls) AS calls, sum(x.cost_micros) AS cost_micros, sum(x.unpriced_calls) AS unpriced_calls
    FROM periods b
    JOIN pending x ON x.scope = b.scope AND x.value = coalesce(b.scope_value, '')
   WHERE x.day >= b.period_start AND x.day < b.period_end
   GROUP BY b.id
)
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, b.period_start, b.period_end,
       b.limit_micros, k.spent_micros, s.unpriced_calls,
       b.limit_micros - k.spent_micros AS remaining_micros,
       round(100 * k.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(k.spent_micros * extract(epoch FROM b.period_end - b.period_start)
             / greatest(extract(epoch FROM now() - b.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN k.spent_micros IS NULL THEN 'unknown'
            WHEN k.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM periods b
  LEFT JOIN pending_spend ps ON ps.id = b.id
 CROSS JOIN LATERAL (
   SELECT (coalesce(sum(r.calls), 0) + coalesce(ps.calls, 0))::bigint AS calls,
          (coalesce(sum(r.cost_micros), 0) + coalesce(ps.cost_micros, 0))::bigint AS spent_micros,
          (coalesce(sum(r.unpriced_calls), 0) + coalesce(ps.unpriced_calls, 0))::bigint AS unpriced_calls
     FROM (SELECT r.calls, r.cost_micros, r.unpriced_calls FROM ai_cost_internal.dimensions_daily r
            WHERE b.scope = 'global' AND r.dimension = 'provider'
              AND (r.day AT TIME ZONE 'UTC')::date >= (b.period_start AT TIME ZONE 'UTC')::date
              AND (r.day AT TIME ZONE 'UTC')::date < (b.period_end AT TIME ZONE 'UTC')::date
           UNION ALL
           SELECT r.calls, r.cost_micros, r.unpriced_calls FROM ai_cost_internal.dimensions_daily r
            WHERE b.scope <> 'global' AND r.dimension = b.scope AND r.value = b.scope_value
              AND (r.day AT TIME ZONE 'UTC')::date >= (b.period_start AT TIME ZONE 'UTC')::date
              AND (r.day AT TIME ZONE 'UTC')::date < (b.period_end AT TIME ZONE 'UTC')::date) AS r
 ) AS s
 CROSS JOIN LATERAL (
   SELECT CASE WHEN s.calls = 0 OR s.calls <> s.unpriced_calls THEN s.spent_micros END AS spent_micros
 ) AS k;
COMMENT ON VIEW ai_cost.budget_status IS 'Each budget in its current UTC period: spend, remaining, percent used, linear projection to period end, highest threshold crossed and status (ok, warning, exceeded, or unknown when nothing in the period is priced). Always current. spent_micros is the sum over priced calls, with unpriced_calls counting the calls whose cost is unknown; when every call of the period is unpriced, spend is unknown: spent_micros and the figures from it are NULL and status is unknown.';
COMMENT ON COLUMN ai_cost.budget_status.budget_id IS 'The ai_cost.budgets row.';
COMMENT ON COLUMN ai_cost.budget_status.name IS 'Name of the budget.';
COMMENT ON COLUMN ai_cost.budget_status.scope IS 'What the budget covers: global (all calls), tenant, user or feature.';
COMMENT ON COLUMN ai_cost.budget_status.scope_value IS 'The tenant_id, user_id or feature covered; NULL for global.';
COMMENT ON COLUMN ai_cost.budget_status.period IS 'day, week (from Monday) or month, in UTC.';
COMMENT ON COLUMN ai_cost.budget_status.period_start IS 'Start of the current period (UTC midnight of the day, of the Monday, or of the 1st of the month).';
COMMENT ON COLUMN ai_cost.budget_status.period_end IS 'End of the current period (exclusive): the start of the next one.';
COMMENT ON COLUMN ai_cost.budget_status.limit_micros IS 'Limit per period, in micro-dollars (1 = $0.000001).';
COMMENT ON COLUMN ai_cost.budget_status.spent_micros IS 'Spend in the current period so far, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.budget_status.unpriced_calls IS 'Calls in the current period without a price: their cost is unknown and not in spent_micros.';
COMMENT ON COLUMN ai_cost.budget_status.remaining_micros IS 'limit_micros - spent_micros, in micro-dollars (1 = $0.000001); negative once exceeded; NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.used_percent IS 'spent_micros as a percentage of limit_micros, 2 decimals (can pass 100); NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.projected_micros IS 'spent_micros extrapolated linearly from the time elapsed to the end of the period, in micro-dollars (1 = $0.000001); NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.crossed_percent IS 'The highest alert threshold (of the budget''s alert_at_percent) that spend has reached; NULL: none.';
COMMENT ON COLUMN ai_cost.budget_status.status IS 'exceeded (spend >= limit), warning (an alert threshold reached), ok, or unknown (calls in the period, none of them priced).';

CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.pending_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes,
       (SELECT min(u.held_since) FROM ai_cost_internal.unfolded_ids u) AS held_back_since,
       (SELECT array_agg(DISTINCT l.pid ORDER BY l.pid) FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL
           AND l.virtualxid IN (SELECT unnest(u.writers) FROM ai_cost_internal.unfolded_ids u)) AS held_back_by_pids
  FROM ai_cost_internal.refresh_state s;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many wait for the next run, how many it set aside (ai_cost.set_aside_calls), and which open transactions hold calls back.';
COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';
COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';
COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';
COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'New calls, updates and deletes the last refresh of the rollups folded in.';
COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'New calls, updates and deletes waiting for the next refresh (the live views already count them).';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded.';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_by_pids IS 'Process ids (pg_stat_activity.pid) of the open transactions that hold call ids back, as of the last refresh; their calls are folded by the first refresh after they end. NULL when none.';
COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';

CREATE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost_internal.calls_hourly_pending;
COMMENT ON VIEW ai_cost.calls_hourly_live IS 'ai_cost.calls_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate (sum; ai_cost.histogram_merge for histograms).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.hour IS 'Start of the UTC hour of the calls.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.provider IS 'Provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';
COMMENT ON COLUMN ai_cost.calls_hourly_live.status IS 'Outcome: success, error or cancelled.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
COMMENT ON COLUMN ai_cost.calls_hourly_live.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.feature IS 'Product feature that made the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.cached IS 'True for answers served from the application''s own cache (no provider call, cost 0).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_reason IS 'Why these calls have no cost (e.g. no price for the model); NULL for priced calls.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.calls IS 'Number of call attempts. A row of changes since the last refresh can be negative (a deleted or repriced call): sum the rows.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.output_tokens IS 'Sum of output tokens (reasoning included).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_read_tokens IS 'Sum of input tokens read from the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_write_tokens IS 'Sum of input tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.reasoning_tokens IS 'Sum of output tokens spent on reasoning.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_calls IS 'Calls with a total latency (total_ms).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_sum IS 'Sum of total latency in ms; divided by total_ms_calls, the average.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_hist IS 'Histogram of total latency in ms (log-scale buckets, see ai_cost.latency_bucket): merge with ai_cost.histogram_merge, read percentiles with ai_cost.histogram_percentile.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_calls IS 'Streamed calls with a time to first token (ttft_ms).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_sum IS 'Sum of time to first token in ms of streamed calls; divided by ttft_ms_calls, the average.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_hist IS 'Histogram of time to first token in ms of streamed calls (NULL: none): merge with ai_cost.histogram_merge.';

CREATE VIEW ai_cost.spend_daily_by_dimension AS
SELECT day, dimension, value, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM ai_cost_internal.dimensions_daily_live;
COMMENT ON VIEW ai_cost.spend_daily_by_dimension IS 'Spend per UTC day for one dimension at a time: dimension is provider, model (as provider/model), operation, service_tier, tenant, user or feature, value its value (NULL: calls without one). Filter on dimension; always current. cost_micros counts every attempt, success_cost_micros only successes; both are sums over priced calls, NULL when every call behind them is unpriced, and unpriced_calls counts the calls whose cost is unknown.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.day IS 'UTC calendar day of the calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.dimension IS 'What value is: provider, model, operation, service_tier, tenant, user or feature. Filter on one: the rows of one dimension add up to the whole day.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.value IS 'The provider, model (as provider/model), operation, service tier, tenant, user or feature; NULL: calls without one.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.calls IS 'Call attempts: successes + errors + cancelled.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.errors IS 'Calls with status error (billed for the tokens they used).';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cancelled IS 'Calls with status cancelled.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.output_tokens IS 'Sum of output tokens (reasoning included).';

CREATE VIEW ai_cost.spend_by_day AS
SELECT day, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
               sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
               sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
               sum(unpriced_successes)::bigint AS unpriced_successes,
               sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
          FROM ai_cost_internal.dimensions_daily_live
         WHERE dimension = 'provider'
         GROUP BY day) AS d;
COMMENT ON VIEW ai_cost.spend_by_day IS 'Total spend per UTC day: every attempt in cost_micros, successes alone in success_cost_micros; both sums over priced calls, NULL when every call behind them is unpriced; unpriced_calls counts the calls whose cost is unknown. Always current.';
COMMENT ON COLUMN ai_cost.spend_by_day.day IS 'UTC calendar day.';
COMMENT ON COLUMN ai_cost.spend_by_day.calls IS 'Call attempts: successes + errors + cancelled.';
COMMENT ON COLUMN ai_cost.spend_by_day.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.spend_by_day.errors IS 'Calls with status error (billed for the tokens they used).';
COMMENT ON COLUMN ai_cost.spend_by_day.cancelled IS 'Calls with status cancelled.';
COMMENT ON COLUMN ai_cost.spend_by_day.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_by_day.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_by_day.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';
COMMENT ON COLUMN ai_cost.spend_by_day.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.spend_by_day.output_tokens IS 'Sum of output tokens (reasoning included).';

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_model AS
SELECT w.label AS "window", r.provider, r.model, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost_internal.windows w
  JOIN ai_cost_internal.models_hourly_live r ON r.hour >= w.since
 -- The 30-day bound again as a value, so that it reaches the rollup's index.
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
 GROUP BY w.label, r.provider, r.model
HAVING sum(r.calls) > 0;
CREATE UNIQUE INDEX mv_error_rate_by_model_key_idx ON ai_cost.mv_error_rate_by_model ("window", provider, model);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_model IS 'Attempts, errors, cancellations and error rate (errors / attempts) per model over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_model.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature AS
SELECT w.label AS "window", r.feature, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost_internal.windows w
  JOIN ai_cost_internal.features_hourly_live r ON r.hour >= w.since
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
 GROUP BY w.label, r.feature
HAVING sum(r.calls) > 0;
CREATE UNIQUE INDEX mv_error_rate_by_feature_key_idx ON ai_cost.mv_error_rate_by_feature ("window", feature) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature (NULL: calls without one) over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_feature.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE MATERIALIZED VIEW ai_cost.mv_latency_by_model AS
WITH merged AS (
  SELECT w.label AS "window", r.provider, r.model,
         sum(r.total_ms_calls)::bigint AS calls, sum(r.total_ms_sum)::bigint AS total_ms_sum,
         ai_cost.histogram_merge(r.total_ms_hist) AS total_hist,
         sum(r.ttft_ms_calls)::bigint AS streamed_calls, sum(r.ttft_ms_sum)::bigint AS ttft_ms_sum,
         ai_cost.histogram_merge(r.ttft_ms_hist) AS ttft_hist
    FROM ai_cost_internal.windows w
    JOIN ai_cost_internal.models_hourly_live r ON r.hour >= w.since
   WHERE r.status = 'success' AND NOT r.cached
     AND r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, r.provider, r.model
  HAVING sum(r.total_ms_calls) + sum(r.ttft_ms_calls) > 0
)
SELECT "window", provider, model, calls,
       round(total_ms_sum::numeric / nullif(calls, 0)) AS avg_ms,
       ai_cost.histogram_percentile(total_hist, 0.50) AS p50_ms,
       ai_cost.histogram_percentile(total_hist, 0.95) AS p95_ms,
       ai_cost.histogram_percentile(total_hist, 0.99) AS p99_ms,
       streamed_calls,
       round(ttft_ms_sum::numeric / nullif(streamed_calls, 0)) AS ttft_avg_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.50) AS ttft_p50_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.95) AS ttft_p95_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.99) AS ttft_p99_ms
  FROM merged;
CREATE UNIQUE INDEX mv_latency_by_model_key_idx ON ai_cost.mv_latency_by_model ("window", provider, model);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_latency_by_model IS 'Latency per model over the last 24h, 7d and 30d: successful calls that reached the provider (app-cache hits excluded); percentiles from log-scale histograms, within 9%; time to first token for streamed calls only. Rebuilt by ai_cost.refresh(). Read ai_cost.latency_by_model.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.calls IS 'Successful calls with a total latency in the window that reached the provider (app-cache hits excluded).';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.avg_ms IS 'Average total latency of those calls in ms, rounded; NULL: none.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p50_ms IS 'Median total latency in ms, from log-scale histograms: within 9% of the exact value.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p95_ms IS '95th percentile of total latency in ms (within 9%).';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p99_ms IS '99th percentile of total latency in ms (within 9%).';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.streamed_calls IS 'Successful streamed calls with a time to first token in the window.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_avg_ms IS 'Average time to first token of streamed calls in ms, rounded; NULL: none streamed.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p50_ms IS 'Median time to first token of streamed calls in ms (within 9%); NULL: none streamed.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p95_ms IS '95th percentile of time to first token in ms (within 9%); NULL: none streamed.';
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p99_ms IS '99th percentile of time to first token in ms (within 9%); NULL: none streamed.';

CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH users AS MATERIALIZED (
  SELECT label, tenant_id, user_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_users WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM users GROUP BY label
), conversations AS MATERIALIZED (
  SELECT w.label, c.conversation_id AS id, sum(c.calls) AS calls, sum(c.cost_micros) AS cost_micros,
         sum(c.unpriced_calls) AS unpriced_calls
    FROM ai_cost_internal.windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
   WHERE w.label IN ('7d', '30d') AND c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, c.conversation_id
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM users
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM users
   WHERE user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT l.label, 'conversation', top.id, top.calls, top.cost_micros, top.unpriced_calls
    FROM (VALUES ('7d'), ('30d')) AS l(label)
   CROSS JOIN LATERAL (SELECT c.id, c.calls, c.cost_micros, c.unpriced_calls
                         FROM conversations c
                        WHERE c.label = l.label AND c.calls <> 0
                        ORDER BY c.cost_micros DESC, c.calls DESC, c.id
                        LIMIT 100) AS top
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.label, s.kind ORDER BY s.cost_micros DESC, s.calls DESC, s.id) AS rank
    FROM spend s
   WHERE s.calls <> 0
)
SELECT r.label AS "window", r.kind, r.rank, r.id, r.calls::bigint AS calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN r.cost_micros::bigint END AS cost_micros,
       r.unpriced_calls::bigint AS unpriced_calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN round(r.cost_micros / nullif(t.cost_micros, 0), 6) END AS share_of_cost
  FROM ranked r JOIN totals t USING (label)
 WHERE r.rank <= 100;
CREATE UNIQUE INDEX mv_top_spenders_key_idx ON ai_cost.mv_top_spenders ("window", kind, rank);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_top_spenders IS 'Top 100 tenants, users and conversations by spend over the last 7d and 30d, with their share of all spend in the window; rebuilt by ai_cost.refresh(). Read ai_cost.top_spenders.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

CREATE VIEW ai_cost.spend_daily AS
SELECT day, provider, model, operation, service_tier, tenant_id, user_id, feature, calls, successes, errors,
       cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
  FROM (SELECT (hour AT TIME ZONE 'UTC')::date AS day, provider, model, operation, service_tier,
               tenant_id, user_id, feature,
               sum(calls)::bigint AS calls,
               coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
               coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
               coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
               sum(cost_micros)::bigint AS cost_micros,
               coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0)::bigint AS success_cost_micros,
               sum(unpriced_calls)::bigint AS unpriced_calls,
               coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)::bigint AS unpriced_successes,
               sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens,
               sum(cache_read_tokens)::bigint AS cache_read_tokens,
               sum(cache_write_tokens)::bigint AS cache_write_tokens,
               sum(reasoning_tokens)::bigint AS reasoning_tokens
          FROM ai_cost.calls_hourly_live
         GROUP BY 1, provider, model, operation, service_tier, tenant_id, user_id, feature
        HAVING sum(calls) <> 0) AS d;
COMMENT ON VIEW ai_cost.spend_daily IS 'Spend per UTC day by provider, model, operation, service tier, tenant, user and feature; always current. cost_micros counts every attempt (failed calls are billed too), success_cost_micros only successes; both are the sum over priced calls, NULL when every call behind them is unpriced, and unpriced_calls counts the calls whose cost is unknown.';
COMMENT ON COLUMN ai_cost.spend_daily.day IS 'UTC calendar day of the calls.';
COMMENT ON COLUMN ai_cost.spend_daily.provider IS 'Provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.spend_daily.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.spend_daily.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';
COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
COMMENT ON COLUMN ai_cost.spend_daily.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily.feature IS 'Product feature that made the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily.calls IS 'Call attempts: successes + errors + cancelled.';
COMMENT ON COLUMN ai_cost.spend_daily.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.spend_daily.errors IS 'Calls with status error (billed for the tokens they used).';
COMMENT ON COLUMN ai_cost.spend_daily.cancelled IS 'Calls with status cancelled.';
COMMENT ON COLUMN ai_cost.spend_daily.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';
COMMENT ON COLUMN ai_cost.spend_daily.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.spend_daily.output_tokens IS 'Sum of output tokens (reasoning included).';
COMMENT ON COLUMN ai_cost.spend_daily.cache_read_tokens IS 'Sum of input tokens read from the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.spend_daily.cache_write_tokens IS 'Sum of input tokens written to the provider''s prompt cache.';
COMMENT ON COLUMN ai_cost.spend_daily.reasoning_tokens IS 'Sum of output tokens spent on reasoning.';

CREATE VIEW ai_cost.error_rate_by_model AS
SELECT "window", provider, model, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_model;
COMMENT ON VIEW ai_cost.error_rate_by_model IS 'Attempts, errors, cancellations and error rate per model over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.error_rate_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE VIEW ai_cost.error_rate_by_feature AS
SELECT "window", feature, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_feature;
COMMENT ON VIEW ai_cost.error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE VIEW ai_cost.latency_by_model AS
SELECT "window", provider, model, calls, avg_ms, p50_ms, p95_ms, p99_ms, streamed_calls, ttft_avg_ms,
       ttft_p50_ms, ttft_p95_ms, ttft_p99_ms
  FROM ai_cost.mv_latency_by_model;
COMMENT ON VIEW ai_cost.latency_by_model IS 'Latency p50/p95/p99 of successful provider calls per model (app-cache hits excluded), and time to first token of streamed calls, over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.latency_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.latency_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.latency_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.latency_by_model.calls IS 'Successful calls with a total latency in the window that reached the provider (app-cache hits excluded).';
COMMENT ON COLUMN ai_cost.latency_by_model.avg_ms IS 'Average total latency of those calls in ms, rounded; NULL: none.';
COMMENT ON COLUMN ai_cost.latency_by_model.p50_ms IS 'Median total latency in ms, from log-scale histograms: within 9% of the exact value.';
COMMENT ON COLUMN ai_cost.latency_by_model.p95_ms IS '95th percentile of total latency in ms (within 9%).';
COMMENT ON COLUMN ai_cost.latency_by_model.p99_ms IS '99th percentile of total latency in ms (within 9%).';
COMMENT ON COLUMN ai_cost.latency_by_model.streamed_calls IS 'Successful streamed calls with a time to first token in the window.';
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_avg_ms IS 'Average time to first token of streamed calls in ms, rounded; NULL: none streamed.';
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p50_ms IS 'Median time to first token of streamed calls in ms (within 9%); NULL: none streamed.';
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p95_ms IS '95th percentile of time to first token in ms (within 9%); NULL: none streamed.';
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p99_ms IS '99th percentile of time to first token in ms (within 9%); NULL: none streamed.';

CREATE VIEW ai_cost.top_spenders AS
SELECT "window", kind, rank, id, calls, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_top_spenders;
COMMENT ON VIEW ai_cost.top_spenders IS 'Top 100 tenants, users and conversations (column kind) by spend over the last 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

-- On a Citus coordinator the DDL of distributed tables and functions
-- reaches the workers as the text of the statement that made it, which must then be one
-- statement, not this whole file: each is executed on its own.
DO $citus$
BEGIN
  EXECUTE $ddl$ALTER TABLE ai_cost.calls DROP COLUMN billed_micros$ddl$;
  EXECUTE $ddl$ALTER TABLE ai_cost.calls DROP COLUMN markup_id$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.set_billed()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.bills_calls()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.markup_book()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.markup_book_window()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric)$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.reference_tables()$ddl$;
  EXECUTE $ddl$DROP TABLE ai_cost.markups$ddl$;
END
$citus$;

SELECT ai_cost_internal.compile_price_book();
SELECT ai_cost_internal.grant_roles();
