-- Up Migration
--
-- Speed as shipped (sql/ holds each definition; this step brings the schema
-- there). New calls are no longer copied into ai_cost_internal.call_changes
-- on insert: the refresh reads them by id range, from the last id drawn when
-- this step ran, and keeps updates and deletes captured as before. Changes
-- already captured are folded as usual by the next refresh. Prices written
-- by a price list are marked, so that a sync may replace them and keeps the
-- catalog's and the user's own. Indexes and views for the reports.

SET LOCAL check_function_bodies = off;

-- Writers finish first and wait for this step: the calls they inserted were
-- captured by the trigger dropped below, and the first call after it gets an
-- id past folded_through.
LOCK TABLE ai_cost.calls IN SHARE ROW EXCLUSIVE MODE;
DROP TRIGGER tg_calls__capture_inserts ON ai_cost.calls;

CREATE TABLE ai_cost_internal.fold_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  folded_through bigint NOT NULL DEFAULT 0
);
INSERT INTO ai_cost_internal.fold_state (folded_through)
SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('ai_cost.calls', 'id')::regclass), 0);

CREATE TABLE ai_cost_internal.unfolded_ids (
  first_id bigint NOT NULL,
  last_id bigint NOT NULL,
  writers text[] NOT NULL,
  held_since timestamptz NOT NULL
);

-- Until now `prices import` wrote every row it added with this source and no
-- catalog, and nothing else writes it: those are the price list's rows.
ALTER TABLE ai_cost.prices ADD COLUMN from_price_list boolean NOT NULL DEFAULT false;
ALTER TABLE ai_cost.prices ADD CONSTRAINT "a price is from the catalog or a price list, not both"
  CHECK (NOT (from_price_list AND catalog IS NOT NULL));
UPDATE ai_cost.prices SET from_price_list = true WHERE catalog IS NULL AND source LIKE 'LiteLLM price list %';

-- Rebuilt below with other columns.
DROP VIEW ai_cost.top_spenders, ai_cost.refresh_status;
DROP MATERIALIZED VIEW ai_cost.mv_top_spenders;

DROP FUNCTION ai_cost_internal.fold_changes(tid[]);

COMMENT ON COLUMN ai_cost.prices.from_price_list IS 'True for a row written from a price list by `ai-cost prices sync` or `prices import` (source names the list): a later sync may replace it. False for the built-in catalog''s rows (catalog) and rows you inserted, which a sync keeps unless told --overwrite.';

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
                 l.cache_write_1h_per_mtok, l.audio_input_per_mtok, l.audio_output_per_mtok] AS per_mtok
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
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c;

  -- The same book as constants for the cost trigger, the bits as masks.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce('{' || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           -(1::bigint << b.input_bits), -(1::bigint << b.output_bits),
                                           -(1::bigint << b.cache_read_bits), -(1::bigint << b.cache_write_bits),
                                           -(1::bigint << b.cache_write_1h_bits), -(1::bigint << b.audio_input_bits),
                                           -(1::bigint << b.audio_output_bits)),
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

COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input and audio output rates in picodollars per token (0: none); then for the same seven token counts the mask of the bits they must not use to be priced here, -(2^bits) (-1: must be 0 or NULL).';

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
-- It is STABLE: it writes nothing itself (it sets NEW, and refuses a call
-- by raising), and a VOLATILE PL/pgSQL function takes a snapshot and a
-- command counter increment for every expression it evaluates.
--
-- It does not pin search_path: a SET clause costs ~5 us per row before
-- PostgreSQL 17. Instead every table, operator, function and non-keyword
-- type in it is named by its schema (OPERATOR(pg_catalog.+), which gives
-- every operator the same precedence, hence the parentheses around
-- products): the inserting session's search_path may hold a better-matching
-- or same-named operator of a user's, which would set the cost
-- (test/planted-operators.test.ts).
CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
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
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][9])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][10])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11]))
           OPERATOR(pg_catalog.=) 0::bigint THEN
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
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][9])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][10])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][11])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][12])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][13])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15]))
           OPERATOR(pg_catalog.=) 0::bigint THEN
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
CREATE OR REPLACE FUNCTION ai_cost_internal.wait_for_call_writers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  writers text[];
  waited_seconds numeric := 0;
