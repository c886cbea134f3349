-- Up Migration
--
-- Prices of certain hours of the day (sql/ holds each definition; this step
-- brings the schema there), as DeepSeek sold off-peak prices from 16:30 to
-- 00:30 UTC. A price row may carry a daily window (daily_from, daily_to,
-- time_zone); in its hours it wins over the all-day price of its key, and
-- it is effective-dated like every price, beside the all-day rows rather
-- than ending them. The lookup prices such models by the hour of each
-- call; the compiled book leaves them to it.

SET LOCAL check_function_bodies = off;

ALTER TABLE ai_cost.prices
  ADD COLUMN daily_from time,
  ADD COLUMN daily_to time,
  ADD COLUMN time_zone text,
  ADD CONSTRAINT "a daily window needs daily_from, daily_to and time_zone"
    CHECK ((daily_from IS NULL) = (daily_to IS NULL) AND (daily_from IS NULL) = (time_zone IS NULL)),
  ADD CONSTRAINT "a daily window must not be empty: daily_from <> daily_to" CHECK (daily_from <> daily_to),
  DROP CONSTRAINT "prices for one model, tier and tenant must not overlap in time";
-- An all-day price and prices of certain hours of the day (off-peak
-- hours) of the same key are in force together, each kind keyed by when
-- its hours start; that the hours of one key never overlap is checked by
-- tg_prices__refuse_overlapping_hours.
ALTER TABLE ai_cost.prices
  ADD CONSTRAINT "prices for one model, tier and tenant must not overlap in time"
    EXCLUDE USING gist (provider WITH =, model WITH =, service_tier WITH =, above_input_tokens WITH =,
                        (coalesce(tenant_id, '')) WITH =, (coalesce(daily_from::text, 'all day')) WITH =,
                        tstzrange(valid_from, valid_to) WITH &&);
COMMENT ON COLUMN ai_cost.prices.daily_from IS 'For a price of certain hours of the day (DeepSeek''s off-peak prices): the local time, in time_zone, from which it applies each day (inclusive). NULL: an all-day price. In its hours it wins over the all-day price of the same model, tier and tenant.';
COMMENT ON COLUMN ai_cost.prices.daily_to IS 'For a price of certain hours of the day: the local time, in time_zone, until which it applies each day (exclusive); before daily_from for hours that run past midnight (16:30 to 00:30).';
COMMENT ON COLUMN ai_cost.prices.time_zone IS 'For a price of certain hours of the day: the IANA time zone of daily_from and daily_to, as the provider states them (UTC for DeepSeek).';

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

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.prices
     SET valid_to = NEW.valid_from
   WHERE provider = NEW.provider AND model = NEW.model
     AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
     AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id AND daily_from IS NOT DISTINCT FROM NEW.daily_from
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);

  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.prices
     WHERE provider = NEW.provider AND model = NEW.model
       AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
       AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id AND daily_from IS NOT DISTINCT FROM NEW.daily_from
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.close_previous_price() IS 'Trigger: ends the price in force when a newer price for the same model is inserted.';

CREATE OR REPLACE FUNCTION ai_cost.price_at(provider text, model text, at timestamptz) RETURNS ai_cost.prices
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

ALTER TABLE ai_cost_internal.price_lookup
  ADD COLUMN daily_from time,
  ADD COLUMN daily_to time,
  ADD COLUMN time_zone text;
DROP INDEX ai_cost_internal.price_lookup_idx;
CREATE INDEX price_lookup_idx
  ON ai_cost_internal.price_lookup (provider, model, service_tier, rank, above_input_tokens DESC, (daily_from IS NULL));

CREATE OR REPLACE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
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

