import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

// Every ai_cost function runs with the caller's rights and a pinned
// search_path, except these, each for a reason written where it is defined.
// A new exception must be added here on purpose, with its reason.
const EXCEPTIONS: Record<string, string> = {
  '_private_priced': 'SQL function without SET so the planner can inline it (0002)',
  'reprice': 'procedure that COMMITs between batches, which a SET clause forbids (0002)',
  'resume_reprice': 'procedure that COMMITs between batches, which a SET clause forbids (0002)',
  '_private_price_call': 'the cost trigger: a pinned search_path costs ~5 us per row before PG 17 (0005)',
  '_private_capture_call_changes': 'SECURITY DEFINER so writers need no rights on the change table (0004)',
  '_private_truncate_rollups': 'SECURITY DEFINER so a TRUNCATE by a non-owner also empties the rollups (0004)',
  'latency_bucket': 'inlinable SQL expression: a SET clause prevents inlining and costs ~5 us a row (0006)',
  '_private_histogram_trim': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17 (0006)',
  '_private_histogram_add': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17 (0006)',
  '_private_histogram_apply': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17 (0006)',
  '_private_histogram_accumulate': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17 (0006)',
  '_private_histogram_step': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17 (0006)',
  '_private_claim_request_id': 'SECURITY DEFINER so writers need no rights on the request id table (0007)',
  '_private_move_request_id': 'SECURITY DEFINER so writers need no rights on the request id table (0007)',
  '_private_release_request_ids': 'SECURITY DEFINER so writers need no rights on the request id table (0007)',
  '_private_compile_price_book': 'SECURITY DEFINER: replaces the price book functions, which needs their owner, for whoever changes prices (0010)',
  '_private_price_book_slot': 'generated constant the cost trigger inlines: a SET clause prevents inlining (0010)',
  '_private_price_book_rates': 'generated constant the cost trigger inlines: a SET clause prevents inlining (0010)',
  '_private_price_book_windows': 'generated constant the cost trigger inlines: a SET clause prevents inlining (0010)',
  '_private_price_book_has_tenant': 'generated constant the cost trigger inlines: a SET clause prevents inlining (0010)',
  'insert_calls': 'SECURITY DEFINER: prices a batch in its own statement, which the cost trigger trusts only from its owner (0012)',
  '_private_dimension_values': 'inlinable SQL unpivot used by refresh and a view: a SET clause prevents inlining (0011)',
};

test('every function is SECURITY INVOKER with a pinned search_path, or a listed exception', async (t) => {
  const rows = await db.query<{ name: string; secdef: boolean; pinned: boolean }>(`
    SELECT p.proname AS name, p.prosecdef AS secdef,
           coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false) AS pinned
      FROM pg_proc p
     WHERE p.pronamespace = 'ai_cost'::regnamespace AND p.prokind IN ('f', 'p')`);
  t.true(rows.length > 30);
  const unexplained = rows.filter((r) => (r.secdef || !r.pinned) && !(r.name in EXCEPTIONS)).map((r) => r.name);
  t.deepEqual(unexplained, []);
  const definers = rows.filter((r) => r.secdef);
  t.true(definers.every((r) => r.pinned), 'a SECURITY DEFINER function must pin its search_path');
});