BEGIN
  writers := ai_cost_internal.call_writers();
  WHILE EXISTS (
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

COMMENT ON TABLE ai_cost_internal.call_changes IS 'Internal: versions of calls removed (-1) and added (+1) by updates and deletes since the last ai_cost.refresh(), written by triggers on ai_cost.calls.';

-- Copies the rows an UPDATE or DELETE statement changed into the change
-- table. SECURITY DEFINER: whoever may change ai_cost.calls must not need
-- (or get) rights on the internal table. Updates copy every row as
-- removed-then-added; rows whose reported columns did not change net out to
-- nothing in the refresh.
CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.capture_call_changes() IS 'Trigger: records the calls a statement updated or deleted for the next ai_cost.refresh().';

COMMENT ON TABLE ai_cost_internal.fold_state IS 'Internal: the highest call id the rollups have read up to (ai_cost.refresh()).';

COMMENT ON TABLE ai_cost_internal.unfolded_ids IS 'Internal: ranges of call ids the refresh has passed but not folded, because transactions that could still add calls there (writers) were open; read again by every refresh until they end.';

-- The calls no refresh has folded yet, as far as this snapshot sees them
-- (those above folded_through and those in the unfolded ranges below it),
-- each as an addition in the shape of call_changes. A function, not a view,
-- so that nothing depends on ai_cost.calls itself (ai_cost.partition_calls()
-- replaces the table). SECURITY DEFINER: the live views read it for roles
-- that may not read the raw calls or the internal tables, as they read the
-- change table; it returns only the columns the rollups keep. JIT off: the
-- planner cannot know how few ids lie above folded_through and would spend
-- milliseconds compiling a plan that reads a handful of rows.
CREATE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND u.last_id
$$;

COMMENT ON FUNCTION ai_cost_internal.unfolded_calls() IS 'Internal: the calls visible now that ai_cost.refresh() has not folded into the rollups yet, as additions (+1).';

-- Everything the next refresh will fold, in the shape of call_changes: each
-- unfolded call added (+1), and the captured changes of calls already
-- folded. The changes of a call not folded yet are left out, since its
-- current version is among the unfolded calls. The live views add these to
-- the rollups; ai_cost_internal.fold_changes applies the same rule.
CREATE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM ai_cost_internal.call_changes c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));

COMMENT ON VIEW ai_cost_internal.pending_changes IS 'Internal: what the next ai_cost.refresh() will fold: the unfolded calls (+1) and the changes of calls already folded.';

-- One statement folds into every rollup, from one hourly grouping, either
-- everything pending (no addresses: the unfolded calls with ids up to
-- range_end that this statement's snapshot sees, and the captured changes
-- of calls already folded, see ai_cost_internal.pending_changes), or the
-- captured changes at the given addresses (the unfolded calls having been
-- staged among them by ai_cost_internal.stage_unfolded_calls). It sets aside
-- what must not be folded (see set_aside_changes) and returns the ids of the
-- calls it read, from which ai_cost_internal.record_unfolded_ids learns which
-- ids it passed unseen. Groups that reach zero calls are found from the
-- upserts' own RETURNING and deleted. Planned for its arguments every time,
-- so that a list of addresses is read by a TID scan and no list by a plain
-- one. The grouping of a minute's calls, histograms and all, takes more than
-- the default 4 MB of work_mem and would spill to disk: it gets 64 MB. The
-- planner cannot estimate how many calls arrive, guesses few, and sorts them
-- on a dozen keys to group them; hashing them costs less (about 8% of a
-- refresh after 10,000 calls), so sorting is off here.
CREATE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
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

-- The highest call id drawn so far (0 before the first).
CREATE FUNCTION ai_cost_internal.last_drawn_call_id() RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('ai_cost.calls', 'id')::regclass), 0)
$$;

COMMENT ON FUNCTION ai_cost_internal.last_drawn_call_id() IS 'Internal: the last value drawn from the id sequence of ai_cost.calls, or 0.';

