import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

// What each role may execute in ai_cost and ai_cost_internal: exactly what its
// documented job needs (docs/security.md). A function added to the package is
// executable by nobody until it is granted here and in sql/150_roles.sql.
const TRIGGER_PRICING = [
  'ai_cost_internal.billing_of(text,text,text,bigint,text,timestamp with time zone,bigint,bigint,bigint)',
  'ai_cost_internal.bills_calls()',
  'ai_cost_internal.book_cost_of_call(bigint[],timestamp with time zone[],integer,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint)',
  'ai_cost_internal.book_cost_of_plain_call(bigint[],timestamp with time zone[],integer,timestamp with time zone,bigint,bigint,bigint,bigint)',
  'ai_cost_internal.book_discount_id(bigint[],integer)',
  'ai_cost_internal.charge(bigint,text,bigint,bigint,numeric,numeric,numeric)',
  'ai_cost_internal.cost_of(ai_cost.calls)',
  'ai_cost_internal.explain_billing(text,text,text,bigint,text,timestamp with time zone,bigint,bigint,bigint)',
  'ai_cost_internal.in_daily_window(timestamp with time zone,time without time zone,time without time zone,text)',
  'ai_cost_internal.markup_book()',
  'ai_cost_internal.markup_book_window()',
  'ai_cost_internal.no_price_reason(text,text,text,timestamp with time zone)',
  'ai_cost_internal.pattern_model(text,text)',
  'ai_cost_internal.price_book_has_tenant(text)',
  'ai_cost_internal.price_book_ids()',
  'ai_cost_internal.price_book_plain_rates()',
  'ai_cost_internal.price_book_rates()',
  'ai_cost_internal.price_book_slot(text)',
  'ai_cost_internal.price_book_windows()',
  'ai_cost_internal.price_call_slowly(ai_cost.calls)',
  'ai_cost_internal.priced(text,text,text,text,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,numeric,text,jsonb)',
];
const EXPLAIN_HYPOTHETICAL = 'ai_cost.explain_cost(text,text,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,bigint,bigint,numeric,text,text,text,bigint,bigint,bigint,bigint,bigint,jsonb)';
const HISTOGRAMS = [
  'ai_cost.histogram_merge(bigint[])',
  'ai_cost.histogram_percentile(bigint[],double precision)',
  'ai_cost.latency_bucket_value(integer)',
];
const READER = [
  ...HISTOGRAMS,
  'ai_cost.calls_between(timestamp with time zone,timestamp with time zone)',
  'ai_cost.cost_micros(ai_cost.prices,bigint,bigint,bigint,bigint)',
  'ai_cost.latency_bucket(integer)',
  'ai_cost.price_at(text,text,timestamp with time zone)',
  'ai_cost_internal.day_reading(timestamp with time zone,timestamp with time zone,timestamp with time zone[])',
  'ai_cost_internal.dimension_slices(timestamp with time zone,timestamp with time zone[],text[])',
  'ai_cost_internal.calls_are_distributed()',
  'ai_cost_internal.calls_hourly_pending_between(timestamp with time zone,timestamp with time zone)',
  'ai_cost_internal.cluster_function_settings()',
  'ai_cost_internal.dimension_values(text,text,text,text,text,text,text)',
  'ai_cost_internal.histogram(integer,integer)',
  'ai_cost_internal.partition_footprints()',
  'ai_cost_internal.reference_tables()',
  'ai_cost_internal.shard_changes()',
  'ai_cost_internal.shard_changes_kept()',
  'ai_cost_internal.split_days(timestamp with time zone,timestamp with time zone[])',
  'ai_cost_internal.unfolded_calls()',
  'ai_cost_internal.user_slices(timestamp with time zone,timestamp with time zone[])',
];
// The calls' policies on a ledger distributed over Citus call these as whoever reads the calls.
const CALLS_POLICIES = ['ai_cost_internal.is_tenant_reader()', 'ai_cost_internal.may_read_tenant(text)'];
const ALLOWED: Record<string, string[]> = {
  public: [],
  ai_cost_tenant_reader: [...HISTOGRAMS, ...CALLS_POLICIES],
  ai_cost_reader: [...READER, ...CALLS_POLICIES],
  ai_cost_writer: [
    ...CALLS_POLICIES,
    ...TRIGGER_PRICING,
    EXPLAIN_HYPOTHETICAL,
    'ai_cost.insert_calls(jsonb)',
    'ai_cost.price_at(text,text,timestamp with time zone)',
  ],
  ai_cost_admin: [
    ...READER,
    ...CALLS_POLICIES,
    ...TRIGGER_PRICING,
    EXPLAIN_HYPOTHETICAL,
    'ai_cost.backfill_unpriced(text)',
    'ai_cost.explain_cost(bigint)',
    'ai_cost.reprice(timestamp with time zone,timestamp with time zone,text,text,text,boolean,integer)',
    'ai_cost.reprice_batch(bigint,integer)',
    'ai_cost.reprice_preview(timestamp with time zone,timestamp with time zone,text,text,boolean)',
    'ai_cost.resume_reprice(bigint,integer)',
    'ai_cost.start_reprice(timestamp with time zone,timestamp with time zone,text,text,text,boolean)',
    'ai_cost_internal.compile_price_book()',
    'ai_cost_internal.price_book_entries()',
    'ai_cost_internal.rebuild_price_lookup()',
    'ai_cost_internal.reprice_preview_rows(timestamp with time zone,timestamp with time zone,text,text,boolean)',
    'ai_cost_internal.call_writers()',
    'ai_cost_internal.calls_are_distributed()',
    'ai_cost_internal.wait_for_call_writers()',
  ],
};

for (const [role, allowed] of Object.entries(ALLOWED)) {
  test.serial(`${role} may execute exactly the functions of its job`, async (t) => {
    const rows = await db.query<{ fn: string }>(`
      SELECT p.oid::regprocedure::text AS fn
        FROM pg_proc p
       WHERE p.pronamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace)
         AND CASE WHEN $1 = 'public' THEN has_function_privilege('public', p.oid, 'EXECUTE')
                  ELSE has_function_privilege($1::regrole, p.oid, 'EXECUTE') END
       ORDER BY 1`, [role]);
    t.deepEqual(rows.map((r) => r.fn), [...new Set(allowed)].sort());
  });
}

test.serial('a function created by a later upgrade is not executable by PUBLIC once migrate up has run', async (t) => {
  await db.query(`CREATE FUNCTION ai_cost.added_later() RETURNS int LANGUAGE sql RETURN 1`);
  t.teardown(() => db.query('DROP FUNCTION ai_cost.added_later()').then(() => undefined));
  t.true((await db.query<{ ok: boolean }>(`SELECT has_function_privilege('public', 'ai_cost.added_later()', 'EXECUTE') AS ok`))[0]!.ok);
  await db.query('SELECT ai_cost_internal.grant_roles()');
  t.false((await db.query<{ ok: boolean }>(`SELECT has_function_privilege('public', 'ai_cost.added_later()', 'EXECUTE') AS ok`))[0]!.ok);
});
