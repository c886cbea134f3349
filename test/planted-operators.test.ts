import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';
import { clearPlantedHits, plantObjects, plantedHits } from './support/planted-objects.js';

// A user who may create objects in a schema on someone's search_path plants
// operators, functions, aggregates and type names there that match better
// than the built-ins (support/planted-objects.sql). Then a superuser and
// each role, with that search_path, read every view, run every function they
// may run, insert calls through the trigger and the batch function, refresh
// and reprice. Nothing planted may run, and every cost, view row and rollup
// must be what a session with a clean search_path gets.
//
// Victim sessions send no operator, cast or function of their own: values go
// in as parameters or untyped literals, so a hit can only come from the
// package.

const CLEAN_PATH = 'pg_catalog, pg_temp';
const VICTIM_PATHS = [
  // The attacker's schema first: exact shadows of built-ins win.
  { schema: 'planted', path: 'planted, pg_catalog' },
  // PostgreSQL 14-style public, writable by everyone: pg_catalog is searched
  // first, so only better matches (mixed types, polymorphic) can win.
  { schema: 'public', path: '"$user", public' },
];
const ROLES = ['superuser', 'ai_cost_writer', 'ai_cost_reader', 'ai_cost_admin', 'ai_cost_tenant_reader'] as const;
type Role = (typeof ROLES)[number];

const db = useTestDatabase(test, {
  setup: async (db) => {
    await withSession(db.url, CLEAN_PATH, 'superuser', async (client) => {
      for (const { schema } of VICTIM_PATHS) await plantObjects(client, schema);
      // A tenant with a discount and one with a price of its own, so the lookup path runs too.
      await client.query(`
        INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('acme', 'openai', 15);
        INSERT INTO ai_cost.prices (provider, model, tenant_id, valid_from, input_per_mtok, output_per_mtok)
        VALUES ('openai', 'gpt-4o-mini', 'globex', '2020-01-01', 0.1, 0.5);
        INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, total_ms) VALUES ('openai', 'gpt-4o-mini', 10, 10, 5);
        SELECT ai_cost.refresh();`);
    });
  },
});

