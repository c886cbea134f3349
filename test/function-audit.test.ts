import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

// Every function of pg-ai-cost (in ai_cost and ai_cost_internal) runs with
// the caller's rights and a pinned search_path, except these, each for a
// reason also written above its definition in sql/.
// A new exception must be added here on purpose, with its reason.
const EXCEPTIONS: Record<string, string> = {
  'ai_cost_internal.priced': 'SQL function without SET so the planner can inline it',
  'ai_cost.reprice': 'procedure that COMMITs between batches, which a SET clause forbids',
  'ai_cost.resume_reprice': 'procedure that COMMITs between batches, which a SET clause forbids',
  'ai_cost_internal.price_call': 'the cost trigger: a pinned search_path costs ~5 us per row before PG 17',
  'ai_cost_internal.capture_call_changes': 'SECURITY DEFINER so writers need no rights on the change table',
  'ai_cost_internal.truncate_rollups': 'SECURITY DEFINER so a TRUNCATE by a non-owner also empties the rollups',
  'ai_cost.latency_bucket': 'inlinable SQL expression: a SET clause prevents inlining and costs ~5 us a row',
  'ai_cost_internal.histogram_trim': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17',
  'ai_cost_internal.histogram_add': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17',
  'ai_cost_internal.histogram_apply': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17',
  'ai_cost_internal.histogram_accumulate': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17',
  'ai_cost_internal.histogram_step': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17',
  'ai_cost_internal.claim_request_id': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.move_request_id': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.release_request_ids': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.compile_price_book': 'SECURITY DEFINER: replaces the price book functions, which needs their owner, for whoever changes prices',
  'ai_cost_internal.price_book_slot': 'generated constant the cost trigger inlines: a SET clause prevents inlining',
  'ai_cost_internal.price_book_rates': 'generated constant the cost trigger inlines: a SET clause prevents inlining',
  'ai_cost_internal.price_book_windows': 'generated constant the cost trigger inlines: a SET clause prevents inlining',
  'ai_cost_internal.price_book_has_tenant': 'generated constant the cost trigger inlines: a SET clause prevents inlining',
  'ai_cost.insert_calls': 'SECURITY DEFINER: prices a batch in its own statement, which the cost trigger trusts only from its owner',
  'ai_cost_internal.dimension_values': 'inlinable SQL unpivot used by refresh and a view: a SET clause prevents inlining',
};

test('every function is SECURITY INVOKER with a pinned search_path, or a listed exception', async (t) => {
  const rows = await db.query<{ name: string; secdef: boolean; pinned: boolean }>(`
    SELECT p.pronamespace::regnamespace::text || '.' || p.proname AS name, p.prosecdef AS secdef,
           coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false) AS pinned
      FROM pg_proc p
     WHERE p.pronamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace) AND p.prokind IN ('f', 'p')`);
  t.true(rows.length > 30);
  const unexplained = rows.filter((r) => (r.secdef || !r.pinned) && !(r.name in EXCEPTIONS)).map((r) => r.name);
  t.deepEqual(unexplained, []);
  const definers = rows.filter((r) => r.secdef);
  t.true(definers.every((r) => r.pinned), 'a SECURITY DEFINER function must pin its search_path');
});