-- The calls the fold could not take together go through the change table,
-- so that ai_cost_internal.fold_changes_apart can fold them part by part:
-- the unfolded calls up to range_end are staged there as additions, and
-- the changes of calls not folded yet are dropped (their current version
-- is what is staged). Returns the ids of the calls staged.
CREATE FUNCTION ai_cost_internal.stage_unfolded_calls(range_end bigint) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  staged_ids bigint[];
BEGIN
  WITH dropped AS (
    DELETE FROM ai_cost_internal.call_changes t
     WHERE t.call_id > previous_through
        OR EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id)
  ), staged AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT u.* FROM ai_cost_internal.unfolded_calls() u WHERE u.call_id <= range_end
    RETURNING call_id
  )
  SELECT array_agg(call_id) INTO staged_ids FROM staged;
  RETURN staged_ids;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.stage_unfolded_calls(bigint) IS 'Internal: copies the unfolded calls up to range_end into the change table for a fold part by part, dropping the changes of calls not folded yet; returns their ids.';

-- After a fold: the ids it passed without seeing a call, kept with the
-- writers that can still fill them (see unfolded_ids), and how far the
-- rollups have read. The fold read the range above folded_through up to
-- range_end and every earlier unfolded range; arrived_ids are the ids it
-- saw there. A range whose writers have all ended is complete: an id it
-- lacks now is one never used, and it is forgotten.
CREATE FUNCTION ai_cost_internal.record_unfolded_ids(range_end bigint, open_writers text[], arrived_ids bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH spans AS (
    SELECT previous_through + 1 AS first_id, range_end AS last_id, open_writers AS writers, now() AS held_since
     WHERE range_end > previous_through AND cardinality(open_writers) > 0
    UNION ALL
    SELECT u.first_id, u.last_id, w.writers, u.held_since
      FROM ai_cost_internal.unfolded_ids u
     CROSS JOIN LATERAL (SELECT ARRAY(SELECT unnest(u.writers || 'next refresh'::text) INTERSECT SELECT unnest(open_writers)) AS writers) w
     WHERE cardinality(w.writers) > 0
  ), seen AS (
    -- The ids seen in each range, between its two edges.
    SELECT s.first_id AS span, a.id FROM spans s JOIN unnest(arrived_ids) AS a(id) ON a.id BETWEEN s.first_id AND s.last_id
    UNION ALL
    SELECT s.first_id, s.first_id - 1 FROM spans s
    UNION ALL
    SELECT s.first_id, s.last_id + 1 FROM spans s
  ), holes AS (
    SELECT n.span, n.id + 1 AS first_id, n.next_id - 1 AS last_id
      FROM (SELECT e.span, e.id, lead(e.id) OVER (PARTITION BY e.span ORDER BY e.id) AS next_id FROM seen e) n
     WHERE n.next_id > n.id + 1
  ), cleared AS (
    DELETE FROM ai_cost_internal.unfolded_ids
  )
  INSERT INTO ai_cost_internal.unfolded_ids (first_id, last_id, writers, held_since)
  SELECT h.first_id, h.last_id, s.writers, s.held_since FROM holes h JOIN spans s ON s.first_id = h.span;
  UPDATE ai_cost_internal.fold_state SET folded_through = greatest(previous_through, range_end);
END
$$;

COMMENT ON FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[]) IS 'Internal: after a fold, records the ids it passed unseen that open writers may still fill, and moves folded_through to range_end.';

-- Folds what is pending, together (the usual case: one statement) or, when
-- that fails on some bad data, apart (see fold_changes_apart); then records
-- and announces the budget thresholds crossed. First how far ids have been
-- drawn, then who is writing: an id is drawn under the write lock, so every
-- transaction that drew one up to range_end and has not ended is among
-- open_writers, and the fold's snapshot, taken after both, sees every call
-- of the others (with a snapshot per statement, as READ COMMITTED takes).
CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  range_end bigint;
  open_writers text[];
  arrived_ids bigint[];
BEGIN
  IF (SELECT q.seqcache FROM pg_catalog.pg_sequence q
       WHERE q.seqrelid = pg_get_serial_sequence('ai_cost.calls', 'id')::regclass) > 1 THEN
    RAISE EXCEPTION 'the id sequence of ai_cost.calls caches ids (CACHE > 1), so the rollups cannot tell which calls are still to come'
      USING HINT = format('ALTER SEQUENCE %s CACHE 1', pg_get_serial_sequence('ai_cost.calls', 'id'));
  END IF;
  range_end := ai_cost_internal.last_drawn_call_id();
  open_writers := ai_cost_internal.call_writers();
  -- A REPEATABLE READ or SERIALIZABLE snapshot was taken when the transaction
  -- began, before both: a writer that ended in between is not among
  -- open_writers, yet its calls are not visible. Every range read is then
  -- kept for the next refresh to read again.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    open_writers := open_writers || 'next refresh'::text;
  END IF;
  BEGIN
    SELECT f.applied, f.set_aside, f.arrived_ids INTO applied, set_aside, arrived_ids
      FROM ai_cost_internal.fold_changes(NULL, range_end) AS f;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    arrived_ids := ai_cost_internal.stage_unfolded_calls(range_end);
    SELECT f.applied, f.set_aside INTO applied, set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
  END;
  PERFORM ai_cost_internal.record_unfolded_ids(range_end, open_writers, arrived_ids);

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

