-- The two schemas of pg-ai-cost, and the one extension it needs.
--
-- ai_cost holds what users and BI tools read and call: the ledger, prices,
-- views, budgets and the functions of the API. ai_cost_internal holds the
-- machinery behind them (the price lookup and compiled book, the change
-- capture, the narrow rollups, the refresh state, the migrations table), so
-- that a BI login listing ai_cost sees only what it may read. Roles get no
-- rights on internal tables: views and SECURITY DEFINER functions read and
-- write them for the roles (150_roles.sql).
--
-- Every object is schema-qualified and every function pins its search_path
-- or names each operator and function by its schema, so nothing here depends
-- on the installing session's settings or on what a user puts on their path.

CREATE SCHEMA ai_cost;
COMMENT ON SCHEMA ai_cost IS 'pg-ai-cost: a ledger of AI/LLM API calls priced in integer micro-dollars (1 = $0.000001).';

CREATE SCHEMA ai_cost_internal;
COMMENT ON SCHEMA ai_cost_internal IS 'pg-ai-cost internals: price lookup, compiled price book, change capture, rollups behind the ai_cost views. Not an API: read ai_cost instead.';

-- btree_gist lets one exclusion constraint say "no two prices for the same
-- model overlap in time". It is a trusted extension (PostgreSQL 13+), so the
-- database owner can create it without superuser, as on RDS, Cloud SQL,
-- Supabase and Neon. It goes where extensions usually live, schema public
-- (the install runs with search_path pg_catalog, which would otherwise take
-- it), and is left in place on uninstall: other schemas may use it. Where it
-- is already, no statement is sent: on a Citus coordinator even CREATE
-- EXTENSION IF NOT EXISTS goes to every worker, and one that joined the
-- cluster later got the extension from Citus as a superuser, which an owner
-- that is none may not touch.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'btree_gist') THEN
    CREATE EXTENSION btree_gist SCHEMA public;
  END IF;
END
$$;
