-- Up Migration
--
-- The built-in catalog of release 0.2.0 (sql/170_catalog.sql holds it whole):
-- price rows for the current models of OpenAI, Anthropic, Google (Gemini API
-- and Vertex AI), xAI, Mistral, Cohere, Amazon Bedrock (Nova, Titan, Llama,
-- Claude) and Llama on Vertex that it lacked, the batch tier of current
-- Claude models, and aliases for snapshot, -latest and @version ids. A model this database already prices, at a price
-- of your own or one a price list wrote, keeps its rows.
--
-- Calls of those models recorded before the upgrade are unpriced. This step
-- registers a reprice run for them (ai_cost.reprice_runs.catalog = '0.2.0'),
-- which changes only the unpriced calls that the built-in catalog's rows and
-- aliases price now, and audits each in ai_cost.reprice_audit; ai-cost migrate carries it out
-- after this transaction commits, one batch per transaction, so the upgrade
-- holds its locks for the catalog rows only, not for the backfill. If it is
-- interrupted, ai-cost migrate (or ai-cost reprice --resume <run>) resumes
-- it from its cursor. Calls already priced are never examined.

SET LOCAL check_function_bodies = off;

ALTER TABLE ai_cost.reprice_runs ADD COLUMN catalog text;
COMMENT ON COLUMN ai_cost.reprice_runs.catalog IS 'The release whose built-in catalog update registered this backfill, e.g. 0.2.0: the run changes only the calls that a built-in catalog row (ai_cost.prices.catalog set) now prices, directly or through an alias or pattern, and leaves alone those only a price of your own would price. ai-cost migrate carries it out once the update is committed. NULL: a run that changes every call whose cost changes.';

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

INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, valid_from,
                            input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok,
                            cache_write_1h_per_mtok, audio_input_per_mtok, audio_output_per_mtok,
                            reasoning_per_mtok, cache_read_audio_per_mtok,
                            image_input_per_mtok, image_output_per_mtok, video_input_per_mtok,
                            unit, unit_price, source, checked_on, catalog)
