-- Repricing: changing the stored cost of history, on purpose and audited.
--
-- A price change applies from its valid_from on; calls already recorded keep
-- the cost they were priced at. To apply a corrected price to the past, a
-- reprice run recomputes the cost of the calls in a time range (optionally
-- one provider or model, or only the unpriced ones) in committed batches of
-- id order, so it never holds long locks, can be interrupted and resumed, and
-- changes each call once. Every changed call gets a row in reprice_audit with
-- its old and new cost; reprice_preview shows the delta without writing.
-- backfill_unpriced prices the calls that had no price when they arrived. A
-- built-in catalog update registers a run of its own (catalog set), which
-- changes only the unpriced calls that the catalog's rows and aliases price
-- now; ai-cost migrate carries it out in batches once the update is committed.

CREATE TABLE ai_cost.reprice_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  from_time timestamptz NOT NULL,
  to_time timestamptz NOT NULL,
  provider text,
  model text,
  only_unpriced boolean NOT NULL DEFAULT false,
  reason text NOT NULL,
  total_calls bigint NOT NULL,
  -- Keyset cursor: the last (created_at, id) done.
  cursor_created_at timestamptz,
  cursor_id bigint,
  calls_done bigint NOT NULL DEFAULT 0,
  calls_changed bigint NOT NULL DEFAULT 0,
  delta_micros numeric NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  catalog text,
  CONSTRAINT "reprice window must end after it starts" CHECK (to_time > from_time),
  CONSTRAINT "reprice reason must not be empty" CHECK (reason <> '')
);
COMMENT ON TABLE ai_cost.reprice_runs IS 'One row per repricing run: its window and filter, a cursor so an interrupted run resumes where it stopped, and its progress.';
COMMENT ON COLUMN ai_cost.reprice_runs.from_time IS 'Calls with created_at >= from_time ...';
COMMENT ON COLUMN ai_cost.reprice_runs.to_time IS '... and created_at < to_time are repriced.';
COMMENT ON COLUMN ai_cost.reprice_runs.provider IS 'Only calls of this provider (NULL: all).';
COMMENT ON COLUMN ai_cost.reprice_runs.model IS 'Only calls of this model (NULL: all).';
COMMENT ON COLUMN ai_cost.reprice_runs.only_unpriced IS 'Backfill: only calls still unpriced; priced history is left alone.';
COMMENT ON COLUMN ai_cost.reprice_runs.reason IS 'Why the run was made; copied to every audit row.';
COMMENT ON COLUMN ai_cost.reprice_runs.total_calls IS 'Calls in the window when the run started (for progress).';
COMMENT ON COLUMN ai_cost.reprice_runs.cursor_created_at IS 'created_at of the last call processed.';
COMMENT ON COLUMN ai_cost.reprice_runs.cursor_id IS 'id of the last call processed.';
COMMENT ON COLUMN ai_cost.reprice_runs.calls_done IS 'Calls examined so far.';
COMMENT ON COLUMN ai_cost.reprice_runs.calls_changed IS 'Calls whose cost, price, reason or charge changed.';
COMMENT ON COLUMN ai_cost.reprice_runs.delta_micros IS 'Sum of new minus old cost over changed calls priced both before and after.';
COMMENT ON COLUMN ai_cost.reprice_runs.finished_at IS 'When the last batch ran; NULL while the run is unfinished.';
COMMENT ON COLUMN ai_cost.reprice_runs.id IS 'Run id; ai_cost.reprice_audit.run_id names it.';
COMMENT ON COLUMN ai_cost.reprice_runs.started_at IS 'When the run was started.';
COMMENT ON COLUMN ai_cost.reprice_runs.updated_at IS 'When the run last processed a batch.';
COMMENT ON COLUMN ai_cost.reprice_runs.catalog IS 'The release whose built-in catalog update registered this backfill, e.g. 0.2.0: the run changes only the calls that a built-in catalog row (ai_cost.prices.catalog set) now prices, directly or through an alias or pattern, and leaves alone those only a price of your own would price. ai-cost migrate carries it out once the update is committed. NULL: a run that changes every call whose cost changes.';