COMMENT ON FUNCTION ai_cost_internal.refresh_rollups() IS 'Internal: folds the new calls and the captured call changes into the rollups, setting aside those that cannot be folded, and records and announces budget thresholds crossed; run by ai_cost.refresh() under its lock.';

-- TRUNCATE fires no row or DELETE triggers: empty every rollup with the
-- calls, and start reading after the last id drawn (TRUNCATE ... RESTART
-- IDENTITY has reset the sequence by now). Waits for a running refresh.
CREATE OR REPLACE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  TRUNCATE ai_cost_internal.call_changes, ai_cost_internal.set_aside_changes, ai_cost_internal.unfolded_ids,
           ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.calls_daily, ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  UPDATE ai_cost_internal.fold_state SET folded_through = ai_cost_internal.last_drawn_call_id();
  RETURN NULL;
END
$$;

-- Indexes on the rollups that serve the reports' filters.
--
-- The daily views (100_live_views.sql) show the UTC day as a date,
-- (day AT TIME ZONE 'UTC')::date, so a filter like day >= current_date - 30
-- reaches a rollup as that expression, not as a range of its timestamptz
-- column: these indexes hold the expression itself. The rollups' updates
-- never change a key column, so folding into an existing group stays a HOT
-- update; only new groups pay for the extra entries.
-- spend_daily_by_dimension (and spend_by_day, the 'provider' rows) over a
-- window: "spend by model, last 30 days", "top tenants, last 7 days" read
-- the window's rows of one dimension, not all its history.
CREATE INDEX dimensions_daily_dimension_date_idx ON ai_cost_internal.dimensions_daily
  (dimension, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily_by_dimension for one value: the drill-down to one tenant,
-- user, model or feature over any window reads its few rows a day.
CREATE INDEX dimensions_daily_value_date_idx ON ai_cost_internal.dimensions_daily
  (dimension, value, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily_by_user for one tenant: "one tenant by user, last 30 days"
-- reads the tenant's users' days.
CREATE INDEX users_daily_tenant_date_idx ON ai_cost_internal.users_daily
  (tenant_id, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily for one tenant: the detail grain (every dimension and the
-- user) of one tenant over days or weeks reads that tenant's hourly rows.
CREATE INDEX calls_hourly_tenant_date_idx ON ai_cost.calls_hourly
  (tenant_id, ((hour AT TIME ZONE 'UTC')::date));

-- Live views: the rollups plus the changes no refresh has consumed yet, and
-- the daily and hourly BI views on them. Every view here is exact at any
-- moment, whenever the last refresh ran.
-- The hourly rollup plus the changes no refresh has consumed yet, so every
-- view on it is exact at any moment. One snapshot sees a refresh either
-- entirely or not at all, so a change is counted once: in the rollup or here.
-- Several rows may share a key: always aggregate.
CREATE OR REPLACE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;

-- The conversation rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live). Several rows may share a key: aggregate.
CREATE OR REPLACE VIEW ai_cost.conversations_hourly_live AS
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

-- Any window of calls in the rollup shape, exact to the instant: whole hours
-- come from the live rollup, the partial hours at either edge from the raw
-- table (at most two hours of rows, two ranges of calls_created_at_idx), but
-- for the calls the refresh set aside, which no rollup holds either. The
-- bounds reach both as values (scalar subqueries), so each reads its index
-- for the window alone. A day holds tens of thousands of rollup rows with
-- many users, which the planner prices high enough to compile with JIT:
-- compiling costs more than it saves on this many rows (36 ms of 240 over
-- 24 hours with 10M calls of history), hence jit = off.
CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  WITH bounds AS (
    SELECT date_trunc('hour', since, 'UTC') + CASE WHEN date_trunc('hour', since, 'UTC') = since
                                                  THEN interval '0' ELSE interval '1 hour' END AS first_hour,
           date_trunc('hour', until, 'UTC') AS end_hour
  )
  SELECT l.*
    FROM ai_cost.calls_hourly_live l
   WHERE l.hour >= (SELECT first_hour FROM bounds) AND l.hour < (SELECT end_hour FROM bounds)
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
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, (SELECT first_hour FROM bounds))
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, (SELECT end_hour FROM bounds), (SELECT first_hour FROM bounds))
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;