CREATE OR REPLACE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  reasoning_tokens bigint, cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint,
  video_input_tokens bigint, units numeric, unit text, extra_units jsonb
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  -- OPERATOR(...) gives every operator the same precedence, so each product
  -- is in parentheses. Cached audio ($14) is part of both the cache reads
  -- ($8) and the audio input ($11). Reasoning ($13) and image output ($16)
  -- are parts of the output ($7), image ($15) and video ($17) input parts of
  -- the input ($6), that only a price with a rate of their own bills apart:
  -- at a NULL rate the part is 0 here and stays in its whole. A unit ($19,
  -- and each key of $20) is priced at unit_price where it is the price's
  -- unit, else at its entry in unit_prices.
  SELECT pg_catalog.ceil(l.factor OPERATOR(pg_catalog.*) (
             (greatest(coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                       OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                       OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                       OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END, 0)
                                          OPERATOR(pg_catalog.*) coalesce(l.input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($15, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($17, 0)                    OPERATOR(pg_catalog.*) coalesce(l.video_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (greatest(coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                            OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                            OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END, 0)
                                   OPERATOR(pg_catalog.*) coalesce(l.output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($13, 0)                    OPERATOR(pg_catalog.*) coalesce(l.reasoning_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($16, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($14, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($10, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_write_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($10, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_write_1h_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.audio_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($12, 0)                    OPERATOR(pg_catalog.*) coalesce(l.audio_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($18, 0) OPERATOR(pg_catalog.*) coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                                                                                     ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END, 0)
                                   OPERATOR(pg_catalog.*) 1000000)
           OPERATOR(pg_catalog.+) (coalesce((SELECT pg_catalog.sum(e.value::numeric OPERATOR(pg_catalog.*)
                                                                   coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                                                                                 ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END, 0))
                                               FROM pg_catalog.jsonb_each($20) e), 0)
                                   OPERATOR(pg_catalog.*) 1000000)))::bigint,
         l.price_id,
         l.discount_id,
         CASE
           WHEN l.input_per_mtok IS NULL AND coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                                             OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                                             OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                                             OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for input tokens'
           WHEN l.output_per_mtok IS NULL AND coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                              OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                              OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for output tokens'
           WHEN l.cache_read_per_mtok IS NULL
                AND (coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
                     OR (l.cache_read_audio_per_mtok IS NULL AND $14 OPERATOR(pg_catalog.>) 0))
             THEN 'no price for cache read tokens'
           WHEN l.cache_write_per_mtok IS NULL AND $9 OPERATOR(pg_catalog.>) coalesce($10, 0) THEN 'no price for cache write tokens'
           WHEN l.cache_write_1h_per_mtok IS NULL AND $10 OPERATOR(pg_catalog.>) 0 THEN 'no price for 1-hour cache write tokens'
           WHEN l.audio_input_per_mtok IS NULL AND coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
             THEN 'no price for audio input tokens'
           WHEN l.audio_output_per_mtok IS NULL AND $12 OPERATOR(pg_catalog.>) 0 THEN 'no price for audio output tokens'
           WHEN $18 OPERATOR(pg_catalog.>) 0
                AND CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                         ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END IS NULL
             THEN 'no price per ' OPERATOR(pg_catalog.||) $19
           ELSE (SELECT 'no price per ' OPERATOR(pg_catalog.||) e.key FROM pg_catalog.jsonb_each($20) e
                  WHERE e.value::numeric OPERATOR(pg_catalog.>) 0
                    AND CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                             ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END IS NULL
                  ORDER BY e.key LIMIT 1)
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) $1 AND l.model OPERATOR(pg_catalog.=) $2 AND l.service_tier OPERATOR(pg_catalog.=) $3
     AND (l.tenant_id OPERATOR(pg_catalog.=) '' OR l.tenant_id OPERATOR(pg_catalog.=) $4)
     AND l.valid_from OPERATOR(pg_catalog.<=) $5 AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) $5)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0 OR l.above_input_tokens OPERATOR(pg_catalog.<) $6)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window($5, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb) IS 'Internal: the cost formula applied with the price for an exact model id or alias; no row when none applies.';

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

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
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
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
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
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost_internal.price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) NEW.provider AND l.model OPERATOR(pg_catalog.=) NEW.model AND l.service_tier OPERATOR(pg_catalog.=) NEW.service_tier
     AND (l.tenant_id OPERATOR(pg_catalog.=) ''::pg_catalog.text OR l.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
     AND l.valid_from OPERATOR(pg_catalog.<=) NEW.created_at AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) NEW.created_at)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0::bigint OR l.above_input_tokens OPERATOR(pg_catalog.<) NEW.input_tokens)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window(NEW.created_at, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
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
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
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

SELECT ai_cost_internal.rebuild_price_lookup();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The earlier schema has no prices of certain hours: refuse rather than drop them.
DO $$
BEGIN
  IF EXISTS (SELECT FROM ai_cost.prices WHERE daily_from IS NOT NULL) THEN
    RAISE EXCEPTION 'prices of certain hours of the day (daily_from) exist, which the earlier schema cannot hold'
      USING HINT = 'Calls point at price rows, which cannot be deleted: this step cannot be reverted while they exist.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text)
    TO %I', grantee);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
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
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
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
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost_internal.price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
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
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
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
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
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
    format('price row %s (%s/%s, %s, %s%s) in force %s to %s%s',
           p.price_id, p.provider, p.priced_model,
           CASE WHEN p.tier_multiplier IS NULL THEN p.service_tier || ' tier'
                ELSE format('%s tier: %s x the standard price', p.service_tier, trim_scale(p.tier_multiplier)) END,
           CASE WHEN p.above_input_tokens = 0 THEN 'base price' ELSE 'input above ' || p.above_input_tokens || ' tokens' END,
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

CREATE OR REPLACE FUNCTION ai_cost_internal.priced(
  provider text, model text, service_tier text, tenant_id text, at timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
  reasoning_tokens bigint, cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint,
  video_input_tokens bigint, units numeric, unit text, extra_units jsonb
) RETURNS TABLE (cost_micros bigint, price_id bigint, discount_id bigint, missing_rate text)
LANGUAGE sql STABLE ROWS 1 AS $$
  -- OPERATOR(...) gives every operator the same precedence, so each product
  -- is in parentheses. Cached audio ($14) is part of both the cache reads
  -- ($8) and the audio input ($11). Reasoning ($13) and image output ($16)
  -- are parts of the output ($7), image ($15) and video ($17) input parts of
  -- the input ($6), that only a price with a rate of their own bills apart:
  -- at a NULL rate the part is 0 here and stays in its whole. A unit ($19,
  -- and each key of $20) is priced at unit_price where it is the price's
  -- unit, else at its entry in unit_prices.
  SELECT pg_catalog.ceil(l.factor OPERATOR(pg_catalog.*) (
             (greatest(coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                       OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                       OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                       OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END, 0)
                                          OPERATOR(pg_catalog.*) coalesce(l.input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($15, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($17, 0)                    OPERATOR(pg_catalog.*) coalesce(l.video_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (greatest(coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                            OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                            OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END, 0)
                                   OPERATOR(pg_catalog.*) coalesce(l.output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($13, 0)                    OPERATOR(pg_catalog.*) coalesce(l.reasoning_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($16, 0)                    OPERATOR(pg_catalog.*) coalesce(l.image_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($14, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_read_audio_per_mtok, l.cache_read_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($9, 0) OPERATOR(pg_catalog.-) coalesce($10, 0)) OPERATOR(pg_catalog.*) coalesce(l.cache_write_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($10, 0)                    OPERATOR(pg_catalog.*) coalesce(l.cache_write_1h_per_mtok, 0))
           OPERATOR(pg_catalog.+) ((coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0)) OPERATOR(pg_catalog.*) coalesce(l.audio_input_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($12, 0)                    OPERATOR(pg_catalog.*) coalesce(l.audio_output_per_mtok, 0))
           OPERATOR(pg_catalog.+) (coalesce($18, 0) OPERATOR(pg_catalog.*) coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                                                                                     ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END, 0)
                                   OPERATOR(pg_catalog.*) 1000000)
           OPERATOR(pg_catalog.+) (coalesce((SELECT pg_catalog.sum(e.value::numeric OPERATOR(pg_catalog.*)
                                                                   coalesce(CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                                                                                 ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END, 0))
                                               FROM pg_catalog.jsonb_each($20) e), 0)
                                   OPERATOR(pg_catalog.*) 1000000)))::bigint,
         l.price_id,
         l.discount_id,
         CASE
           WHEN l.input_per_mtok IS NULL AND coalesce($6, 0) OPERATOR(pg_catalog.-) coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($9, 0)
                                             OPERATOR(pg_catalog.-) (coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0))
                                             OPERATOR(pg_catalog.-) CASE WHEN l.image_input_per_mtok IS NULL THEN 0 ELSE coalesce($15, 0) END
                                             OPERATOR(pg_catalog.-) CASE WHEN l.video_input_per_mtok IS NULL THEN 0 ELSE coalesce($17, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for input tokens'
           WHEN l.output_per_mtok IS NULL AND coalesce($7, 0) OPERATOR(pg_catalog.-) coalesce($12, 0)
                                              OPERATOR(pg_catalog.-) CASE WHEN l.reasoning_per_mtok IS NULL THEN 0 ELSE coalesce($13, 0) END
                                              OPERATOR(pg_catalog.-) CASE WHEN l.image_output_per_mtok IS NULL THEN 0 ELSE coalesce($16, 0) END OPERATOR(pg_catalog.>) 0
             THEN 'no price for output tokens'
           WHEN l.cache_read_per_mtok IS NULL
                AND (coalesce($8, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
                     OR (l.cache_read_audio_per_mtok IS NULL AND $14 OPERATOR(pg_catalog.>) 0))
             THEN 'no price for cache read tokens'
           WHEN l.cache_write_per_mtok IS NULL AND $9 OPERATOR(pg_catalog.>) coalesce($10, 0) THEN 'no price for cache write tokens'
           WHEN l.cache_write_1h_per_mtok IS NULL AND $10 OPERATOR(pg_catalog.>) 0 THEN 'no price for 1-hour cache write tokens'
           WHEN l.audio_input_per_mtok IS NULL AND coalesce($11, 0) OPERATOR(pg_catalog.-) coalesce($14, 0) OPERATOR(pg_catalog.>) 0
             THEN 'no price for audio input tokens'
           WHEN l.audio_output_per_mtok IS NULL AND $12 OPERATOR(pg_catalog.>) 0 THEN 'no price for audio output tokens'
           WHEN $18 OPERATOR(pg_catalog.>) 0
                AND CASE WHEN l.unit OPERATOR(pg_catalog.=) $19 THEN l.unit_price
                         ELSE (l.unit_prices OPERATOR(pg_catalog.->>) $19)::numeric END IS NULL
             THEN 'no price per ' OPERATOR(pg_catalog.||) $19
           ELSE (SELECT 'no price per ' OPERATOR(pg_catalog.||) e.key FROM pg_catalog.jsonb_each($20) e
                  WHERE e.value::numeric OPERATOR(pg_catalog.>) 0
                    AND CASE WHEN l.unit OPERATOR(pg_catalog.=) e.key THEN l.unit_price
                             ELSE (l.unit_prices OPERATOR(pg_catalog.->>) e.key)::numeric END IS NULL
                  ORDER BY e.key LIMIT 1)
         END
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) $1 AND l.model OPERATOR(pg_catalog.=) $2 AND l.service_tier OPERATOR(pg_catalog.=) $3
     AND (l.tenant_id OPERATOR(pg_catalog.=) '' OR l.tenant_id OPERATOR(pg_catalog.=) $4)
     AND l.valid_from OPERATOR(pg_catalog.<=) $5 AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) $5)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0 OR l.above_input_tokens OPERATOR(pg_catalog.<) $6)
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb) IS 'Internal: the cost formula applied with the price for an exact model id or alias; no row when none applies.';

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

CREATE OR REPLACE FUNCTION ai_cost_internal.rebuild_price_lookup() RETURNS void
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
           p.unit, p.unit_price, p.unit_prices
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
         image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, NULL::numeric, unit_prices
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
         p.image_input_per_mtok, p.image_output_per_mtok, p.video_input_per_mtok, NULL::numeric, p.unit_prices
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
         (SELECT jsonb_object_agg(e.key, trim_scale(e.value::numeric * t.multiplier)) FROM jsonb_each(s.unit_prices) AS e)
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

DROP INDEX ai_cost_internal.price_lookup_idx;
ALTER TABLE ai_cost_internal.price_lookup
  DROP COLUMN daily_from,
  DROP COLUMN daily_to,
  DROP COLUMN time_zone;
CREATE INDEX price_lookup_idx
  ON ai_cost_internal.price_lookup (provider, model, service_tier, rank, above_input_tokens DESC);

CREATE OR REPLACE FUNCTION ai_cost.price_at(provider text, model text, at timestamptz) RETURNS ai_cost.prices
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.*
    FROM ai_cost.prices p
   WHERE p.provider = price_at.provider
     AND p.model = price_at.model
     AND p.service_tier = 'standard' AND p.above_input_tokens = 0 AND p.tenant_id IS NULL
     AND p.valid_from <= price_at.at
     AND (p.valid_to IS NULL OR p.valid_to > price_at.at)
   ORDER BY p.valid_from DESC
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost.price_at(text, text, timestamptz) IS 'The standard-tier base list price (ai_cost.prices row) in force for provider/model at an instant, or NULL. The cost trigger also considers tiers, long context, tenants and aliases: see ai_cost.explain_cost.';

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.prices
     SET valid_to = NEW.valid_from
   WHERE provider = NEW.provider AND model = NEW.model
     AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
     AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);

  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.prices
     WHERE provider = NEW.provider AND model = NEW.model
       AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
       AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.close_previous_price() IS 'Trigger: ends the price in force when a newer price for the same model is inserted.';

DROP TRIGGER tg_prices__refuse_overlapping_hours ON ai_cost.prices;
DROP FUNCTION ai_cost_internal.refuse_overlapping_hours();
DROP FUNCTION ai_cost_internal.in_daily_window(timestamptz, time, time, text);
ALTER TABLE ai_cost.prices
  DROP CONSTRAINT "prices for one model, tier and tenant must not overlap in time",
  DROP CONSTRAINT "a daily window needs daily_from, daily_to and time_zone",
  DROP CONSTRAINT "a daily window must not be empty: daily_from <> daily_to",
  DROP COLUMN daily_from,
  DROP COLUMN daily_to,
  DROP COLUMN time_zone;
ALTER TABLE ai_cost.prices
  ADD CONSTRAINT "prices for one model, tier and tenant must not overlap in time"
    EXCLUDE USING gist (provider WITH =, model WITH =, service_tier WITH =, above_input_tokens WITH =,
                        (coalesce(tenant_id, '')) WITH =, tstzrange(valid_from, valid_to) WITH &&);

SELECT ai_cost_internal.rebuild_price_lookup();