CREATE TABLE ai_cost.reprice_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES ai_cost.reprice_runs (id),
  call_id bigint NOT NULL,
  old_cost_micros bigint,
  new_cost_micros bigint,
  old_price_id bigint,
  new_price_id bigint,
  old_unpriced_reason text,
  new_unpriced_reason text,
  changed_at timestamptz NOT NULL DEFAULT now(),
  reason text NOT NULL,
  old_billed_micros bigint,
  new_billed_micros bigint
);
COMMENT ON TABLE ai_cost.reprice_audit IS 'Every change a reprice or backfill made to a call: old and new cost, price row, unpriced reason and charge, when and why.';
COMMENT ON COLUMN ai_cost.reprice_audit.run_id IS 'The ai_cost.reprice_runs row that made the change.';
COMMENT ON COLUMN ai_cost.reprice_audit.call_id IS 'The ai_cost.calls row changed.';
COMMENT ON COLUMN ai_cost.reprice_audit.reason IS 'The run''s reason.';
COMMENT ON COLUMN ai_cost.reprice_audit.id IS 'Audit row id.';
COMMENT ON COLUMN ai_cost.reprice_audit.old_cost_micros IS 'The call''s cost_micros before, in micro-dollars (1 = $0.000001); NULL: it was unpriced.';
COMMENT ON COLUMN ai_cost.reprice_audit.new_cost_micros IS 'The call''s cost_micros after, in micro-dollars (1 = $0.000001); NULL: it is unpriced.';
COMMENT ON COLUMN ai_cost.reprice_audit.old_price_id IS 'The ai_cost.prices row that priced the call before (NULL: none).';
COMMENT ON COLUMN ai_cost.reprice_audit.new_price_id IS 'The ai_cost.prices row that prices it after (NULL: none).';
COMMENT ON COLUMN ai_cost.reprice_audit.old_unpriced_reason IS 'Why the call had no cost before; NULL when it was priced.';
COMMENT ON COLUMN ai_cost.reprice_audit.new_unpriced_reason IS 'Why the call has no cost after; NULL when it is priced.';
COMMENT ON COLUMN ai_cost.reprice_audit.changed_at IS 'When the change was made.';
COMMENT ON COLUMN ai_cost.reprice_audit.old_billed_micros IS 'What the call was charged to its tenant before (ai_cost.calls.billed_micros), in micro-dollars; NULL: not billed.';
COMMENT ON COLUMN ai_cost.reprice_audit.new_billed_micros IS 'What the call is charged after, in micro-dollars; NULL: not billed.';

CREATE INDEX reprice_audit_call_idx ON ai_cost.reprice_audit (call_id);

CREATE INDEX reprice_audit_run_idx ON ai_cost.reprice_audit (run_id);

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
COMMENT ON FUNCTION ai_cost_internal.wait_for_call_writers() IS 'Internal: waits until the transactions writing to ai_cost.calls at the time of the call have ended, so a reprice sees every call they wrote.';

-- Starts a repricing run over calls with from_time <= created_at < to_time
-- (optionally one provider/model, optionally only unpriced calls) and
-- returns its id; ai_cost.reprice_batch then does the work. It first waits
-- for transactions still writing calls (see wait_for_call_writers above).
CREATE FUNCTION ai_cost.start_reprice(
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
COMMENT ON FUNCTION ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean) IS 'Starts a repricing run over a created_at window (optionally one provider/model, optionally only unpriced calls) and returns its id; run it with ai_cost.reprice_batch or CALL ai_cost.resume_reprice.';

