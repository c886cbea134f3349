-- Up Migration
--
-- The cost trigger names each of the compiled book's arrays once per
-- expression, as an argument of inlined SQL functions, instead of once per
-- rate it reads: each name was a constant of some 135 kB to parse when
-- planning, about 3 ms apiece, which the first insert of every connection
-- paid (on Citus, of every connection and shard), and again after every
-- price change (sql/ holds the definitions; this step brings the schema
-- there).

-- The cost of a plain call (no cache writes, audio, image or video) at its
-- slot of the book, or NULL where the book does not price it: outside the
-- price's validity, a token count past its mask, reasoning billed apart (a
-- call with reasoning at a price that bills it apart, Perplexity's Sonar Deep
-- Research, takes the lookup), or a slot of another compile (NULL).
-- Reasoning is output here, at the output rate. The same sum as priced()'s
-- numeric one, in picodollars, rounded up once. Uncached input needs no
-- clamp at 0 here: with no cache writes or audio it is negative only in a
-- row the CHECK constraints refuse next, and the masks keep every count
-- below 2^30, so nothing overflows first. OPERATOR(...) gives every operator
-- the same precedence: each product is in parentheses.
CREATE FUNCTION ai_cost_internal.book_cost_of_plain_call(
  rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, reasoning_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR rates[slot][9] OPERATOR(pg_catalog.=) rates[slot][3])
  THEN (((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint))
         OPERATOR(pg_catalog.*) rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][3])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][4])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint) IS 'Internal, inlined into the cost trigger: the cost of a call without cache writes, audio, image or video from the compiled book at its slot, or NULL where the book does not price it.';

-- The same with cache writes, audio, image or video: all twelve dimensions.
-- Once the masks hold every count below 2^30, reasoning, audio and image
-- output beyond the output, and image and video input beyond the rest of the
-- input, are left to the lookup, which bills the text as 0 then: the sum
-- would bill the output negative, and image and video at the input rate
-- where priced() leaves them in a text input of 0. Any other negative part
-- can only come from a row the CHECK constraints refuse next
-- (audio_output_tokens above output_tokens, say). Reasoning and image output
-- are at the output rate, cached audio at the cache read rate, image and
-- video input at the input rate where the price has no rate of their own
-- (050_price_book.sql).
CREATE FUNCTION ai_cost_internal.book_cost_of_call(
  rates bigint[], windows pg_catalog.timestamptz[], slot integer, created_at pg_catalog.timestamptz,
  input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
  cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint, reasoning_tokens bigint,
  cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint
) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN windows[slot][1] OPERATOR(pg_catalog.<=) created_at
       AND created_at OPERATOR(pg_catalog.<) windows[slot][2]
       AND ((coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) rates[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(image_input_tokens, video_input_tokens) IS NULL
            OR coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint)
  THEN ((greatest(coalesce(input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(cache_write_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) (coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint))
                OPERATOR(pg_catalog.-) coalesce(image_input_tokens, 0::bigint)
                OPERATOR(pg_catalog.-) coalesce(video_input_tokens, 0::bigint), 0::bigint)
         OPERATOR(pg_catalog.*) rates[slot][2])
       OPERATOR(pg_catalog.+) (coalesce(image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][11])
       OPERATOR(pg_catalog.+) (coalesce(video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][13])
       OPERATOR(pg_catalog.+) ((coalesce(output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(audio_output_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(reasoning_tokens, 0::bigint)
                                OPERATOR(pg_catalog.-) coalesce(image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][3])
       OPERATOR(pg_catalog.+) (coalesce(reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][9])
       OPERATOR(pg_catalog.+) (coalesce(image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][12])
       OPERATOR(pg_catalog.+) ((coalesce(cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][4])
       OPERATOR(pg_catalog.+) (coalesce(cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][10])
       OPERATOR(pg_catalog.+) ((coalesce(cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][5])
       OPERATOR(pg_catalog.+) (coalesce(cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][6])
       OPERATOR(pg_catalog.+) ((coalesce(audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) rates[slot][7])
       OPERATOR(pg_catalog.+) (coalesce(audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) rates[slot][8])
       OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint) IS 'Internal, inlined into the cost trigger: the cost of a call over all twelve token dimensions from the compiled book at its slot, or NULL where the book does not price it.';

-- The organisation discount of the book at a slot: NULL for none (the book
-- writes it as 0), 0 for a read outside the book.
CREATE FUNCTION ai_cost_internal.book_discount_id(rates bigint[], slot integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN rates[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL ELSE coalesce(rates[slot][26], 0::bigint) END
$$;
COMMENT ON FUNCTION ai_cost_internal.book_discount_id(bigint[], integer) IS 'Internal, inlined into the cost trigger: the organisation discount the compiled book applies at a slot; NULL for none, 0 outside the book.';

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
    NEW.cost_micros := ai_cost_internal.book_cost_of_plain_call(
      ai_cost_internal.price_book_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.reasoning_tokens);
    IF NEW.cost_micros IS NOT NULL THEN
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := ai_cost_internal.book_discount_id(ai_cost_internal.price_book_rates(), slot);
      -- Each expression is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.price_id IS NOT NULL AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
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
    NEW.cost_micros := ai_cost_internal.book_cost_of_call(
      ai_cost_internal.price_book_rates(), ai_cost_internal.price_book_windows(), slot, NEW.created_at,
      NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens, NEW.cache_write_1h_tokens,
      NEW.audio_input_tokens, NEW.audio_output_tokens, NEW.reasoning_tokens, NEW.cache_read_audio_tokens,
      NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens);
    IF NEW.cost_micros IS NOT NULL THEN
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := ai_cost_internal.book_discount_id(ai_cost_internal.price_book_rates(), slot);
      IF NEW.price_id IS NOT NULL AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
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
    -- On a Citus shard NEW is a row of the shard's own table: the row
    -- constructor makes it an ai_cost.calls row on every node.
    RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
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
  RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_discount_id(bigint[], integer),
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

-- Down Migration

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
    -- On a Citus shard NEW is a row of the shard's own table: the row
    -- constructor makes it an ai_cost.calls row on every node.
    RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
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
  RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
END
$$;

DROP FUNCTION ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint);
DROP FUNCTION ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint);
DROP FUNCTION ai_cost_internal.book_discount_id(bigint[], integer);

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
