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
-- on a model covers its dated snapshots and aliases. Reprice and
-- explain_cost read it, and the trigger where the markups in force now do
-- not decide. PL/pgSQL, not SQL: on a Citus coordinator a SQL function that
-- reads the price tables cannot take its arguments from the calls of a
-- query. Like charge(), it names every operator by its schema instead of
-- pinning search_path (~5 us a call before PostgreSQL 17).
CREATE FUNCTION ai_cost_internal.billing_of(
  call_tenant_id text, call_provider text, call_model text, call_price_id bigint, call_status text,
  call_created_at timestamptz, call_cost_micros bigint, call_input_tokens bigint, call_output_tokens bigint
) RETURNS TABLE (billed_micros bigint, markup_id bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
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
   LIMIT 1;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint) IS 'Internal: what a call is billed by the ai_cost.markups row in force for it (billed_micros, markup_id); no row when its cost is unknown or no markup covers it.';

-- The billing trigger. It runs after the cost trigger (triggers of one
-- event fire in name order: tg_calls__price_call, then tg_calls__set_billed),
-- so NEW.cost_micros is the cost the ledger keeps, whichever way it was set.
--
-- A query per call costs about 10 us, more than the insert: a call made
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
CREATE TRIGGER tg_calls__set_billed
  BEFORE INSERT OR UPDATE OF provider, model, created_at, service_tier, tenant_id, cached, provided_cost_micros,
    cost_micros, price_id, discount_id, unpriced_reason, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, reasoning_tokens,
    cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, units, unit, computed_cost_micros,
    extra_units, status, billed_micros, markup_id
  ON ai_cost.calls
  FOR EACH ROW
  WHEN (NEW.billed_micros IS NOT NULL OR NEW.markup_id IS NOT NULL OR ai_cost_internal.bills_calls())
  EXECUTE FUNCTION ai_cost_internal.set_billed();

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