-- The daily rollups plus the changes no refresh has consumed yet (see
-- ai_cost.calls_hourly_live): exact at any moment. Several rows may share a
-- key: always aggregate.
CREATE OR REPLACE VIEW ai_cost_internal.calls_daily_live AS
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

CREATE OR REPLACE VIEW ai_cost_internal.users_daily_live AS
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

-- Spend per UTC day, tenant and user, from the daily per-user rollup: the
-- drill-down from a tenant to its users (or to one user) over weeks or
-- months reads a row per user and day, where spend_daily has a row per
-- combination of every dimension and the user (about one per call with many
-- users). A filter on tenant_id or user_id reaches the rollup's indexes.
-- The pending changes are added to the rollup rows of their key as
-- ai_cost_internal.dimensions_daily_live does, so a month of every user's
-- rows is read once, not grouped again.
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

CREATE OR REPLACE VIEW ai_cost_internal.models_hourly_live AS
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

CREATE OR REPLACE VIEW ai_cost_internal.features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, feature, status;

-- Each reads its rollup plus the changes since the last refresh.
CREATE OR REPLACE VIEW ai_cost.activity_hourly AS
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

-- Hours are summed first, so first_hour and last_hour are hours that still
-- hold unpriced calls once pending changes (a repriced or moved call) count.
CREATE OR REPLACE VIEW ai_cost.unpriced_models AS
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

-- The daily dimension rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live): one row per day, dimension and value. The
-- pending changes, aggregated once, are added to the rollup rows of their
-- key, and keys only they have are appended: the rollup rows of a window
-- are read once and never grouped again. The keys compare NULL values as
-- equal in a form a hash join takes.
CREATE OR REPLACE VIEW ai_cost_internal.dimensions_daily_live AS
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

-- Calls and spend (by everything but the user) from the hour of `since` on,
-- in the coarsest rows that keep every instant in `cuts` on a row boundary:
-- whole UTC days from the daily rollup, and hours from the hourly one in each
-- day that `since` or a cut falls inside of. A filter like start >= cut or
-- start < cut is then exact to the hour, while a 30-day window reads about
-- 30 daily rows per group instead of 720 hourly rows per group and user.
-- PL/pgSQL so that each bound reaches the live views as a value: a bound
-- taken from a join would not be pushed into the UNION ALL of a live view,
-- which would then scan its whole rollup. Days are 24 hours: UTC has no
-- daylight saving, whatever the session's time zone.
--
-- A window is a few weeks of a rollup that holds all history, so it is read
-- through the rollup's index on the day, never by a sequential scan. The
-- planner prefers a (parallel) scan of the whole rollup once the window's
-- rows are spread over many pages, as after history is backfilled and folded
-- in bulk: with 10M calls over 500 days that reads 67,000 pages for 30 days'
-- 7,600, and makes the rebuild of every view on it grow with history.
CREATE OR REPLACE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.provider, d.model, d.operation, d.status, d.service_tier, d.tenant_id, d.feature, d.cached,
           d.unpriced_reason, d.calls, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.calls_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.provider, h.model, h.operation, h.status, h.service_tier, h.tenant_id, h.feature, h.cached,
             h.unpriced_reason, h.calls, h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;

-- The same for spend per user (see ai_cost_internal.calls_slices).
CREATE OR REPLACE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.users_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.tenant_id, h.user_id, h.calls, CASE WHEN h.status = 'success' THEN h.calls ELSE 0 END,
             h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;