SELECT v.provider, v.model, v.service_tier, v.above_input_tokens, v.valid_from::timestamptz,
       v.input, v.output, v.cache_read, v.cache_write, v.cache_write_1h, v.audio_input, v.audio_output,
       -- A column NULL in every row is text to VALUES: numeric says what it holds.
       v.reasoning::numeric, v.cache_read_audio::numeric, v.image_input::numeric, v.image_output::numeric,
       v.video_input::numeric, v.unit, v.unit_price, v.source, '2026-07-24', '0.2.0'
  FROM (VALUES
  -- provider, model, tier, input tokens above, valid_from,
  -- USD per 1M: input, output, cache read, cache write 5 min, cache write 1 h, audio in, audio out,
  -- reasoning, cached audio in, image in, image out, video in;
  -- per-unit charge (unit, USD per unit), source
  ('amazon', 'amazon.nova-2-multimodal-embeddings-v1:0', 'standard', 0, '-infinity', 0.135, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.nova-2-pro-preview-20251202-v1:0', 'standard', 0, '-infinity', 2.1875, 17.5, 0.546875, NULL, NULL, 2.1875, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.nova-premier-v1:0', 'standard', 0, '-infinity', 2.5, 12.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.titan-embed-text-v1', 'standard', 0, '-infinity', 0.1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.titan-text-express-v1', 'standard', 0, '-infinity', 1.3, 1.7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.titan-text-lite-v1', 'standard', 0, '-infinity', 0.3, 0.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'amazon.titan-text-premier-v1:0', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-3-5-sonnet-20241022-v2:0', 'standard', 0, '-infinity', 3, 15, 0.3, 3.75, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-fable-5', 'batch', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-fable-5', 'standard', 0, '-infinity', 10, 50, 1, 12.5, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-20250514-v1:0', 'standard', 0, '-infinity', 15, 75, 1.5, 18.75, 30, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-5-20251101-v1:0', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-5-20251101-v1:0', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-6-v1', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-6-v1', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-8', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-4-8', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-5', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-opus-5', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-sonnet-5', 'batch', 0, '-infinity', 1, 5, 0.1, 1.25, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'anthropic.claude-sonnet-5', 'standard', 0, '-infinity', 2, 10, 0.2, 2.5, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'cohere.command-r-plus-v1:0', 'standard', 0, '-infinity', 3, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'cohere.command-r-v1:0', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'cohere.embed-english-v3', 'standard', 0, '-infinity', 0.1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'cohere.embed-multilingual-v3', 'standard', 0, '-infinity', 0.1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'cohere.embed-v4:0', 'standard', 0, '-infinity', 0.12, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'deepseek.r1-v1:0', 'standard', 0, '-infinity', 1.35, 5.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'deepseek.v3.2', 'standard', 0, '-infinity', 0.62, 1.85, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-fable-5', 'batch', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-fable-5', 'standard', 0, '-infinity', 11, 55, 1.1, 13.75, 22, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-opus-4-8', 'batch', 0, '-infinity', 2.75, 13.75, 0.275, 3.4375, 5.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-opus-4-8', 'standard', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-opus-5', 'batch', 0, '-infinity', 2.75, 13.75, 0.275, 3.4375, 5.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-opus-5', 'standard', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-sonnet-5', 'batch', 0, '-infinity', 1.1, 5.5, 0.11, 1.375, 2.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'eu.anthropic.claude-sonnet-5', 'standard', 0, '-infinity', 2.2, 11, 0.22, 2.75, 4.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-1-405b-instruct-v1:0', 'standard', 0, '-infinity', 5.32, 16, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-1-70b-instruct-v1:0', 'standard', 0, '-infinity', 0.99, 0.99, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-1-8b-instruct-v1:0', 'standard', 0, '-infinity', 0.22, 0.22, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-2-11b-instruct-v1:0', 'standard', 0, '-infinity', 0.35, 0.35, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-2-1b-instruct-v1:0', 'standard', 0, '-infinity', 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-2-3b-instruct-v1:0', 'standard', 0, '-infinity', 0.15, 0.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-2-90b-instruct-v1:0', 'standard', 0, '-infinity', 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-70b-instruct-v1:0', 'standard', 0, '-infinity', 2.65, 3.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'meta.llama3-8b-instruct-v1:0', 'standard', 0, '-infinity', 0.3, 0.6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.devstral-2-123b', 'standard', 0, '-infinity', 0.4, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.magistral-small-2509', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.ministral-3-14b-instruct', 'standard', 0, '-infinity', 0.2, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.ministral-3-3b-instruct', 'standard', 0, '-infinity', 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.ministral-3-8b-instruct', 'standard', 0, '-infinity', 0.15, 0.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.mistral-7b-instruct-v0:2', 'standard', 0, '-infinity', 0.15, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.mistral-large-2407-v1:0', 'standard', 0, '-infinity', 3, 9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.mistral-large-3-675b-instruct', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'mistral.mixtral-8x7b-instruct-v0:1', 'standard', 0, '-infinity', 0.45, 0.7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'openai.gpt-oss-120b-1:0', 'standard', 0, '-infinity', 0.15, 0.6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'openai.gpt-oss-20b-1:0', 'standard', 0, '-infinity', 0.07, 0.3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-fable-5', 'batch', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-fable-5', 'standard', 0, '-infinity', 11, 55, 1.1, 13.75, 22, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-opus-4-8', 'batch', 0, '-infinity', 2.75, 13.75, 0.275, 3.4375, 5.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-opus-4-8', 'standard', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-opus-5', 'batch', 0, '-infinity', 2.75, 13.75, 0.275, 3.4375, 5.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-opus-5', 'standard', 0, '-infinity', 5.5, 27.5, 0.55, 6.875, 11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-sonnet-5', 'batch', 0, '-infinity', 1.1, 5.5, 0.11, 1.375, 2.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('amazon', 'us.anthropic.claude-sonnet-5', 'standard', 0, '-infinity', 2.2, 11, 0.22, 2.75, 4.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://aws.amazon.com/bedrock/pricing/'),
  ('anthropic', 'claude-fable-5', 'batch', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-fable-5', 'standard', 0, '-infinity', 10, 50, 1, 12.5, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-haiku-4-5', 'batch', 0, '2025-10-15', 0.5, 2.5, 0.05, 0.625, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-haiku-4-5-20251001', 'batch', 0, '2025-10-15', 0.5, 2.5, 0.05, 0.625, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-1', 'batch', 0, '2025-08-05', 7.5, 37.5, 0.75, 9.375, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-1-20250805', 'batch', 0, '2025-08-05', 7.5, 37.5, 0.75, 9.375, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-7', 'batch', 0, '2026-04-16', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-7-20260416', 'batch', 0, '2026-04-16', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-8', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-4-8', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-5', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-opus-5', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-sonnet-4-6', 'batch', 0, '2026-02-17', 1.5, 7.5, 0.15, 1.875, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-sonnet-5', 'batch', 0, '-infinity', 1, 5, 0.1, 1.25, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('anthropic', 'claude-sonnet-5', 'standard', 0, '-infinity', 2, 10, 0.2, 2.5, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.anthropic.com/en/docs/about-claude/pricing'),
  ('cohere', 'command', 'standard', 0, '-infinity', 1, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cohere.com/pricing'),
  ('cohere', 'command-light', 'standard', 0, '-infinity', 0.3, 0.6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cohere.com/pricing'),
  ('cohere', 'embed-english-light-v3.0', 'standard', 0, '-infinity', 0.1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cohere.com/pricing'),
  ('cohere', 'embed-multilingual-light-v3.0', 'standard', 0, '-infinity', 0.1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cohere.com/pricing'),
  ('cohere', 'rerank-english-v3.0', 'standard', 0, '-infinity', 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'query', 0.002, 'https://cohere.com/pricing'),
  ('cohere', 'rerank-multilingual-v3.0', 'standard', 0, '-infinity', 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'query', 0.002, 'https://cohere.com/pricing'),
  ('google', 'gemini-3-pro-image-preview', 'batch', 0, '-infinity', 1, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3-pro-image-preview', 'standard', 0, '-infinity', 2, 12, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 120, NULL, 'image', 0.134, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.1-flash-image-preview', 'batch', 0, '-infinity', 0.125, 0.75, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.1-flash-image-preview', 'standard', 0, '-infinity', 0.25, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 60, NULL, 'image', 0.045, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash', 'priority', 0, '-infinity', 2.7, 16.2, 0.27, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash', 'standard', 0, '-infinity', 1.5, 9, 0.15, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash-lite', 'batch', 0, '-infinity', 0.15, 1.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash-lite', 'flex', 0, '-infinity', 0.15, 1.25, 0.02, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash-lite', 'priority', 0, '-infinity', 0.54, 4.5, 0.05, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.5-flash-lite', 'standard', 0, '-infinity', 0.3, 2.5, 0.03, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.6-flash', 'batch', 0, '-infinity', 0.75, 3.75, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.6-flash', 'flex', 0, '-infinity', 0.75, 3.75, 0.075, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.6-flash', 'priority', 0, '-infinity', 2.7, 13.5, 0.27, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-3.6-flash', 'standard', 0, '-infinity', 1.5, 7.5, 0.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'gemini-embedding-2', 'standard', 0, '-infinity', 0.2, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'veo-3.1-fast-generate-001', 'standard', 0, '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'second', 0.15, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'veo-3.1-generate-001', 'standard', 0, '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'second', 0.4, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('google', 'veo-3.1-lite-generate-preview', 'standard', 0, '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'second', 0.05, 'https://ai.google.dev/gemini-api/docs/pricing'),
  ('mistral', 'magistral-small-2506', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'magistral-small-2509', 'standard', 0, '-infinity', 0.5, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'mistral-large-2411', 'standard', 0, '-infinity', 2, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'mistral-medium-2604', 'standard', 0, '-infinity', 1.5, 7.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'open-mistral-7b', 'standard', 0, '-infinity', 0.25, 0.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'open-mixtral-8x22b', 'standard', 0, '-infinity', 2, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('mistral', 'open-mixtral-8x7b', 'standard', 0, '-infinity', 0.7, 0.7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://mistral.ai/pricing'),
  ('openai', 'babbage-002', 'standard', 0, '-infinity', 0.4, 0.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'davinci-002', 'standard', 0, '-infinity', 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-3.5-turbo-instruct', 'standard', 0, '-infinity', 1.5, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-4o-mini-realtime-preview', 'standard', 0, '-infinity', 0.6, 2.4, 0.3, NULL, NULL, 10, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-4o-realtime-preview', 'standard', 0, '-infinity', 5, 20, 2.5, NULL, NULL, 40, 80, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-4o-transcribe-diarize', 'standard', 0, '-infinity', 2.5, 10, NULL, NULL, NULL, 2.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5-search-api', 'standard', 0, '-infinity', 1.25, 10, 0.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.1-chat-latest', 'priority', 0, '-infinity', 2.5, 20, 0.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.1-chat-latest', 'standard', 0, '-infinity', 1.25, 10, 0.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.2-chat-latest', 'priority', 0, '-infinity', 3.5, 28, 0.35, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.2-chat-latest', 'standard', 0, '-infinity', 1.75, 14, 0.175, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.3-chat-latest', 'priority', 0, '-infinity', 3.5, 28, 0.35, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.3-chat-latest', 'standard', 0, '-infinity', 1.75, 14, 0.175, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6', 'batch', 0, '-infinity', 2.5, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6', 'flex', 0, '-infinity', 2.5, 15, 0.25, 3.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6', 'priority', 0, '-infinity', 10, 60, 1, 12.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6', 'standard', 0, '-infinity', 5, 30, 0.5, 6.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6', 'standard', 272000, '-infinity', 10, 45, 1, 12.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-luna', 'batch', 0, '-infinity', 0.5, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-luna', 'flex', 0, '-infinity', 0.5, 3, 0.05, 0.625, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-luna', 'priority', 0, '-infinity', 2, 12, 0.2, 2.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-luna', 'standard', 0, '-infinity', 1, 6, 0.1, 1.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-luna', 'standard', 272000, '-infinity', 2, 9, 0.2, 2.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-sol', 'batch', 0, '-infinity', 2.5, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-sol', 'flex', 0, '-infinity', 2.5, 15, 0.25, 3.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-sol', 'priority', 0, '-infinity', 10, 60, 1, 12.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-sol', 'standard', 0, '-infinity', 5, 30, 0.5, 6.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-sol', 'standard', 272000, '-infinity', 10, 45, 1, 12.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-terra', 'batch', 0, '-infinity', 1.25, 7.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-terra', 'flex', 0, '-infinity', 1.25, 7.5, 0.125, 1.5625, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-terra', 'priority', 0, '-infinity', 5, 30, 0.5, 6.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-terra', 'standard', 0, '-infinity', 2.5, 15, 0.25, 3.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-5.6-terra', 'standard', 272000, '-infinity', 5, 22.5, 0.5, 6.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-audio-1.5', 'standard', 0, '-infinity', 2.5, 10, NULL, NULL, NULL, 32, 64, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-image-1.5', 'standard', 0, '-infinity', 5, 10, 1.25, NULL, NULL, NULL, NULL, NULL, NULL, 8, 32, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-image-2', 'standard', 0, '-infinity', 5, 10, 1.25, NULL, NULL, NULL, NULL, NULL, NULL, 8, 30, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime', 'standard', 0, '-infinity', 4, 16, 0.4, NULL, NULL, 32, 64, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime-1.5', 'standard', 0, '-infinity', 4, 16, 0.4, NULL, NULL, 32, 64, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime-2', 'standard', 0, '-infinity', 4, 16, 0.4, NULL, NULL, 32, 64, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime-2.1', 'standard', 0, '-infinity', 4, 24, 0.4, NULL, NULL, 32, 64, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime-2.1-mini', 'standard', 0, '-infinity', 0.6, 2.4, 0.06, NULL, NULL, 10, 20, NULL, 0.3, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('openai', 'gpt-realtime-mini', 'standard', 0, '-infinity', 0.6, 2.4, 0.06, NULL, NULL, 10, 20, NULL, 0.3, NULL, NULL, NULL, NULL, NULL, 'https://openai.com/api/pricing'),
  ('vertex', 'claude-3-5-haiku', 'standard', 0, '-infinity', 1, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-fable-5', 'batch', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-fable-5', 'standard', 0, '-infinity', 10, 50, 1, 12.5, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-4', 'standard', 0, '-infinity', 15, 75, 1.5, 18.75, 30, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-4-5', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-4-5', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-4-8', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-4-8', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-5', 'batch', 0, '-infinity', 2.5, 12.5, 0.25, 3.125, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-opus-5', 'standard', 0, '-infinity', 5, 25, 0.5, 6.25, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-sonnet-4', 'standard', 0, '-infinity', 3, 15, 0.3, 3.75, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-sonnet-4', 'standard', 200000, '-infinity', 6, 22.5, 0.6, 7.5, 12, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-sonnet-5', 'batch', 0, '-infinity', 1, 5, 0.1, 1.25, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'claude-sonnet-5', 'standard', 0, '-infinity', 2, 10, 0.2, 2.5, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'codestral-2', 'standard', 0, '-infinity', 0.3, 0.9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'deepseek-ai/deepseek-r1-0528-maas', 'standard', 0, '-infinity', 1.35, 5.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'deepseek-ai/deepseek-v3.2-maas', 'batch', 0, '-infinity', 0.28, 0.84, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'deepseek-ai/deepseek-v3.2-maas', 'standard', 0, '-infinity', 0.56, 1.68, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.0-flash', 'standard', 0, '-infinity', 0.1, 0.4, 0.025, NULL, NULL, 0.7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.0-flash-lite', 'standard', 0, '-infinity', 0.075, 0.3, 0.01875, NULL, NULL, 0.075, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.5-flash', 'standard', 0, '-infinity', 0.3, 2.5, 0.03, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.5-flash-lite', 'standard', 0, '-infinity', 0.1, 0.4, 0.01, NULL, NULL, 0.3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.5-pro', 'standard', 0, '-infinity', 1.25, 10, 0.125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-2.5-pro', 'standard', 200000, '-infinity', 2.5, 15, 0.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-flash-preview', 'priority', 0, '-infinity', 0.9, 5.4, 0.09, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-flash-preview', 'standard', 0, '-infinity', 0.5, 3, 0.05, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-pro-preview', 'batch', 0, '-infinity', 1, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-pro-preview', 'priority', 0, '-infinity', 3.6, 21.6, 0.36, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-pro-preview', 'priority', 200000, '-infinity', 7.2, 32.4, 0.72, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-pro-preview', 'standard', 0, '-infinity', 2, 12, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3-pro-preview', 'standard', 200000, '-infinity', 4, 18, 0.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-flash-lite', 'batch', 0, '-infinity', 0.125, 0.75, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-flash-lite', 'flex', 0, '-infinity', 0.125, 0.75, 0.0125, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-flash-lite', 'priority', 0, '-infinity', 0.45, 2.7, 0.045, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-flash-lite', 'standard', 0, '-infinity', 0.25, 1.5, 0.025, NULL, NULL, 0.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-pro-preview', 'batch', 0, '-infinity', 1, 6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-pro-preview', 'priority', 0, '-infinity', 3.6, 21.6, 0.36, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-pro-preview', 'priority', 200000, '-infinity', 7.2, 32.4, 0.72, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-pro-preview', 'standard', 0, '-infinity', 2, 12, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.1-pro-preview', 'standard', 200000, '-infinity', 4, 18, 0.4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash', 'priority', 0, '-infinity', 2.7, 16.2, 0.27, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash', 'standard', 0, '-infinity', 1.5, 9, 0.15, NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash-lite', 'batch', 0, '-infinity', 0.15, 1.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash-lite', 'flex', 0, '-infinity', 0.15, 1.25, 0.02, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash-lite', 'priority', 0, '-infinity', 0.54, 4.5, 0.05, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.5-flash-lite', 'standard', 0, '-infinity', 0.3, 2.5, 0.03, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.6-flash', 'batch', 0, '-infinity', 0.75, 3.75, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.6-flash', 'flex', 0, '-infinity', 0.75, 3.75, 0.075, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.6-flash', 'priority', 0, '-infinity', 2.7, 13.5, 0.27, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-3.6-flash', 'standard', 0, '-infinity', 1.5, 7.5, 0.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'gemini-embedding-001', 'standard', 0, '-infinity', 0.15, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'meta/llama-3.1-405b-instruct-maas', 'standard', 0, '-infinity', 5, 16, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'meta/llama-4-maverick-17b-128e-instruct-maas', 'standard', 0, '-infinity', 0.35, 1.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'meta/llama-4-scout-17b-16e-instruct-maas', 'standard', 0, '-infinity', 0.25, 0.7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('vertex', 'mistral-medium-3', 'standard', 0, '-infinity', 0.4, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://cloud.google.com/vertex-ai/generative-ai/pricing'),
  ('xai', 'grok-2-1212', 'standard', 0, '-infinity', 2, 10, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.x.ai/docs/models'),
  ('xai', 'grok-3-mini-fast', 'standard', 0, '-infinity', 0.6, 4, 0.15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.x.ai/docs/models'),
  ('xai', 'grok-4.20-0309-reasoning', 'standard', 0, '-infinity', 2, 6, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.x.ai/docs/models'),
  ('xai', 'grok-4.20-multi-agent-beta-0309', 'standard', 0, '-infinity', 2, 6, 0.2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'https://docs.x.ai/docs/models')
  ) AS v (provider, model, service_tier, above_input_tokens, valid_from, input, output, cache_read, cache_write,
          cache_write_1h, audio_input, audio_output, reasoning, cache_read_audio, image_input, image_output,
          video_input, unit, unit_price, source)
 WHERE NOT EXISTS (SELECT FROM ai_cost.prices p
                    WHERE p.provider = v.provider AND p.model = v.model AND p.service_tier = v.service_tier
                      AND p.above_input_tokens = v.above_input_tokens AND p.tenant_id IS NULL);

INSERT INTO ai_cost.model_aliases (provider, alias, model, note) VALUES
  ('anthropic', 'claude-4-opus-20250514', 'claude-opus-4-20250514', 'built-in catalog'),
  ('anthropic', 'claude-4-sonnet-20250514', 'claude-sonnet-4-20250514', 'built-in catalog'),
  ('cohere', 'command-r', 'command-r-08-2024', 'built-in catalog'),
  ('cohere', 'command-r-plus', 'command-r-plus-08-2024', 'built-in catalog'),
  ('google', 'gemini-2.0-flash-001', 'gemini-2.0-flash', 'built-in catalog'),
  ('google', 'gemini-2.0-flash-lite-001', 'gemini-2.0-flash-lite', 'built-in catalog'),
  ('google', 'gemini-3-pro-image', 'gemini-3-pro-image-preview', 'built-in catalog'),
  ('google', 'gemini-3.1-flash-image', 'gemini-3.1-flash-image-preview', 'built-in catalog'),
  ('google', 'gemini-3.1-flash-lite-preview', 'gemini-3.1-flash-lite', 'built-in catalog'),
  ('google', 'gemini-3.1-pro-preview-customtools', 'gemini-3.1-pro-preview', 'built-in catalog'),
  ('google', 'gemini-embedding-2-preview', 'gemini-embedding-2', 'built-in catalog'),
  ('google', 'veo-3.1-fast-generate-preview', 'veo-3.1-fast-generate-001', 'built-in catalog'),
  ('google', 'veo-3.1-generate-preview', 'veo-3.1-generate-001', 'built-in catalog'),
  ('mistral', 'codestral-latest', 'codestral-2508', 'built-in catalog'),
  ('mistral', 'devstral-latest', 'devstral-2512', 'built-in catalog'),
  ('mistral', 'devstral-medium-latest', 'devstral-medium-2507', 'built-in catalog'),
  ('mistral', 'devstral-small-2505', 'devstral-small-2507', 'built-in catalog'),
  ('mistral', 'devstral-small-latest', 'devstral-small-2507', 'built-in catalog'),
  ('mistral', 'labs-devstral-small-2512', 'devstral-small-2507', 'built-in catalog'),
  ('mistral', 'magistral-medium-1-2-2509', 'magistral-medium-2509', 'built-in catalog'),
  ('mistral', 'magistral-medium-2506', 'magistral-medium-2509', 'built-in catalog'),
  ('mistral', 'magistral-medium-latest', 'magistral-medium-2509', 'built-in catalog'),
  ('mistral', 'magistral-small-1-2-2509', 'magistral-small-2509', 'built-in catalog'),
  ('mistral', 'magistral-small-latest', 'magistral-small-2509', 'built-in catalog'),
  ('mistral', 'ministral-8b-2512', 'ministral-3-8b-2512', 'built-in catalog'),
  ('mistral', 'ministral-8b-latest', 'ministral-3-8b-2512', 'built-in catalog'),
  ('mistral', 'mistral-large-3', 'mistral-large-2512', 'built-in catalog'),
  ('mistral', 'mistral-large-latest', 'mistral-large-2512', 'built-in catalog'),
  ('mistral', 'mistral-medium-3-1-2508', 'mistral-medium-2508', 'built-in catalog'),
  ('mistral', 'mistral-medium-3-5', 'mistral-medium-2604', 'built-in catalog'),
  ('mistral', 'mistral-medium-latest', 'mistral-medium-2604', 'built-in catalog'),
  ('mistral', 'mistral-small-latest', 'mistral-small-3-2-2506', 'built-in catalog'),
  ('mistral', 'pixtral-large-latest', 'pixtral-large-2411', 'built-in catalog'),
  ('openai', 'gpt-3.5-turbo-instruct-0914', 'gpt-3.5-turbo-instruct', 'built-in catalog'),
  ('openai', 'gpt-4-0125-preview', 'gpt-4-turbo', 'built-in catalog'),
  ('openai', 'gpt-4-1106-preview', 'gpt-4-turbo', 'built-in catalog'),
  ('openai', 'gpt-4-turbo-preview', 'gpt-4-turbo', 'built-in catalog'),
  ('openai', 'gpt-4o-mini-realtime-preview-2024-12-17', 'gpt-4o-mini-realtime-preview', 'built-in catalog'),
  ('openai', 'gpt-4o-realtime-preview-2024-12-17', 'gpt-4o-realtime-preview', 'built-in catalog'),
  ('openai', 'gpt-4o-realtime-preview-2025-06-03', 'gpt-4o-realtime-preview', 'built-in catalog'),
  ('openai', 'gpt-5-search-api-2025-10-14', 'gpt-5-search-api', 'built-in catalog'),
  ('openai', 'gpt-image-1.5-2025-12-16', 'gpt-image-1.5', 'built-in catalog'),
  ('openai', 'gpt-image-2-2026-04-21', 'gpt-image-2', 'built-in catalog'),
  ('openai', 'gpt-realtime-2025-08-28', 'gpt-realtime', 'built-in catalog'),
  ('openai', 'gpt-realtime-mini-2025-10-06', 'gpt-realtime-mini', 'built-in catalog'),
  ('openai', 'gpt-realtime-mini-2025-12-15', 'gpt-realtime-mini', 'built-in catalog'),
  ('openai', 'omni-moderation-2024-09-26', 'omni-moderation-latest', 'built-in catalog'),
  ('openai', 'text-embedding-ada-002-v2', 'text-embedding-ada-002', 'built-in catalog'),
  ('vertex', 'claude-3-5-haiku@20241022', 'claude-3-5-haiku', 'built-in catalog'),
  ('vertex', 'claude-fable-5@default', 'claude-fable-5', 'built-in catalog'),
  ('vertex', 'claude-opus-4-5@20251101', 'claude-opus-4-5', 'built-in catalog'),
  ('vertex', 'claude-opus-4-8@default', 'claude-opus-4-8', 'built-in catalog'),
  ('vertex', 'claude-opus-4@20250514', 'claude-opus-4', 'built-in catalog'),
  ('vertex', 'claude-opus-5@default', 'claude-opus-5', 'built-in catalog'),
  ('vertex', 'claude-sonnet-4@20250514', 'claude-sonnet-4', 'built-in catalog'),
  ('vertex', 'claude-sonnet-5@default', 'claude-sonnet-5', 'built-in catalog'),
  ('vertex', 'codestral-2@001', 'codestral-2', 'built-in catalog'),
  ('vertex', 'gemini-2.0-flash-lite-001', 'gemini-2.0-flash-lite', 'built-in catalog'),
  ('vertex', 'gemini-3.1-flash-lite-preview', 'gemini-3.1-flash-lite', 'built-in catalog'),
  ('vertex', 'gemini-3.1-pro-preview-customtools', 'gemini-3.1-pro-preview', 'built-in catalog'),
  ('vertex', 'mistral-medium-3@001', 'mistral-medium-3', 'built-in catalog'),
  ('xai', 'grok-2', 'grok-2-1212', 'built-in catalog'),
  ('xai', 'grok-2-latest', 'grok-2-1212', 'built-in catalog'),
  ('xai', 'grok-2-vision', 'grok-2-vision-1212', 'built-in catalog'),
  ('xai', 'grok-2-vision-latest', 'grok-2-vision-1212', 'built-in catalog'),
  ('xai', 'grok-3-beta', 'grok-3', 'built-in catalog'),
  ('xai', 'grok-3-latest', 'grok-3', 'built-in catalog'),
  ('xai', 'grok-3-mini-beta', 'grok-3-mini', 'built-in catalog'),
  ('xai', 'grok-3-mini-fast-beta', 'grok-3-mini-fast', 'built-in catalog'),
  ('xai', 'grok-3-mini-fast-latest', 'grok-3-mini-fast', 'built-in catalog'),
  ('xai', 'grok-3-mini-latest', 'grok-3-mini', 'built-in catalog'),
  ('xai', 'grok-4-0709', 'grok-4', 'built-in catalog'),
  ('xai', 'grok-4-1-fast', 'grok-4-1-fast-reasoning', 'built-in catalog'),
  ('xai', 'grok-4-1-fast-non-reasoning-latest', 'grok-4-1-fast-non-reasoning', 'built-in catalog'),
  ('xai', 'grok-4-1-fast-reasoning-latest', 'grok-4-1-fast-reasoning', 'built-in catalog'),
  ('xai', 'grok-4-latest', 'grok-4', 'built-in catalog'),
  ('xai', 'grok-4.20-beta-0309-non-reasoning', 'grok-4.20-0309-reasoning', 'built-in catalog'),
  ('xai', 'grok-4.20-beta-0309-reasoning', 'grok-4.20-0309-reasoning', 'built-in catalog'),
  ('xai', 'grok-4.3-latest', 'grok-4.3', 'built-in catalog'),
  ('xai', 'grok-4.5-latest', 'grok-4.5', 'built-in catalog'),
  ('xai', 'grok-code-fast', 'grok-code-fast-1', 'built-in catalog')
ON CONFLICT (provider, alias) DO NOTHING;

ANALYZE ai_cost_internal.price_lookup;

INSERT INTO ai_cost.reprice_runs (from_time, to_time, only_unpriced, reason, total_calls, catalog)
SELECT '-infinity', 'infinity', true, 'built-in catalog 0.2.0: price the calls left unpriced that it prices now',
       count(*), '0.2.0'
  FROM ai_cost.calls c
 WHERE c.cost_micros IS NULL;

-- Down Migration
--
-- Price rows are history: while a call is priced by a row of this catalog,
-- its rows stay and going down is refused. Otherwise the rows and aliases
-- go, and an unfinished catalog backfill is ended where it stands: without
-- the catalog column it would reprice more than the calls it was made for.

SET LOCAL check_function_bodies = off;

DO $$
DECLARE
  priced bigint;
BEGIN
  SELECT count(*) INTO priced
    FROM ai_cost.calls c JOIN ai_cost.prices p ON p.id = c.price_id
   WHERE p.catalog = '0.2.0';
  IF priced > 0 THEN
    RAISE EXCEPTION '% calls are priced by rows of the built-in catalog 0.2.0, and price rows are history: migrate down stops here, at 0.2.0', priced;
  END IF;
END
$$;

UPDATE ai_cost.reprice_runs SET finished_at = now(), updated_at = now()
 WHERE catalog IS NOT NULL AND finished_at IS NULL;

ALTER TABLE ai_cost.prices DISABLE TRIGGER tg_prices__forbid_delete;
DELETE FROM ai_cost.prices WHERE catalog = '0.2.0';
ALTER TABLE ai_cost.prices ENABLE TRIGGER tg_prices__forbid_delete;

DELETE FROM ai_cost.model_aliases a
 USING (VALUES
  ('anthropic', 'claude-4-opus-20250514'),
  ('anthropic', 'claude-4-sonnet-20250514'),
  ('cohere', 'command-r'),
  ('cohere', 'command-r-plus'),
  ('google', 'gemini-2.0-flash-001'),
  ('google', 'gemini-2.0-flash-lite-001'),
  ('google', 'gemini-3-pro-image'),
  ('google', 'gemini-3.1-flash-image'),
  ('google', 'gemini-3.1-flash-lite-preview'),
  ('google', 'gemini-3.1-pro-preview-customtools'),
  ('google', 'gemini-embedding-2-preview'),
  ('google', 'veo-3.1-fast-generate-preview'),
  ('google', 'veo-3.1-generate-preview'),
  ('mistral', 'codestral-latest'),
  ('mistral', 'devstral-latest'),
  ('mistral', 'devstral-medium-latest'),
  ('mistral', 'devstral-small-2505'),
  ('mistral', 'devstral-small-latest'),
  ('mistral', 'labs-devstral-small-2512'),
  ('mistral', 'magistral-medium-1-2-2509'),
  ('mistral', 'magistral-medium-2506'),
  ('mistral', 'magistral-medium-latest'),
  ('mistral', 'magistral-small-1-2-2509'),
  ('mistral', 'magistral-small-latest'),
  ('mistral', 'ministral-8b-2512'),
  ('mistral', 'ministral-8b-latest'),
  ('mistral', 'mistral-large-3'),
  ('mistral', 'mistral-large-latest'),
  ('mistral', 'mistral-medium-3-1-2508'),
  ('mistral', 'mistral-medium-3-5'),
  ('mistral', 'mistral-medium-latest'),
  ('mistral', 'mistral-small-latest'),
  ('mistral', 'pixtral-large-latest'),
  ('openai', 'gpt-3.5-turbo-instruct-0914'),
  ('openai', 'gpt-4-0125-preview'),
  ('openai', 'gpt-4-1106-preview'),
  ('openai', 'gpt-4-turbo-preview'),
  ('openai', 'gpt-4o-mini-realtime-preview-2024-12-17'),
  ('openai', 'gpt-4o-realtime-preview-2024-12-17'),
  ('openai', 'gpt-4o-realtime-preview-2025-06-03'),
  ('openai', 'gpt-5-search-api-2025-10-14'),
  ('openai', 'gpt-image-1.5-2025-12-16'),
  ('openai', 'gpt-image-2-2026-04-21'),
  ('openai', 'gpt-realtime-2025-08-28'),
  ('openai', 'gpt-realtime-mini-2025-10-06'),
  ('openai', 'gpt-realtime-mini-2025-12-15'),
  ('openai', 'omni-moderation-2024-09-26'),
  ('openai', 'text-embedding-ada-002-v2'),
  ('vertex', 'claude-3-5-haiku@20241022'),
  ('vertex', 'claude-fable-5@default'),
  ('vertex', 'claude-opus-4-5@20251101'),
  ('vertex', 'claude-opus-4-8@default'),
  ('vertex', 'claude-opus-4@20250514'),
  ('vertex', 'claude-opus-5@default'),
  ('vertex', 'claude-sonnet-4@20250514'),
  ('vertex', 'claude-sonnet-5@default'),
  ('vertex', 'codestral-2@001'),
  ('vertex', 'gemini-2.0-flash-lite-001'),
  ('vertex', 'gemini-3.1-flash-lite-preview'),
  ('vertex', 'gemini-3.1-pro-preview-customtools'),
  ('vertex', 'mistral-medium-3@001'),
  ('xai', 'grok-2'),
  ('xai', 'grok-2-latest'),
  ('xai', 'grok-2-vision'),
  ('xai', 'grok-2-vision-latest'),
  ('xai', 'grok-3-beta'),
  ('xai', 'grok-3-latest'),
  ('xai', 'grok-3-mini-beta'),
  ('xai', 'grok-3-mini-fast-beta'),
  ('xai', 'grok-3-mini-fast-latest'),
  ('xai', 'grok-3-mini-latest'),
  ('xai', 'grok-4-0709'),
  ('xai', 'grok-4-1-fast'),
  ('xai', 'grok-4-1-fast-non-reasoning-latest'),
  ('xai', 'grok-4-1-fast-reasoning-latest'),
  ('xai', 'grok-4-latest'),
  ('xai', 'grok-4.20-beta-0309-non-reasoning'),
  ('xai', 'grok-4.20-beta-0309-reasoning'),
  ('xai', 'grok-4.3-latest'),
  ('xai', 'grok-4.5-latest'),
  ('xai', 'grok-code-fast')
 ) AS added (provider, alias)
 WHERE a.provider = added.provider AND a.alias = added.alias AND a.note = 'built-in catalog';

ALTER TABLE ai_cost.reprice_runs DROP COLUMN catalog;

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