async function withSession<T>(url: string, searchPath: string, role: Role, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${searchPath}`);
    if (role !== 'superuser') await client.query(`SET ROLE ${role}`);
    return await body(client);
  } finally {
    await client.end();
  }
}

/** Rows as sorted JSON lines, to compare two sessions' answers whatever their order. */
function canonical(rows: unknown[]): string[] {
  return rows.map((row) => JSON.stringify(row)).sort();
}

/** Calls covering every way the cost is computed: the compiled book, the lookup, tiers, tenants, patterns, units. */
function sampleCalls(tag: string): Record<string, unknown>[] {
  return [
    { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 1000, output_tokens: 200, cache_read_tokens: 100, total_ms: 250 },
    { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 1_000_000_000, output_tokens: 10, total_ms: 1 },
    { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 5000, output_tokens: 700, tenant_id: 'acme', total_ms: 1200, ttft_ms: 90, streamed: true },
    { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 5000, output_tokens: 700, tenant_id: 'globex' },
    { provider: 'amazon', model: 'anthropic.claude-3-7-sonnet-20250219-v1:0', input_tokens: 9000, output_tokens: 300,
      cache_write_tokens: 4000, cache_write_1h_tokens: 1000, cache_read_tokens: 2000, total_ms: 4000 },
    { provider: 'amazon', model: 'us.anthropic.claude-3-7-sonnet-20250219-v1:0', input_tokens: 3000, output_tokens: 30 },
    { provider: 'openai', model: 'gpt-4o-mini', service_tier: 'batch', input_tokens: 3000, output_tokens: 30 },
    { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 800, output_tokens: 80, created_at: '2021-06-01T00:00:00Z' },
    { provider: 'cohere', model: 'rerank-v3.5', units: 3, unit: 'query' },
    { provider: 'openai', model: 'gpt-4o-mini', cached: true, input_tokens: 10, output_tokens: 10 },
    { provider: 'openai', model: 'no-such-model', input_tokens: 10, output_tokens: 10 },
    { provider: 'openai', model: 'gpt-4o-mini', status: 'error' },
    { provider: 'perplexity', model: 'sonar-deep-research', input_tokens: 5000, output_tokens: 3000, reasoning_tokens: 1200 },
    { provider: 'google', model: 'gemini-2.5-flash', input_tokens: 8000, output_tokens: 500, cache_read_tokens: 6000,
      audio_input_tokens: 3000, cache_read_audio_tokens: 2000 },
    { provider: 'openai', model: 'gpt-image-1', operation: 'image', input_tokens: 1000, output_tokens: 4160,
      image_input_tokens: 600, image_output_tokens: 4160 },
    { provider: 'google', model: 'gemini-2.5-flash', input_tokens: 9000, output_tokens: 400, cache_read_tokens: 2000,
      image_input_tokens: 1500, video_input_tokens: 4000 },
  ].map((call, i) => ({ ...call, request_id: `${tag}-${i}` }));
}

const CALL_COLUMNS = ['request_id', 'provider', 'model', 'service_tier', 'tenant_id', 'status', 'created_at', 'input_tokens',
  'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens', 'reasoning_tokens',
  'audio_input_tokens', 'cache_read_audio_tokens', 'image_input_tokens', 'image_output_tokens', 'video_input_tokens',
  'units', 'unit', 'cached',
  'total_ms', 'ttft_ms', 'streamed'] as const;

/** A statement that runs a function of ai_cost with sensible arguments; read-only ones are compared with a clean session. */
interface Invocation {
  sql: string;
  params?: unknown[];
  compare: boolean;
}

/** A day of its own for each backdated price, since two prices of a model may not start at the same instant. */
let backdatedPrices = 0;

function invocations(tag: string): Record<string, Invocation[]> {
  const batch = JSON.stringify(sampleCalls(`${tag}-batch`));
  backdatedPrices += 1;
  const backdated = `2021-01-${String(backdatedPrices).padStart(2, '0')}T00:00:00Z`;
  return {
    'ai_cost.price_at(text,text,timestamp with time zone)': [
      { sql: 'SELECT * FROM ai_cost.price_at($1, $2, $3)', params: ['openai', 'gpt-4o-mini', '2030-01-01'], compare: true }],
    'ai_cost.cost_micros(ai_cost.prices,bigint,bigint,bigint,bigint)': [
      { sql: 'SELECT ai_cost.cost_micros(ai_cost.price_at($1, $2, $3), $4, $5, $6, $7)',
        params: ['openai', 'gpt-4o-mini', '2030-01-01', 123456, 7890, 1000, 0], compare: true }],
    'ai_cost.explain_cost(text,text,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,bigint,bigint,numeric,text,text,text,bigint,bigint,bigint,bigint,bigint,jsonb)': [
      { sql: 'SELECT * FROM ai_cost.explain_cost($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)',
        params: ['amazon', 'us.anthropic.claude-3-7-sonnet-20250219-v1:0', '2030-01-01', 90000, 3000, 2000, 4000, 1000, null, null, null, null, 'standard', 'acme', 1200, null],
        compare: true },
      { sql: 'SELECT * FROM ai_cost.explain_cost($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)',
        params: ['google', 'gemini-2.5-flash', '2030-01-01', 8000, 500, 6000, null, null, 3000, null, null, null, 'standard', null, 200, 2000],
        compare: true },
      { sql: 'SELECT * FROM ai_cost.explain_cost($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)',
        params: ['openai', 'gpt-image-1', '2030-01-01', 1000, 4160, null, null, null, null, null, null, null, 'standard', null, null, null, 600, 4160, null],
        compare: true },
      { sql: 'SELECT * FROM ai_cost.explain_cost($1, $2, $3, $4, $5, units => $6, unit => $7, extra_units => $8)',
        params: ['openai', 'gpt-4o-mini', '2030-01-01', 1000, 100, 2, 'image', '{"web_search": 3}'], compare: true },
      { sql: 'SELECT * FROM ai_cost.explain_cost($1, $2, $3, $4, $5)', params: ['openai', 'gpt-4o-mini', '2030-01-01', 1000, 100], compare: true }],
    'ai_cost.explain_cost(bigint)': [{ sql: 'SELECT * FROM ai_cost.explain_cost($1)', params: [1], compare: true }],
    'ai_cost.insert_calls(jsonb)': [{ sql: 'SELECT ai_cost.insert_calls($1)', params: [batch], compare: false }],
    'ai_cost.start_reprice(timestamp with time zone,timestamp with time zone,text,text,text,boolean)': [
      { sql: 'SELECT ai_cost.reprice_batch(ai_cost.start_reprice($1, $2, $3), $4)', params: ['2000-01-01', '2100-01-01', tag, 3], compare: false }],
    'ai_cost.reprice_batch(bigint,integer)': [],
    'ai_cost.resume_reprice(bigint,integer)': [
      { sql: 'CALL ai_cost.resume_reprice(ai_cost.start_reprice($1, $2, $3), $4)', params: ['2000-01-01', '2100-01-01', tag, 5], compare: false }],
    'ai_cost.reprice(timestamp with time zone,timestamp with time zone,text,text,text,boolean,integer)': [
      { sql: `INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
              VALUES ('openai', 'gpt-4o-mini', $1, 0.3, 1.1, 0.07)`, params: [backdated], compare: false },
      { sql: 'CALL ai_cost.reprice($1, $2, $3, batch_size => $4)', params: ['2000-01-01', '2100-01-01', tag, 4], compare: false }],
    'ai_cost.reprice_preview(timestamp with time zone,timestamp with time zone,text,text,boolean)': [
      { sql: 'SELECT * FROM ai_cost.reprice_preview($1, $2)', params: ['2000-01-01', '2100-01-01'], compare: true }],
    'ai_cost.backfill_unpriced(text)': [{ sql: 'SELECT ai_cost.backfill_unpriced($1)', params: [tag], compare: false }],
    'ai_cost.latency_bucket(integer)': [250, 1, 0, 1 << 30].map((ms) => (
      { sql: 'SELECT ai_cost.latency_bucket($1)', params: [ms], compare: true })),
    'ai_cost.latency_bucket_value(integer)': [{ sql: 'SELECT ai_cost.latency_bucket_value($1)', params: [37], compare: true }],
    'ai_cost.histogram_merge(bigint[])': [
      { sql: 'SELECT ai_cost.histogram_merge(h.total_ms_hist) FROM ai_cost.calls_hourly_live h', compare: true }],
    'ai_cost.histogram_percentile(bigint[],double precision)': [
      { sql: 'SELECT ai_cost.histogram_percentile($1, $2)', params: ['{0,3,0,5,1}', 0.95], compare: true }],
    'ai_cost.calls_between(timestamp with time zone,timestamp with time zone)': [
      { sql: 'SELECT * FROM ai_cost.calls_between($1, $2)', params: ['2000-01-01 00:30', '2100-01-01'], compare: true }],
    'ai_cost.refresh(boolean)': [{ sql: 'SELECT ai_cost.refresh()', compare: false }],
    'ai_cost.retry_set_aside_changes(bigint)': [{ sql: 'SELECT ai_cost.retry_set_aside_changes()', compare: false }],
    'ai_cost.maintain_partitions()': [{ sql: 'SELECT ai_cost.maintain_partitions()', compare: false }],
    'ai_cost.partition_calls()': [],
    'ai_cost.enable_tenant_isolation()': [
      { sql: 'SELECT ai_cost.enable_tenant_isolation()', compare: false },
      { sql: 'SELECT ai_cost.disable_tenant_isolation()', compare: false }],
    'ai_cost.disable_tenant_isolation()': [],
    'ai_cost.schedule_refresh()': [],
    // Needs a Citus cluster: test/distribute.test.ts runs it there.
    'ai_cost.distribute()': [],
  };
}

/** Runs one statement in the victim session, and in a clean one when its answer must match. */
async function run(problems: string[], victim: pg.Client, clean: pg.Client, what: string, call: Invocation): Promise<void> {
  let rows: unknown[];
  try {
    rows = (await victim.query(call.sql, call.params)).rows;
  } catch (error) {
    // A role that may not do something is no failure here (test/roles.test.ts
    // holds what each role may do); anything else is.
    if ((error as { code?: string }).code === '42501') return;
    problems.push(`${what}: ${(error as Error).message}`);
    return;
  }
  if (call.compare) {
    const expected = (await clean.query(call.sql, call.params)).rows;
    if (JSON.stringify(canonical(rows)) !== JSON.stringify(canonical(expected))) {
      problems.push(`${what} answers differently: ${JSON.stringify(rows).slice(0, 300)} instead of ${JSON.stringify(expected).slice(0, 300)}`);
    }
  }
}

/** What went wrong under the planted search_path (empty when nothing did). */
async function attack(t: ExecutionContext, schema: string, path: string): Promise<string[]> {
  const problems: string[] = [];
  await withSession(db.url, CLEAN_PATH, 'superuser', (client) => clearPlantedHits(client, schema));
  for (const role of ROLES) {
    const tag = `${schema}-${role}`;
    await withSession(db.url, path, role, (victim) => withSession(db.url, CLEAN_PATH, role, async (clean) => {
      const who = role === 'superuser' ? 'current_user' : `'${role}'`;

      // Every view and materialized view the role may read, listed from the catalog.
      const relations = (await clean.query<{ name: string }>(`
        SELECT c.oid::regclass::text AS name FROM pg_class c
         WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('v', 'm')
           AND has_table_privilege(${who}, c.oid, 'SELECT') ORDER BY 1`)).rows;
      if (role === 'ai_cost_reader') t.true(relations.length >= 15, 'the reader reads the views');
      for (const { name } of relations) await run(problems, victim, clean, `${role} reading ${name}`, { sql: `SELECT * FROM ${name}`, compare: true });

      // Calls through the cost trigger, one INSERT each.
      if ((await clean.query(`SELECT has_table_privilege(${who}, 'ai_cost.calls', 'INSERT') AS ok`)).rows[0].ok) {
        for (const call of sampleCalls(`${tag}-insert`)) {
          const columns = CALL_COLUMNS.filter((c) => c in call);
          await run(problems, victim, clean, `${role} inserting ${JSON.stringify(call)}`, {
            sql: `INSERT INTO ai_cost.calls (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
            params: columns.map((c) => call[c]),
            compare: false,
          });
        }
      }

      // Every function of ai_cost the role may execute, listed from the catalog.
      const functions = (await clean.query<{ signature: string }>(`
        SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
         WHERE p.pronamespace = 'ai_cost'::regnamespace AND has_function_privilege(${who}, p.oid, 'EXECUTE')
         ORDER BY p.prokind <> 'p', p.oid`)).rows;
      const known = invocations(tag);
      for (const { signature } of functions) {
        const calls = known[signature];
        if (!calls) {
          problems.push(`no sensible arguments known for ${signature}: add them to invocations()`);
          continue;
        }
        for (const call of calls) await run(problems, victim, clean, `${role} running ${signature}`, call);
      }
    }));
  }

  await withSession(db.url, CLEAN_PATH, 'superuser', async (clean) => {
    for (const hit of await plantedHits(clean, schema)) problems.push(`planted ${hit} ran`);

    // Every cost is what a clean session computes now (the reprices above covered every call).
    const wrong = (await clean.query(`
      SELECT c.request_id, c.cost_micros, c.price_id, c.unpriced_reason, x.cost_micros AS clean_cost, x.price_id AS clean_price_id
        FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) x
       WHERE (c.cost_micros, c.price_id, c.discount_id, c.unpriced_reason)
             IS DISTINCT FROM (x.cost_micros, x.price_id, x.discount_id, x.unpriced_reason)`)).rows;
    for (const call of wrong) problems.push(`call ${JSON.stringify(call)} costs something else than a clean session computes`);
    const { count } = (await clean.query(`SELECT count(*)::int AS count FROM ai_cost.calls WHERE request_id LIKE $1`, [`${schema}-%`])).rows[0];
    t.true(count >= 3 * sampleCalls('').length, 'the trigger and insert_calls wrote calls');

    // The rollups the victims' refreshes folded hold what the raw calls hold.
    await clean.query('SELECT ai_cost.refresh()');
    const rollups = (await clean.query(`
      SELECT (SELECT sum(h.calls) FROM ai_cost.calls_hourly h) = (SELECT count(*) FROM ai_cost.calls) AS calls,
             (SELECT sum(h.cost_micros) FROM ai_cost.calls_hourly h) = (SELECT sum(c.cost_micros) FROM ai_cost.calls c) AS cost,
             (SELECT ai_cost.histogram_merge(h.total_ms_hist) FROM ai_cost.calls_hourly h)
               = (SELECT ai_cost_internal.histogram(c.total_ms, 1) FROM ai_cost.calls c) AS histogram`)).rows[0];
    if (!(rollups.calls && rollups.cost && rollups.histogram)) problems.push(`the rollups differ from the calls: ${JSON.stringify(rollups)}`);
  });
  return problems;
}

