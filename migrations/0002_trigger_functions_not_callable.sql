-- Up Migration
--
-- Trigger functions and the price book compiler are no longer callable by
-- PUBLIC (sql/150_roles.sql). A trigger function runs when its trigger
-- fires, whoever fires it, so nobody needs EXECUTE on it. The compiler is
-- SECURITY DEFINER and locks the price lookup: any login could run it and,
-- by holding its transaction open, make a price change wait. Only
-- ai_cost_admin, whose price changes recompile the book, keeps it.

REVOKE EXECUTE ON FUNCTION
  ai_cost_internal.close_previous_price(), ai_cost_internal.forbid_price_delete(),
  ai_cost_internal.price_sources_changed(), ai_cost_internal.price_call(),
  ai_cost_internal.capture_call_changes(), ai_cost_internal.truncate_rollups(),
  ai_cost_internal.claim_request_id(), ai_cost_internal.move_request_id(),
  ai_cost_internal.end_request_id_move(), ai_cost_internal.release_request_ids(),
  ai_cost_internal.maintain_partitions_when_due(), ai_cost_internal.compile_price_book()
  FROM PUBLIC;

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT EXECUTE ON FUNCTION ai_cost_internal.compile_price_book() TO ai_cost_admin;
  END IF;
END
$$;

-- Down Migration

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    REVOKE EXECUTE ON FUNCTION ai_cost_internal.compile_price_book() FROM ai_cost_admin;
  END IF;
END
$$;

GRANT EXECUTE ON FUNCTION
  ai_cost_internal.close_previous_price(), ai_cost_internal.forbid_price_delete(),
  ai_cost_internal.price_sources_changed(), ai_cost_internal.price_call(),
  ai_cost_internal.capture_call_changes(), ai_cost_internal.truncate_rollups(),
  ai_cost_internal.claim_request_id(), ai_cost_internal.move_request_id(),
  ai_cost_internal.end_request_id_move(), ai_cost_internal.release_request_ids(),
  ai_cost_internal.maintain_partitions_when_due(), ai_cost_internal.compile_price_book()
  TO PUBLIC;