-- Tenants, users and the total from the daily per-user rollup (a row per
-- user and day, the narrowest that holds the tenant), conversations from the
-- conversation rollup (a conversation rarely spans more than an hour or two,
-- so its hourly rows are already few). A month holds many conversations:
-- each window keeps its 100 biggest with a top-N sort instead of ranking
-- them all.
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

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status. Spend comes
-- from the daily dimension rollup (a global budget sums the day's provider
-- rows, the others read their tenant, user or feature rows by index) plus
-- the pending changes, grouped once by scope and value for every budget.
CREATE OR REPLACE VIEW ai_cost.budget_status AS
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

-- How fresh the rollups and materialized views are, how much waits for the
-- next refresh, and what holds calls back: ids passed while a transaction
-- that could still commit calls there was open (see unfolded_ids in
-- 090_rollups.sql), with the backends of those transactions still open.
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

-- Creates the missing partitions of the window of months (see
-- ai_cost_internal.first_partition_month), moving their rows out of the
-- default partition, and applies the retention of
-- ai_cost.partition_settings. One row per action taken. A partition past
-- retention is dropped or detached only when ai_cost_internal.pending_changes
-- holds no call or change of its time range (every one of its calls is in the
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
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c
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
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c WHERE c.created_at < cutoff;
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

-- The compiled price book holds each token limit as a mask now: compiled
-- again by the new compiler, for the new trigger.
SELECT ai_cost_internal.compile_price_book();

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The calls no refresh has folded go into the change table, where the
-- insert capture of the earlier release would have put them, and the
-- changes of those calls are dropped (each call is staged as it is now).
LOCK TABLE ai_cost.calls IN SHARE ROW EXCLUSIVE MODE;
SELECT ai_cost_internal.stage_unfolded_calls(9223372036854775807);

DROP VIEW ai_cost.top_spenders, ai_cost.refresh_status;
DROP MATERIALIZED VIEW ai_cost.mv_top_spenders;

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
                 l.cache_write_1h_per_mtok, l.audio_input_per_mtok, l.audio_output_per_mtok] AS per_mtok
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
         c.rates[1], c.rates[2], c.rates[3], c.rates[4], c.rates[5], c.rates[6], c.rates[7],
         c.bits[1], c.bits[2], c.bits[3], c.bits[4], c.bits[5], c.bits[6], c.bits[7],
         c.valid_from, coalesce(c.valid_to, 'infinity')
    FROM compilable c;

  -- The same book as constants for the cost trigger.
  SELECT coalesce(jsonb_object_agg(b.key, b.slot), '{}'),
         coalesce('{' || string_agg(format('{%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s}', b.price_id,
                                           b.input_rate, b.output_rate, b.cache_read_rate, b.cache_write_rate,
                                           b.cache_write_1h_rate, b.audio_input_rate, b.audio_output_rate,
                                           b.input_bits, b.output_bits, b.cache_read_bits, b.cache_write_bits,
                                           b.cache_write_1h_bits, b.audio_input_bits, b.audio_output_bits),
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

COMMENT ON FUNCTION ai_cost_internal.price_book_rates() IS 'Internal, generated by ai_cost_internal.compile_price_book(): per slot the price id; the input, output, cache read, cache write, 1-hour cache write, audio input and audio output rates in picodollars per token (0: none); then for the same seven token counts the bits they may use to be priced here (0: must be 0 or NULL).';

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
CREATE OR REPLACE FUNCTION ai_cost_internal.wait_for_call_writers() RETURNS void
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

COMMENT ON TABLE ai_cost_internal.call_changes IS 'Internal: calls added (+1) and removed (-1) since the last ai_cost.refresh(), written by triggers on ai_cost.calls.';

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

COMMENT ON FUNCTION ai_cost_internal.capture_call_changes() IS 'Trigger: records the calls a statement inserted, updated or deleted for the next ai_cost.refresh().';

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

-- Folds the changes, together (the usual case: one statement) or, when that
-- fails on some bad data, apart (see fold_changes_apart); then records and
-- announces the budget thresholds crossed.
CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
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

-- Live views: the rollups plus the changes no refresh has consumed yet, and
-- the daily and hourly BI views on them. Every view here is exact at any
-- moment, whenever the last refresh ran.
-- The hourly rollup plus the changes no refresh has consumed yet, so every
-- view on it is exact at any moment. One snapshot sees a refresh either
-- entirely or not at all, so a change is counted once: in the rollup or here.
-- Several rows may share a key: always aggregate.
CREATE OR REPLACE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;

-- The conversation rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live). Several rows may share a key: aggregate.
CREATE OR REPLACE VIEW ai_cost.conversations_hourly_live AS
SELECT hour, conversation_id, tenant_id, user_id, calls, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost.conversations_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
       sum(sign)::bigint, coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint, coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost_internal.call_changes
 WHERE conversation_id IS NOT NULL
 GROUP BY 1, conversation_id, tenant_id, user_id;

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

-- The daily rollups plus the changes no refresh has consumed yet (see
-- ai_cost.calls_hourly_live): exact at any moment. Several rows may share a
-- key: always aggregate.
CREATE OR REPLACE VIEW ai_cost_internal.calls_daily_live AS
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
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;

CREATE OR REPLACE VIEW ai_cost_internal.users_daily_live AS
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
  FROM ai_cost_internal.call_changes
 GROUP BY 1, tenant_id, user_id;

CREATE OR REPLACE VIEW ai_cost_internal.models_hourly_live AS
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
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, status, cached;

CREATE OR REPLACE VIEW ai_cost_internal.features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost_internal.call_changes
 GROUP BY 1, feature, status;

-- Each reads its rollup plus the changes since the last refresh.
CREATE OR REPLACE VIEW ai_cost.activity_hourly AS
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
                  FROM ai_cost_internal.call_changes) AS a
         GROUP BY hour
        HAVING sum(calls) <> 0) AS h;