// The two attacks of issue 14 as reported, by the writer itself in a schema
// everyone may create in (PostgreSQL 14's public).
test.serial('a writer\'s operator runs neither as a superuser reading a live view nor in the cost trigger', async (t) => {
  await withSession(db.url, CLEAN_PATH, 'superuser', (client) => client.query(`
    CREATE SCHEMA pg14_public;
    GRANT USAGE, CREATE ON SCHEMA pg14_public TO PUBLIC;
    CREATE TABLE pg14_public.ran_as (who text);
    GRANT INSERT ON pg14_public.ran_as TO PUBLIC;
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, total_ms)
    VALUES ('openai', 'gpt-4o-mini', 100, 10, 250);`));
  await withSession(db.url, CLEAN_PATH, 'ai_cost_writer', (writer) => writer.query(`
    CREATE FUNCTION pg14_public.times(integer, double precision) RETURNS double precision LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO pg14_public.ran_as VALUES (current_user); RETURN $1::double precision * $2; END$$;
    CREATE OPERATOR pg14_public.* (LEFTARG = integer, RIGHTARG = double precision, FUNCTION = pg14_public.times);
    CREATE FUNCTION pg14_public.free(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO pg14_public.ran_as VALUES (current_user); RETURN 0; END$$;
    CREATE OPERATOR pg14_public./ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pg14_public.free);`));

  const live = await withSession(db.url, '"$user", pg14_public', 'superuser', async (superuser) =>
    (await superuser.query('SELECT * FROM ai_cost.calls_hourly_live')).rows.length);
  t.true(live > 0);
  const inserted = await withSession(db.url, 'pg14_public, pg_catalog', 'ai_cost_writer', async (writer) =>
    (await writer.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, request_id)
                         VALUES ('openai', 'gpt-4o-mini', 1000000000, 10, 'issue-14-free') RETURNING cost_micros`)).rows[0]);
  await withSession(db.url, CLEAN_PATH, 'superuser', async (clean) => {
    t.deepEqual((await clean.query('SELECT who FROM pg14_public.ran_as')).rows, [], 'the writer\'s operators ran');
    const expected = (await clean.query(`SELECT (ai_cost_internal.cost_of(c)).cost_micros FROM ai_cost.calls c
                                          WHERE c.request_id = 'issue-14-free'`)).rows[0];
    t.deepEqual(inserted, expected);
    t.not(expected.cost_micros, '0');
  });
});

for (const { schema, path } of VICTIM_PATHS) {
  test.serial(`nothing planted in ${schema} runs, and every cost stays right, with search_path ${path}`, async (t) => {
    t.timeout(300_000);
    t.deepEqual(await attack(t, schema, path), []);
  });
}
