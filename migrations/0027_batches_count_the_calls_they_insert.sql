-- Up Migration
--
-- ai_cost.insert_calls() counts the calls it inserted from the rows its
-- INSERT returns: on a Citus cluster the INSERT's row count also counted
-- the request_ids it skipped, so a retried batch was reported as new
-- (sql/060_cost.sql holds the definition; this step brings the schema there).

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
  -- Counted from the rows it returns: on a Citus cluster the INSERT's row
  -- count also counts the rows ON CONFLICT skipped.
  WITH inserted_calls AS (
    INSERT INTO ai_cost.calls (
      created_at, provider, model, operation, status, service_tier,
      tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
      cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
      image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units,
      provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
      discount_id)
    SELECT
      c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
      c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
      c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
      c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
      c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units,
      c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
      -- Only read with a cost beside them: the trigger sets its own otherwise.
      b.price_id, b.discount_id
    FROM (
      -- A key left out, or given as null, takes the column's default.
      SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
             coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
             coalesce(j.service_tier, 'standard') AS service_tier,
             coalesce(j.tenant_id, ai_cost_internal.tenant_of_calls_without_one()) AS tenant_id,
             j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
             coalesce(j.metadata, '{}') AS metadata, j.request_id,
             j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
             j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
             j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit, j.extra_units,
             j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
             j.ttft_ms, j.total_ms, j.error_message
        FROM jsonb_to_recordset(calls) AS j(
          created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
          tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
          metadata jsonb, request_id text,
          input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
          reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
          cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
          units numeric, unit text, extra_units jsonb, provided_cost_micros bigint,
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
      SELECT CASE WHEN c.units IS NULL AND c.extra_units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
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
                   | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)
                   | (coalesce(c.image_input_tokens, 0::bigint) >> b.image_input_bits)
                   | (coalesce(c.image_output_tokens, 0::bigint) >> b.image_output_bits)
                   | (coalesce(c.video_input_tokens, 0::bigint) >> b.video_input_bits)) = 0::bigint
        THEN CASE
          WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
                        c.image_input_tokens, c.image_output_tokens, c.video_input_tokens) IS NULL
               AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
          THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
                + coalesce(c.output_tokens, 0::bigint) * b.output_rate
                + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
                + 999999::bigint) / 1000000::bigint
          -- Parts beyond their whole (reasoning, audio and image output
          -- beyond the output; image and video beyond the rest of the input):
          -- the trigger prices them, with the text at 0 as priced() does.
          WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
               - coalesce(c.image_output_tokens, 0::bigint) >= 0::bigint
               AND (coalesce(c.image_input_tokens, c.video_input_tokens) IS NULL
                    OR coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                       - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint) >= 0::bigint)
          THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                         - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                         - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint), 0::bigint) * b.input_rate
                + coalesce(c.image_input_tokens, 0::bigint) * b.image_input_rate
                + coalesce(c.video_input_tokens, 0::bigint) * b.video_input_rate
                + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
                   - coalesce(c.image_output_tokens, 0::bigint)) * b.output_rate
                + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
                + coalesce(c.image_output_tokens, 0::bigint) * b.image_output_rate
                + (coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.cache_read_rate
                + coalesce(c.cache_read_audio_tokens, 0::bigint) * b.cache_read_audio_rate
                + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
                + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
                + (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.audio_input_rate
                + coalesce(c.audio_output_tokens, 0::bigint) * b.audio_output_rate
                + 999999::bigint) / 1000000::bigint
          END
        END AS cost_micros) AS book
    ON CONFLICT DO NOTHING
    RETURNING 1
  )
  SELECT count(*) INTO inserted FROM inserted_calls;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;

-- CREATE OR REPLACE sets the function's settings to those it names: on a
-- distributed ledger, the one ai_cost.distribute() gives it goes back.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    ALTER FUNCTION ai_cost.insert_calls(jsonb) SET citus.all_modifications_commutative = on;
  END IF;
END
$$;

-- Down Migration

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
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
    image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
    discount_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units,
    c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
    -- Only read with a cost beside them: the trigger sets its own otherwise.
    b.price_id, b.discount_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           coalesce(j.tenant_id, ai_cost_internal.tenant_of_calls_without_one()) AS tenant_id,
           j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
           j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit, j.extra_units,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
        units numeric, unit text, extra_units jsonb, provided_cost_micros bigint,
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
    SELECT CASE WHEN c.units IS NULL AND c.extra_units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
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
                 | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)
                 | (coalesce(c.image_input_tokens, 0::bigint) >> b.image_input_bits)
                 | (coalesce(c.image_output_tokens, 0::bigint) >> b.image_output_bits)
                 | (coalesce(c.video_input_tokens, 0::bigint) >> b.video_input_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
                      c.image_input_tokens, c.image_output_tokens, c.video_input_tokens) IS NULL
             AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        -- Parts beyond their whole (reasoning, audio and image output
        -- beyond the output; image and video beyond the rest of the input):
        -- the trigger prices them, with the text at 0 as priced() does.
        WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
             - coalesce(c.image_output_tokens, 0::bigint) >= 0::bigint
             AND (coalesce(c.image_input_tokens, c.video_input_tokens) IS NULL
                  OR coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                     - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                     - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint) >= 0::bigint)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                       - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.image_input_tokens, 0::bigint) * b.image_input_rate
              + coalesce(c.video_input_tokens, 0::bigint) * b.video_input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
                 - coalesce(c.image_output_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
              + coalesce(c.image_output_tokens, 0::bigint) * b.image_output_rate
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

-- CREATE OR REPLACE sets the function's settings to those it names: on a
-- distributed ledger, the one ai_cost.distribute() gives it goes back.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    ALTER FUNCTION ai_cost.insert_calls(jsonb) SET citus.all_modifications_commutative = on;
  END IF;
END
$$;