-- Hours are summed first, so first_hour and last_hour are hours that still
-- hold unpriced calls once pending changes (a repriced or moved call) count.
CREATE OR REPLACE VIEW ai_cost.unpriced_models AS
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
                  FROM ai_cost_internal.call_changes
                 WHERE unpriced_reason IS NOT NULL) AS u
         GROUP BY hour, provider, model, service_tier, unpriced_reason
        HAVING sum(calls) <> 0) AS h
 GROUP BY provider, model, service_tier, unpriced_reason;

-- The daily dimension rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live), summed: one row per day, dimension and value.
CREATE OR REPLACE VIEW ai_cost_internal.dimensions_daily_live AS
SELECT (day AT TIME ZONE 'UTC')::date AS day, dimension, value,
       sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
       sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
       sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(unpriced_successes)::bigint AS unpriced_successes,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM (SELECT day, dimension, value, calls, successes, errors, cancelled, cost_micros, success_cost_micros,
               unpriced_calls, unpriced_successes, input_tokens, output_tokens
          FROM ai_cost_internal.dimensions_daily
        UNION ALL
        SELECT date_trunc('day', c.created_at, 'UTC'), v.dimension, v.value, c.sign,
               CASE WHEN c.status = 'success' THEN c.sign ELSE 0 END, CASE WHEN c.status = 'error' THEN c.sign ELSE 0 END,
               CASE WHEN c.status = 'cancelled' THEN c.sign ELSE 0 END, coalesce(c.sign * c.cost_micros, 0),
               CASE WHEN c.status = 'success' THEN coalesce(c.sign * c.cost_micros, 0) ELSE 0 END,
               CASE WHEN c.cost_micros IS NULL THEN c.sign ELSE 0 END,
               CASE WHEN c.cost_micros IS NULL AND c.status = 'success' THEN c.sign ELSE 0 END,
               coalesce(c.sign * c.input_tokens, 0), coalesce(c.sign * c.output_tokens, 0)
          FROM ai_cost_internal.call_changes c
         CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                              c.tenant_id, c.user_id, c.feature) AS v) AS d
 GROUP BY day, dimension, value
HAVING sum(calls) <> 0;

-- Calls and spend (by everything but the user) from the hour of `since` on,
-- in the coarsest rows that keep every instant in `cuts` on a row boundary:
-- whole UTC days from the daily rollup, and hours from the hourly one in each
-- day that `since` or a cut falls inside of. A filter like start >= cut or
-- start < cut is then exact to the hour, while a 30-day window reads about
-- 30 daily rows per group instead of 720 hourly rows per group and user.
-- PL/pgSQL so that each bound reaches the live views as a value: a bound
-- taken from a join would not be pushed into the UNION ALL of a live view,
-- which would then scan its whole rollup. Days are 24 hours: UTC has no
-- daylight saving, whatever the session's time zone.
CREATE OR REPLACE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.provider, d.model, d.operation, d.status, d.service_tier, d.tenant_id, d.feature, d.cached,
           d.unpriced_reason, d.calls, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.calls_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.provider, h.model, h.operation, h.status, h.service_tier, h.tenant_id, h.feature, h.cached,
             h.unpriced_reason, h.calls, h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;