-- One batch of a run: the next batch_size calls in (created_at, id) order,
-- re-costed with ai_cost_internal.cost_of and re-billed with the markups now
-- in force (ai_cost_internal.billing_of); only calls whose cost, price,
-- reason or charge changed are updated (the cost and billing triggers
-- recompute the same values) and audited, and in a catalog backfill only those a built-in catalog row
-- now prices. Returns the calls examined; 0 when the run is finished.
-- Each call is its own short transaction when made from a client or from
-- ai_cost.resume_reprice, so no lock is held over more than one batch.
CREATE FUNCTION ai_cost.reprice_batch(run_id bigint, batch_size integer DEFAULT 5000) RETURNS integer
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

  -- On a ledger distributed over Citus the batch cannot be read FOR UPDATE
  -- (Citus locks rows of one shard only), and the update joins the calls on
  -- their distribution column. The cost and billing triggers recompute what
  -- the update writes from the row it updates, so a change made meanwhile
  -- is never overwritten with a stale cost; only the audit's old values may
  -- then be older than the row.
  EXECUTE format($batch$
  WITH batch AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= $2 AND c.created_at < $3
       AND ($5 IS NULL OR (c.created_at, c.id) > ($4, $5))
       AND ($6 IS NULL OR c.provider = $6)
       AND ($7 IS NULL OR c.model = $7)
       AND (NOT $8 OR c.cost_micros IS NULL)
     ORDER BY c.created_at, c.id
     LIMIT $9
     %s
  ),
  repriced AS (
    SELECT b.id, b.tenant_id, b.created_at, b.cost_micros AS old_cost, b.price_id AS old_price,
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
     WHERE %s
       AND (r.cost_micros IS DISTINCT FROM r.old_cost OR r.price_id IS DISTINCT FROM r.old_price
            OR r.discount_id IS DISTINCT FROM r.old_discount OR r.unpriced_reason IS DISTINCT FROM r.old_reason
            OR r.billed_micros IS DISTINCT FROM r.old_billed OR r.markup_id IS DISTINCT FROM r.old_markup)
       AND ($10 IS NULL
            OR EXISTS (SELECT FROM ai_cost.prices p WHERE p.id = r.price_id AND p.catalog IS NOT NULL))
    RETURNING c.id, c.cost_micros, c.price_id, c.unpriced_reason, c.billed_micros
  ),
  audited AS (
    INSERT INTO ai_cost.reprice_audit (run_id, call_id, old_cost_micros, new_cost_micros, old_price_id, new_price_id,
                                       old_unpriced_reason, new_unpriced_reason, reason, old_billed_micros, new_billed_micros)
    SELECT $1, u.id, r.old_cost, u.cost_micros, r.old_price, u.price_id, r.old_reason, u.unpriced_reason, $11,
           r.old_billed, u.billed_micros
      FROM updated u JOIN repriced r USING (id)
    RETURNING new_cost_micros - old_cost_micros AS delta
  )
  SELECT (SELECT count(*) FROM repriced),
         (SELECT count(*) FROM audited),
         (SELECT coalesce(sum(a.delta), 0) FROM audited a),
         last_row.created_at, last_row.id
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (SELECT r.created_at, r.id FROM repriced r ORDER BY r.created_at DESC, r.id DESC LIMIT 1) last_row ON true
  $batch$,
    CASE WHEN ai_cost_internal.calls_are_distributed() THEN '' ELSE 'FOR UPDATE' END,
    CASE WHEN ai_cost_internal.calls_are_distributed() THEN 'c.tenant_id = r.tenant_id AND c.id = r.id' ELSE 'c.id = r.id' END)
    INTO examined, changed, delta, last_created_at, last_id
    USING run.id, run.from_time, run.to_time, run.cursor_created_at, run.cursor_id, run.provider, run.model,
          run.only_unpriced, batch_size, run.catalog, run.reason;

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

-- Runs a reprice to the end from SQL, committing after every batch so locks
-- are short and an interruption loses at most one batch: CALL it outside a
-- transaction block; CALL it again with the same run id to resume. (A
-- procedure with a SET clause cannot COMMIT, so this one and ai_cost.reprice
-- do not pin search_path; every function and operator in them is named by
-- its schema, and the work is done by pinned functions.)
CREATE PROCEDURE ai_cost.resume_reprice(run_id bigint, batch_size integer DEFAULT 5000)
LANGUAGE plpgsql AS $$
BEGIN
  WHILE ai_cost.reprice_batch(run_id, batch_size) OPERATOR(pg_catalog.=) batch_size LOOP
    COMMIT;
  END LOOP;
  COMMIT;
END
$$;
COMMENT ON PROCEDURE ai_cost.resume_reprice(bigint, integer) IS 'Runs (or resumes) reprice run run_id to the end, committing after each batch. CALL outside a transaction block.';

-- The one-statement SQL entry point the issue names: start a run and do it.
CREATE PROCEDURE ai_cost.reprice(
  from_time timestamptz, to_time timestamptz, reason text,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false,
  batch_size integer DEFAULT 5000
)
LANGUAGE plpgsql AS $$
DECLARE
  run_id bigint := ai_cost.start_reprice(from_time, to_time, reason, provider, model, only_unpriced);
BEGIN
  COMMIT;
  CALL ai_cost.resume_reprice(run_id, batch_size);
END
$$;
COMMENT ON PROCEDURE ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer) IS 'Recomputes the cost of calls created in [from_time, to_time) in committed batches with an audit trail (ai_cost.reprice_audit). CALL outside a transaction block; if interrupted, CALL ai_cost.resume_reprice(<run id>) continues.';

