import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

// Every function of pg-ai-cost (in ai_cost and ai_cost_internal) runs with
// the caller's rights and a pinned search_path, except these, each for a
// reason also written above its definition in sql/.
// A new exception must be added here on purpose, with its reason.
const EXCEPTIONS: Record<string, string> = {
  'ai_cost_internal.priced': 'SQL function without SET so the planner can inline it; names every operator and function by its schema',
  'ai_cost.reprice': 'procedure that COMMITs between batches, which a SET clause forbids; names every operator by its schema',
  'ai_cost.resume_reprice': 'procedure that COMMITs between batches, which a SET clause forbids; names every operator by its schema',
  'ai_cost_internal.price_call': 'the cost trigger: a pinned search_path costs ~5 us per row before PG 17; names every operator, function and type by its schema',
  'ai_cost_internal.capture_call_changes': 'SECURITY DEFINER so writers need no rights on the change table',
  'ai_cost_internal.truncate_rollups': 'SECURITY DEFINER so a TRUNCATE by a non-owner also empties the rollups',
  'ai_cost_internal.calls_hourly_pending_between': 'SECURITY DEFINER so calls_between reads the changes not folded yet for roles without rights on them, as the live views do',
  'ai_cost_internal.unfolded_calls': 'SECURITY DEFINER so the live views read the calls not folded yet for roles without rights on the raw calls, as they read the change table',
  'ai_cost.latency_bucket': 'inlinable SQL expression: a SET clause prevents inlining and costs ~5 us a row; names every operator, function and type by its schema',
  'ai_cost_internal.histogram_trim': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17; names every operator by its schema',
  'ai_cost_internal.histogram_add': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17; names every operator by its schema',
  'ai_cost_internal.histogram_apply': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17; names every operator by its schema',
  'ai_cost_internal.histogram_accumulate': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17; names every operator by its schema',
  'ai_cost_internal.histogram_step': 'hot rollup helper: a pinned search_path costs ~5 us a call before PG 17; names every operator by its schema',
  'ai_cost_internal.claim_request_id': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.move_request_id': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.release_request_ids': 'SECURITY DEFINER so writers need no rights on the request id table',
  'ai_cost_internal.capture_shard_call_changes': 'SECURITY DEFINER so whoever changes calls needs no rights on the change shards',
  'ai_cost_internal.claim_shard_request_id': 'SECURITY DEFINER so writers need no rights on the request id shards',
  'ai_cost_internal.move_shard_request_id': 'SECURITY DEFINER so writers need no rights on the request id shards',
  'ai_cost_internal.release_shard_request_ids': 'SECURITY DEFINER so writers need no rights on the request id shards',
  'ai_cost_internal.compile_price_book': 'SECURITY DEFINER: replaces the price book functions, which needs their owner, for whoever changes prices',
  'ai_cost_internal.price_book_slot': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its operator and types by schema',
  'ai_cost_internal.price_book_rates': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.price_book_plain_rates': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.price_book_ids': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.price_book_windows': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.book_cost_of_plain_call': 'inlinable SQL the cost trigger evaluates for every plain call: a SET clause prevents inlining; names every operator and type by its schema',
  'ai_cost_internal.book_cost_of_call': 'inlinable SQL the cost trigger evaluates for every call with cache writes, audio, image or video: a SET clause prevents inlining; names every operator and type by its schema',
  'ai_cost_internal.book_discount_id': 'inlinable SQL the cost trigger evaluates for every call the book prices: a SET clause prevents inlining; names its operator by its schema',
  'ai_cost_internal.price_book_has_tenant': 'generated constant the cost trigger inlines: a SET clause prevents inlining; its body names its operator and type by schema',
  'ai_cost_internal.billing_of': 'runs for calls the compiled markups do not decide: a pinned search_path costs ~5 us a call before PG 17; names every object and operator by its schema',
  'ai_cost_internal.set_billed': 'billing trigger: a pinned search_path costs ~5 us a call before PG 17; names every object by its schema',
  'ai_cost_internal.charge': 'inlinable SQL the billing trigger evaluates for every call while markups exist: a SET clause prevents inlining; names every function, operator and type by its schema',
  'ai_cost_internal.markup_book': 'generated constant the billing trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.markup_book_window': 'generated constant the billing trigger inlines: a SET clause prevents inlining; its body names its type by schema',
  'ai_cost_internal.bills_calls': 'generated constant the billing trigger\'s condition inlines: a SET clause prevents inlining; its body is true or false',
  'ai_cost.insert_calls': 'SECURITY DEFINER: prices a batch in its own statement, which the cost trigger trusts only from its owner',
  'ai_cost_internal.shard_changes': 'inlinable SQL constant (no rows) on one server, read by the live views: a SET clause prevents inlining; its body has no operator',
  'ai_cost_internal.calls_are_distributed': 'inlinable SQL constant: a SET clause prevents inlining; its body has no operator',
  'ai_cost_internal.tenant_of_calls_without_one': 'inlinable SQL constant for ai_cost.insert_calls: a SET clause prevents inlining; its body has no operator',
  'ai_cost_internal.dimension_values': 'inlinable SQL unpivot used by refresh and a view: a SET clause prevents inlining; names its operator by its schema',
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

// A body without a pinned search_path is parsed under the caller's: every
// operator, function and non-keyword type in it must be named by its schema
// (test/planted-operators.test.ts plants better matches for all of them).
// This reads the bodies as text, so it is a lint and not a parser: comments,
// strings and numbers are dropped first, then anything a search_path could
// resolve is reported.
const CONSTRUCTS = new Set(['coalesce', 'greatest', 'least', 'nullif', 'exists', 'array', 'values', 'select', 'from', 'where',
  'and', 'or', 'not', 'case', 'when', 'then', 'else', 'return', 'if', 'elsif', 'while', 'cast', 'row', 'lateral', 'in', 'on',
  'join', 'limit', 'by', 'as', 'into', 'set', 'perform', 'query', 'end', 'loop']);
const KEYWORD_TYPES = new Set(['bigint', 'integer', 'int', 'smallint', 'numeric', 'decimal', 'real', 'double', 'boolean', 'interval',
  'timestamp', 'time', 'char', 'character', 'varchar', 'bit']);

function unqualified(body: string, language: string): string[] {
  let code = body
    .replace(/--[^\n]*/g, ' ')
    .replace(/'(?:[^']|'')*'/g, ' ')
    .replace(/OPERATOR\(pg_catalog\.[^)\s]+\)/g, ' , ')
    .replace(/\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b/gi, ' ')
    // PL/pgSQL syntax that looks like operators but is none.
    .replace(/:=/g, ' ')
    .replace(/\b(?:ERRCODE|HINT|DETAIL|MESSAGE)\s*=/gi, ' ')
    .replace(/\bDIAGNOSTICS\s+\w+\s*=/gi, ' ')
    .replace(/\bFOR\s+\w+\s+IN\b/gi, ' ')
    .replace(/\.\./g, ' ')
    // A row's columns (ROW(NEW.*)), not multiplication.
    .replace(/\.\*/g, ' ');
  const found: string[] = [];
  for (const m of code.matchAll(/[-+*/<>=~!@#%^&|`?]+/g)) found.push(`operator ${m[0]}`);
  for (const m of code.matchAll(/\b(IS\s+(?:NOT\s+)?DISTINCT\s+FROM|IN\s*\(|BETWEEN|I?LIKE|SIMILAR|ANY\s*\(|ALL\s*\(|SOME\s*\()/gi)) {
    found.push(`construct ${m[1]!.replace(/\s+/g, ' ')} (resolves = through the path)`);
  }
  for (const m of code.matchAll(/(?<![.\w$])([a-z_][a-z0-9_]*)\s*\(/gi)) {
    if (!CONSTRUCTS.has(m[1]!.toLowerCase())) found.push(`function ${m[1]}`);
  }
  for (const m of code.matchAll(/(?:::|\bAS)\s*([a-z_][a-z0-9_]*)\b(?!\s*\.)/gi)) {
    if (!KEYWORD_TYPES.has(m[1]!.toLowerCase()) && m[1]!.toLowerCase() !== 'pg_catalog') found.push(`type ${m[1]}`);
  }
  if (language === 'plpgsql') {
    const declarations = /\bDECLARE\b([\s\S]*?)\bBEGIN\b/i.exec(code)?.[1] ?? '';
    for (const m of declarations.matchAll(/(?:^|;)\s*\w+\s+([a-z_][a-z0-9_]*)\b(?!\s*\.)/gi)) {
      if (!KEYWORD_TYPES.has(m[1]!.toLowerCase())) found.push(`type ${m[1]} (declared)`);
    }
  }
  return found;
}

test('a function without a pinned search_path names every operator, function and type by its schema', async (t) => {
  const rows = await db.query<{ name: string; language: string; body: string }>(`
    SELECT p.oid::regprocedure::text AS name, l.lanname AS language, p.prosrc AS body
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.pronamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace) AND p.prokind IN ('f', 'p')
       AND l.lanname IN ('sql', 'plpgsql')
       AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false)`);
  t.true(rows.length >= 10);
  const problems = rows.flatMap((r) => unqualified(r.body, r.language).map((what) => `${r.name}: ${what}`));
  t.deepEqual(problems, []);
});

test('the lint finds what a search_path could resolve', (t) => {
  t.deepEqual(unqualified('SELECT a + b', 'sql'), ['operator +']);
  t.deepEqual(unqualified('SELECT ROW(NEW.*), a * b', 'sql'), ['operator *']);
  t.deepEqual(unqualified('SELECT ln(x::float8)', 'sql'), ['function ln', 'type float8']);
  t.deepEqual(unqualified('SELECT a IS DISTINCT FROM b', 'sql'), ['construct IS DISTINCT FROM (resolves = through the path)']);
  t.deepEqual(unqualified('DECLARE x text; BEGIN RETURN 1; END', 'plpgsql'), ['type text (declared)']);
  t.deepEqual(unqualified(`SELECT pg_catalog.ln(x::double precision) OPERATOR(pg_catalog.*) 4 -- a * b\n  , 'a + b', 1e-9`, 'sql'), []);
});