-- The same for spend per user (see ai_cost_internal.calls_slices).
CREATE OR REPLACE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.users_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.tenant_id, h.user_id, h.calls, CASE WHEN h.status = 'success' THEN h.calls ELSE 0 END,
             h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;

-- Tenants and the total from the daily calls rollup, users from their own,
-- conversations from the conversation rollup (a conversation rarely spans
-- more than an hour or two, so its hourly rows are already few).
CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH calls AS MATERIALIZED (
  SELECT label, tenant_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_calls WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM calls GROUP BY label
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM calls
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM ai_cost_internal.window_users
   WHERE label IN ('7d', '30d') AND user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT w.label, 'conversation', c.conversation_id, sum(c.calls), sum(c.cost_micros), sum(c.unpriced_calls)
    FROM ai_cost_internal.windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
   WHERE w.label IN ('7d', '30d') AND c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, c.conversation_id
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

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status.
CREATE OR REPLACE VIEW ai_cost.budget_status AS
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, p.period_start, p.period_end,
       b.limit_micros, k.spent_micros, s.unpriced_calls,
       b.limit_micros - k.spent_micros AS remaining_micros,
       round(100 * k.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(k.spent_micros * extract(epoch FROM p.period_end - p.period_start)
             / greatest(extract(epoch FROM now() - p.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN k.spent_micros IS NULL THEN 'unknown'
            WHEN k.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM ai_cost.budgets b
 CROSS JOIN LATERAL (
   SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
          (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
 ) AS p
 CROSS JOIN LATERAL (
   SELECT coalesce(sum(r.calls), 0)::bigint AS calls, coalesce(sum(r.cost_micros), 0)::bigint AS spent_micros,
          coalesce(sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
     FROM (SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'global' AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'tenant' AND d.tenant_id = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'feature' AND d.feature = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT u.calls, u.cost_micros, u.unpriced_calls FROM ai_cost_internal.users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value AND u.day >= p.period_start AND u.day < p.period_end) AS r
 ) AS s
 -- Spend with calls behind it and none of them priced is unknown, not 0.
 CROSS JOIN LATERAL (
   SELECT CASE WHEN s.calls = 0 OR s.calls <> s.unpriced_calls THEN s.spent_micros END AS spent_micros
 ) AS k;

-- How fresh the materialized views are and how much waits for the next refresh.
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.call_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes
  FROM ai_cost_internal.refresh_state s;

COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many changes wait for the next run, and how many it set aside (ai_cost.set_aside_calls).';

COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';

COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';

COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';

COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'Call changes (inserts, updates, deletes) the last refresh of the rollups folded in.';

COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'Call changes waiting for the next refresh (the live views already count them).';

COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';

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

DROP VIEW ai_cost.spend_daily_by_user;
DROP INDEX ai_cost.calls_hourly_tenant_date_idx;
DROP INDEX ai_cost_internal.users_daily_tenant_date_idx;
DROP INDEX ai_cost_internal.dimensions_daily_value_date_idx;
DROP INDEX ai_cost_internal.dimensions_daily_dimension_date_idx;
DROP FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[]);
DROP FUNCTION ai_cost_internal.stage_unfolded_calls(bigint);
DROP FUNCTION ai_cost_internal.last_drawn_call_id();
DROP FUNCTION ai_cost_internal.fold_changes(tid[], bigint);
DROP VIEW ai_cost_internal.pending_changes;
DROP FUNCTION ai_cost_internal.unfolded_calls();
DROP FUNCTION ai_cost_internal.call_writers();

DROP TABLE ai_cost_internal.fold_state, ai_cost_internal.unfolded_ids;

CREATE TRIGGER tg_calls__capture_inserts
  AFTER INSERT ON ai_cost.calls REFERENCING NEW TABLE AS new_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.capture_call_changes();

ALTER TABLE ai_cost.prices DROP COLUMN from_price_list;

-- The price book as the earlier compiler writes it, for the earlier trigger.
SELECT ai_cost_internal.compile_price_book();



SELECT ai_cost_internal.grant_roles();