-- What a reprice would change, per model, without writing anything (read
-- through ai_cost.reprice_preview below). PL/pgSQL, since Citus cannot plan
-- the parameters of a SQL function over a distributed table; its own
-- parameter names, since PL/pgSQL allows none named as a result column.
CREATE FUNCTION ai_cost_internal.reprice_preview_rows(
  from_time timestamptz, to_time timestamptz, only_provider text, only_model text, only_unpriced boolean
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint, old_unpriced_calls bigint, new_unpriced_calls bigint,
                 rebilled bigint, billed_delta_micros numeric, newly_billed bigint, newly_billed_micros numeric,
                 no_longer_billed bigint, no_longer_billed_micros numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- On a ledger distributed over Citus the window's calls are collected on
  -- the coordinator first (the LIMIT makes Citus do so) and priced there, as
  -- a reprice batch is; on one server the window is read in place.
  RETURN QUERY EXECUTE format($preview$
  WITH window_calls AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= $1 AND c.created_at < $2
       AND ($3 IS NULL OR c.provider = $3)
       AND ($4 IS NULL OR c.model = $4)
       AND (NOT $5 OR c.cost_micros IS NULL)
     %s
  )
  SELECT c.provider, c.model, count(*),
         -- What ai_cost.reprice_batch updates: a change of cost, price row,
         -- discount, reason or charge.
         count(*) FILTER (WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id
                             OR n.discount_id IS DISTINCT FROM c.discount_id
                             OR n.unpriced_reason IS DISTINCT FROM c.unpriced_reason
                             OR b.billed_micros IS DISTINCT FROM c.billed_micros OR b.markup_id IS DISTINCT FROM c.markup_id),
         sum(c.cost_micros), sum(n.cost_micros),
         coalesce(sum(n.cost_micros - c.cost_micros), 0),
         count(*) FILTER (WHERE c.cost_micros IS NULL AND n.cost_micros IS NOT NULL),
         count(*) FILTER (WHERE c.cost_micros IS NOT NULL AND n.cost_micros IS NULL),
         count(*) FILTER (WHERE c.cost_micros IS NULL), count(*) FILTER (WHERE n.cost_micros IS NULL),
         count(*) FILTER (WHERE b.billed_micros <> c.billed_micros),
         coalesce(sum(b.billed_micros - c.billed_micros), 0),
         count(*) FILTER (WHERE c.billed_micros IS NULL AND b.billed_micros IS NOT NULL),
         coalesce(sum(b.billed_micros) FILTER (WHERE c.billed_micros IS NULL), 0),
         count(*) FILTER (WHERE c.billed_micros IS NOT NULL AND b.billed_micros IS NULL),
         coalesce(sum(c.billed_micros) FILTER (WHERE b.billed_micros IS NULL), 0)
    FROM window_calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
    LEFT JOIN LATERAL ai_cost_internal.billing_of(c.tenant_id, c.provider, c.model, n.price_id, c.status, c.created_at,
                                                  n.cost_micros, c.input_tokens, c.output_tokens) b ON true
   GROUP BY c.provider, c.model
   ORDER BY c.provider, c.model
  $preview$, CASE WHEN ai_cost_internal.calls_are_distributed() THEN 'LIMIT 9223372036854775807' ELSE '' END)
  USING from_time, to_time, only_provider, only_model, only_unpriced;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.reprice_preview_rows(timestamptz, timestamptz, text, text, boolean) IS 'Internal: the rows of ai_cost.reprice_preview().';

CREATE FUNCTION ai_cost.reprice_preview(
  from_time timestamptz, to_time timestamptz,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint, old_unpriced_calls bigint, new_unpriced_calls bigint,
                 rebilled bigint, billed_delta_micros numeric, newly_billed bigint, newly_billed_micros numeric,
                 no_longer_billed bigint, no_longer_billed_micros numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM ai_cost_internal.reprice_preview_rows(from_time, to_time, provider, model, only_unpriced)
$$;
COMMENT ON FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean) IS 'Dry run of a reprice: per provider/model, calls examined and changed (cost, price row, discount, reason or charge, as a reprice updates them); old and new cost, each the sum over the calls priced then (NULL when none is), with the unpriced calls counted beside them; delta over the calls priced both before and after; calls newly priced and newly unpriced; and the charges to tenants (billed_micros): calls re-billed with the delta, newly billed with what they would be charged, no longer billed with what they were. Writes nothing.';

-- Backfill after new prices arrive: every still-unpriced call, in one
-- statement with an audit trail. On a large ledger run
-- `ai-cost reprice --unpriced` instead, which commits batch by batch.
CREATE FUNCTION ai_cost.backfill_unpriced(reason text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run_id bigint := ai_cost.start_reprice('-infinity', 'infinity', reason, only_unpriced => true);
  run ai_cost.reprice_runs;
BEGIN
  PERFORM ai_cost.reprice_batch(run_id, 2147483647);
  SELECT * INTO run FROM ai_cost.reprice_runs r WHERE r.id = run_id;
  RETURN run.calls_changed;
END
$$;
COMMENT ON FUNCTION ai_cost.backfill_unpriced(text) IS 'Prices every unpriced call that the current prices can price, auditing each change; returns how many changed. One transaction: for millions of unpriced calls prefer CALL ai_cost.reprice(..., only_unpriced => true).';

