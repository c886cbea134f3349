import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { previewReprice, repriceCharges, runReprice, startReprice } from '../src/pricing/reprice.js';
import { runCli } from './support/cli.js';
import { createTestDatabase, useTestDatabase } from './support/database.js';

// What a call is billed to its tenant (ai_cost.markups, billed_micros),
// beside what it cost. Every charge is worked out by hand.
//
// Prices from 2025-01-01, USD per 1M tokens = micro-dollars per token:
//   bl/alpha  input 2,    output 8     (bl/alpha-2025 is an alias of it)
//   bl/beta   input 1.10, output 4.40
// Every call below has 1,001 input and 37 output tokens (1,038 tokens):
//   alpha  1,001 x 2 + 37 x 8       = 2,002 + 296     = 2,298 micro-dollars
//   beta   1,001 x 1.10 + 37 x 4.40 = 1,101.1 + 162.8 = 1,263.9 -> 1,264
// Markups:
//   every tenant                      20%
//   tenant acme, provider bl          10%, 0.001 USD per successful call, 0.50 USD per 1M tokens
//   tenant acme, model bl/beta        0% (at cost), from 2025-06-01
//   tenant acme, model bl/alpha       from 2025-09-01 to 2025-10-01: 5%
// Charges:
//   anyone, alpha   2,298 x 1.2 = 2,757.6 -> 2,758
//   acme, alpha     2,298 x 1.1 + 1,000 + 1,038 x 0.5 = 2,527.8 + 1,000 + 519 = 4,046.8 -> 4,047
//   acme, alpha, failed: no fee per call = 3,046.8 -> 3,047
//   acme, beta, before June: 1,264 x 1.1 + 1,000 + 519 = 1,390.4 + 1,519 = 2,909.4 -> 2,910
//   acme, beta, from June: 1,264
//   acme, alpha in September: 2,298 x 1.05 = 2,412.9 -> 2,413
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
      VALUES ('bl', 'alpha', '2025-01-01', 2, 8), ('bl', 'beta', '2025-01-01', 1.10, 4.40);
      INSERT INTO ai_cost.model_aliases (provider, alias, model) VALUES ('bl', 'alpha-2025', 'alpha');
      INSERT INTO ai_cost.markups (tenant_id, provider, model, percent, per_call, per_mtok, valid_from, valid_to, note)
      VALUES (NULL,   NULL, NULL,    20, 0,     0,    '-infinity',  NULL,         'resale'),
             ('acme', 'bl', NULL,    10, 0.001, 0.50, '-infinity',  NULL,         'acme plan'),
             ('acme', 'bl', 'beta',  0,  0,     0,    '2025-06-01', NULL,         'acme beta at cost'),
             ('acme', 'bl', 'alpha', 5,  0,     0,    '2025-09-01', '2025-10-01', 'acme alpha promotion');`);
  },
});

async function markupId(note: string): Promise<string> {
  const [row] = await db.query<{ id: string }>('SELECT id::text FROM ai_cost.markups WHERE note = $1', [note]);
  return row!.id;
}

interface Billed { id: string; cost: string | null; billed: string | null; markup_id: string | null }

interface CallSpec { model: string; tenant?: string | null; at: string; status?: string; provider?: string }

const CASES: Array<CallSpec & { cost: string | null; billed: string | null; markup: string | null }> = [
  { model: 'alpha', tenant: 'globex', at: '2025-03-01', cost: '2298', billed: '2758', markup: 'resale' },
  { model: 'alpha', tenant: null, at: '2025-03-01', cost: '2298', billed: '2758', markup: 'resale' },
  { model: 'alpha', tenant: 'acme', at: '2025-03-01', cost: '2298', billed: '4047', markup: 'acme plan' },
  { model: 'alpha-2025', tenant: 'acme', at: '2025-09-15', cost: '2298', billed: '2413', markup: 'acme alpha promotion' },
  { model: 'alpha', tenant: 'acme', at: '2025-03-01', status: 'error', cost: '2298', billed: '3047', markup: 'acme plan' },
  { model: 'beta', tenant: 'acme', at: '2025-03-01', cost: '1264', billed: '2910', markup: 'acme plan' },
  { model: 'beta', tenant: 'acme', at: '2025-07-01', cost: '1264', billed: '1264', markup: 'acme beta at cost' },
  { model: 'unknown', tenant: 'acme', at: '2025-03-01', cost: null, billed: null, markup: null },
];

async function insertOne(call: CallSpec, extra = ''): Promise<Billed> {
  const [row] = await db.query<Billed>(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, status, input_tokens, output_tokens${extra ? ', billed_micros, markup_id' : ''})
    VALUES ($1, $2, $3, $4, $5, 1001, 37${extra})
    RETURNING id::text, cost_micros::text AS cost, billed_micros::text AS billed, markup_id::text`,
  [call.provider ?? 'bl', call.model, call.tenant ?? null, call.at, call.status ?? 'success']);
  return row!;
}

test('the trigger bills each call by the narrowest markup of its tenant, else of every tenant, rounded up once', async (t) => {
  for (const c of CASES) {
    const row = await insertOne(c);
    const label = `${c.tenant ?? 'no tenant'} ${c.model} ${c.status ?? 'success'} at ${c.at}`;
    t.is(row.cost, c.cost, `cost of ${label}`);
    t.is(row.billed, c.billed, `charge of ${label}`);
    t.is(row.markup_id, c.markup === null ? null : await markupId(c.markup), `markup of ${label}`);
  }
});

test('ai_cost.insert_calls bills a batch exactly as the trigger does', async (t) => {
  const batch = CASES.map((c, i) => ({
    provider: 'bl', model: c.model, tenant_id: c.tenant ?? null, created_at: c.at, status: c.status ?? 'success',
    input_tokens: 1001, output_tokens: 37, request_id: `billing-batch-${i}`,
    // Keys a writer must not set are ignored.
    billed_micros: 1, markup_id: 1,
  }));
  const [inserted] = await db.query<{ n: string }>('SELECT ai_cost.insert_calls($1::jsonb)::text AS n', [JSON.stringify(batch)]);
  t.is(inserted!.n, String(CASES.length));
  const rows = await db.query<{ request_id: string; billed: string | null; markup_id: string | null }>(`
    SELECT request_id, billed_micros::text AS billed, markup_id::text FROM ai_cost.calls
     WHERE request_id LIKE 'billing-batch-%' ORDER BY substr(request_id, 15)::int`);
  t.deepEqual(rows.map((r) => r.billed), CASES.map((c) => c.billed));
  for (const [i, c] of CASES.entries()) {
    t.is(rows[i]!.markup_id, c.markup === null ? null : await markupId(c.markup));
  }
});

test('a charge a writer sends is recomputed, to NULL where nothing bills the call', async (t) => {
  const forged = await insertOne({ model: 'alpha', tenant: 'globex', at: '2025-03-01' }, ', 1, 1');
  t.is(forged.billed, '2758');
  t.is(forged.markup_id, await markupId('resale'));
  const unpriced = await insertOne({ model: 'unknown', tenant: 'globex', at: '2025-03-01' }, ', 99, 1');
  t.is(unpriced.billed, null);
  t.is(unpriced.markup_id, null);
});

test.serial('without markups nothing is billed and the billing trigger is folded away', async (t) => {
  // In a transaction rolled back at the end: the other tests keep their markups.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('DELETE FROM ai_cost.markups');
    await client.query(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens, billed_micros, markup_id)
      VALUES ('bl', 'alpha', 'acme', '2025-03-01', 1001, 37, NULL, NULL), ('bl', 'alpha', 'acme', '2025-03-01', 1001, 37, 5, 1)`);
    const { rows } = await client.query<{ bills: boolean; billed: Array<string | null> }>(`
      SELECT ai_cost_internal.bills_calls() AS bills,
             array_agg(billed_micros::text ORDER BY id) FILTER (WHERE created_at = '2025-03-01' AND tenant_id = 'acme'
                                                                  AND xmin::text = pg_current_xact_id()::text) AS billed
        FROM ai_cost.calls`);
    t.deepEqual(rows, [{ bills: false, billed: [null, null] }]);
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
  const [after] = await db.query<{ bills: boolean }>('SELECT ai_cost_internal.bills_calls() AS bills');
  t.true(after!.bills);
});

test('explain_cost breaks the charge down after the cost, and says why a call is not billed', async (t) => {
  const call = await insertOne({ model: 'alpha', tenant: 'acme', at: '2025-03-01' });
  const rows = await db.query<{ component: string; micros: string | null; detail: string | null }>(
    'SELECT component, micros::text, detail FROM ai_cost.explain_cost($1::bigint)', [call.id]);
  const byComponent = Object.fromEntries(rows.map((r) => [r.component, r]));
  t.is(byComponent.total!.micros, '2298');
  t.is(byComponent['markup on cost']!.micros, '229.8');
  t.is(byComponent['fee per call']!.micros, '1000');
  t.is(byComponent['fee per token']!.micros, '519');
  t.is(byComponent.billed!.micros, '4047');
  t.regex(byComponent.markup!.detail!, new RegExp(`^markup row ${await markupId('acme plan')} \\(tenant acme, bl\\)`));
  t.deepEqual(rows.map((r) => r.component).slice(-5), ['markup', 'markup on cost', 'fee per call', 'fee per token', 'billed']);

  const hypothetical = await db.query<{ component: string; micros: string | null }>(`
    SELECT component, micros::text FROM ai_cost.explain_cost('bl', 'beta', '2025-07-01', 1001, 37, tenant_id => 'acme')`);
  t.deepEqual(hypothetical.slice(-2), [{ component: 'markup', micros: null }, { component: 'billed', micros: '1264' }]);

  const unknown = await insertOne({ model: 'unknown', tenant: 'acme', at: '2025-03-01' });
  const [notBilled] = await db.query<{ detail: string }>(
    `SELECT detail FROM ai_cost.explain_cost($1::bigint) WHERE component = 'not billed'`, [unknown.id]);
  t.is(notBilled!.detail, 'the cost is unknown, so the charge is too');
});

test('the rollups, spend_daily and calls_between hold the charges apart from the cost, exact before and after a refresh', async (t) => {
  const tenant = 'rollup-tenant';
  await db.query(`
    INSERT INTO ai_cost.markups (tenant_id, provider, model, percent, note) VALUES ($1, 'bl', 'beta', 50, 'rollup beta');
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens)
    VALUES ('bl', 'alpha', $1, '2025-04-02 10:00Z', 1001, 37),
           ('bl', 'beta', $1, '2025-04-02 10:30Z', 1001, 37),
           ('bl', 'unknown', $1, '2025-04-02 11:00Z', 1001, 37);`.replaceAll('$1', `'${tenant}'`));
  // alpha: 2,758 (every tenant's 20%); beta: 1,264 x 1.5 = 1,896; unknown: not billed.
  const expected = { cost: '3562', billed: '4654', unbilled: '1', calls: '3' };
  const read = async () => {
    const [between] = await db.query<{ cost: string; billed: string; unbilled: string; calls: string }>(`
      SELECT sum(cost_micros)::text AS cost, sum(billed_micros)::text AS billed, sum(unbilled_calls)::text AS unbilled,
             sum(calls)::text AS calls
        FROM ai_cost.calls_between('2025-04-02', '2025-04-03') WHERE tenant_id = $1`, [tenant]);
    const daily = await db.query<{ model: string; cost: string | null; billed: string | null; unbilled: string }>(`
      SELECT model, cost_micros::text AS cost, billed_micros::text AS billed, unbilled_calls::text AS unbilled
        FROM ai_cost.spend_daily WHERE tenant_id = $1 ORDER BY model`, [tenant]);
    return { between, daily };
  };
  const dailyExpected = [
    { model: 'alpha', cost: '2298', billed: '2758', unbilled: '0' },
    { model: 'beta', cost: '1264', billed: '1896', unbilled: '0' },
    { model: 'unknown', cost: null, billed: null, unbilled: '1' },
  ];
  const before = await read();
  t.deepEqual(before.between, expected);
  t.deepEqual(before.daily, dailyExpected);
  await db.query('SELECT ai_cost.refresh()');
  const after = await read();
  t.deepEqual(after.between, expected);
  t.deepEqual(after.daily, dailyExpected);
  const [hourly] = await db.query<{ billed: string; unbilled: string }>(`
    SELECT sum(billed_micros)::text AS billed, sum(unbilled_calls)::text AS unbilled
      FROM ai_cost.calls_hourly_live WHERE tenant_id = $1`, [tenant]);
  t.deepEqual(hourly, { billed: expected.billed, unbilled: expected.unbilled });
});

test('a reprice re-bills calls by the markups now in force, audits each charge and keeps the rollups exact', async (t) => {
  const tenant = 'rebill-tenant';
  await db.query(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens)
    VALUES ('bl', 'alpha', '${tenant}', '2025-05-02 10:00Z', 1001, 37), ('bl', 'beta', '${tenant}', '2025-05-02 10:00Z', 1001, 37);
    SELECT ai_cost.refresh();
    -- A markup agreed later, for May: 30% on top of the cost, and 2 USD per 1M tokens.
    INSERT INTO ai_cost.markups (tenant_id, percent, per_mtok, valid_from, valid_to, note)
    VALUES ('${tenant}', 30, 2, '2025-05-01', '2025-06-01', 'rebill May');`);
  const [run] = await db.query<{ id: string }>(`
    SELECT ai_cost.start_reprice('2025-05-02', '2025-05-03', 'markup agreed for May')::text AS id`);
  await db.query('SELECT ai_cost.reprice_batch($1::bigint, 100)', [run!.id]);
  // alpha: 2,298 x 1.3 + 1,038 x 2 = 2,987.4 + 2,076 = 5,063.4 -> 5,064
  // beta:  1,264 x 1.3 + 2,076     = 1,643.2 + 2,076 = 3,719.2 -> 3,720
  const audit = await db.query<{ old_cost: string; new_cost: string; old_billed: string; new_billed: string }>(`
    SELECT a.old_cost_micros::text AS old_cost, a.new_cost_micros::text AS new_cost,
           a.old_billed_micros::text AS old_billed, a.new_billed_micros::text AS new_billed
      FROM ai_cost.reprice_audit a WHERE a.run_id = $1::bigint ORDER BY a.new_billed_micros`, [run!.id]);
  t.deepEqual(audit, [
    { old_cost: '1264', new_cost: '1264', old_billed: '1517', new_billed: '3720' },
    { old_cost: '2298', new_cost: '2298', old_billed: '2758', new_billed: '5064' },
  ]);
  await db.query('SELECT ai_cost.refresh()');
  const [rollup] = await db.query<{ billed: string; raw: string }>(`
    SELECT (SELECT sum(billed_micros) FROM ai_cost.calls_hourly_live WHERE tenant_id = $1)::text AS billed,
           (SELECT sum(billed_micros) FROM ai_cost.calls WHERE tenant_id = $1)::text AS raw`, [tenant]);
  t.deepEqual(rollup, { billed: '8784', raw: '8784' });
});

test('a bad markup is refused in one line that names the problem', async (t) => {
  const refused = async (values: string) => {
    const error = await t.throwsAsync(db.query(`INSERT INTO ai_cost.markups (tenant_id, provider, model, percent, per_call, valid_from) VALUES ${values}`));
    return error!.message;
  };
  t.is(await refused(`('acme', 'bl', NULL, 15, 0, '2025-02-01')`),
    'conflicting key value violates exclusion constraint "markups for one tenant and scope must not overlap in time"');
  t.is(await refused(`(NULL, NULL, NULL, -150, 0, '2025-02-01')`),
    'new row for relation "markups" violates check constraint "markup percent must be from -100 to 10000"');
  t.is(await refused(`(NULL, NULL, NULL, 'NaN', 0, '2025-02-01')`),
    'new row for relation "markups" violates check constraint "markup percent must be from -100 to 10000"');
  t.is(await refused(`(NULL, NULL, 'alpha', 5, 0, '2025-02-01')`),
    'new row for relation "markups" violates check constraint "a markup for a model needs its provider"');
  t.is(await refused(`('', NULL, NULL, 5, 0, '2025-02-01')`),
    'new row for relation "markups" violates check constraint "markup tenant_id must not be empty: NULL is every tenant"');
  t.is(await refused(`('zeta', NULL, NULL, 5, -1, '2025-02-01')`),
    'new row for relation "markups" violates check constraint "markup per_call and per_mtok must be from 0 to 1000 USD"');
});

test('ai-cost report shows what each tenant was billed beside its cost, and "not billed" apart from $0.00', async (t) => {
  await db.query(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens)
    VALUES ('bl', 'alpha', 'report-a', '2025-08-02 10:00Z', 1001, 37),
           ('bl', 'alpha', 'report-a', '2025-08-02 11:00Z', 1001, 37),
           ('bl', 'unknown', 'report-b', '2025-08-02 11:00Z', 1001, 37)`);
  const args = ['report', '--since', '2025-08-02', '--until', '2025-08-03', '--by', 'tenant', '--database-url', db.url];
  const json = await runCli([...args, '--format', 'json']);
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  t.deepEqual(rows.map((r) => [r.tenant, r.costMicros, r.billedMicros, r.unbilledCalls]), [
    // 2 x 2,298 cost; 2 x 2,758 billed by the every-tenant 20%.
    ['report-a', '4596', '5516', '0'],
    ['report-b', null, null, '1'],
  ]);
  const csv = await runCli([...args, '--format', 'csv']);
  const [head, a, b] = csv.stdout.trim().split('\n');
  t.is(head, 'tenant,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost,billed_micros,unbilled_calls');
  t.is(a, 'report-a,2,0,2002,74,4596,0,1,5516,0');
  t.is(b, 'report-b,1,0,1001,37,,1,,,1');
  const table = await runCli(args);
  t.regex(table.stdout, /│\s+billed │ not billed │/);
  t.regex(table.stdout, /report-a .*\$0\.004596 .*\$0\.005516 │\s+│/);
  t.regex(table.stdout, /report-b .*unpriced .*not billed │\s+1 │/);
  t.regex(table.stdout, /total .*≥ \$0\.004596 .*≥ \$0\.005516 │\s+1 │/, 'totals that leave calls out read as at least');
  t.regex(table.stdout, /1 call\(s\) are not billed/);

  const folder = await mkdtemp(join(tmpdir(), 'billing-html-'));
  try {
    const html = await runCli([...args.filter((arg) => arg !== '--by' && arg !== 'tenant'), '--html', join(folder, 'report.html')]);
    t.is(html.code, 0, html.stderr);
    const page = await readFile(join(folder, 'report.html'), 'utf8');
    const tenants = /<table id="by-tenant">[\s\S]*?<\/table>/.exec(page)![0];
    t.regex(tenants, /<th scope="col" class="num">Billed \(USD\)<\/th><th scope="col" class="num">Not billed<\/th>/);
    t.regex(tenants, /<th scope="row">report-a<\/th>.*<td class="num">\$0\.005516<\/td><td class="num">0<\/td><\/tr>/);
    t.regex(tenants, /<th scope="row">report-b<\/th>.*<td class="num unpriced">not billed<\/td><td class="num">1<\/td><\/tr>/);
    t.regex(tenants, /<tfoot><tr><th scope="row" colspan="1">Total<\/th>.*<td class="num">≥ \$0\.004596<\/td>.*<td class="num">≥ \$0\.005516<\/td><td class="num">1<\/td><\/tr><\/tfoot>/);
    t.regex(page, /<div class="figure">Billed to tenants<b>≥ \$0\.005516<\/b>/);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

test('calls made now are billed from the compiled markups exactly as the query over ai_cost.markups bills them', async (t) => {
  // Prices of provider bk; bk/alpha-snap is priced as bk/alpha.
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
    VALUES ('bk', 'alpha', '2025-01-01', 2, 8), ('bk', 'beta', '2025-01-01', 1.10, 4.40), ('bk', 'gamma', '2025-01-01', 3, 15);
    INSERT INTO ai_cost.model_aliases (provider, alias, model) VALUES ('bk', 'alpha-snap', 'alpha');
    INSERT INTO ai_cost.markups (tenant_id, provider, model, percent, per_call, per_mtok, note)
    VALUES ('bk-t1', 'bk', 'alpha', 7, 0, 0, 'bk-t1 alpha'),
           ('bk-t1', 'bk', NULL, 3, 0.0005, 0, 'bk-t1 bk'),
           ('bk-t2', NULL, NULL, 11, 0, 0.2, 'bk-t2 everything'),
           (NULL, 'bk', 'beta', 13, 0, 0, 'beta for everyone'),
           (NULL, 'bk', NULL, 17, 0, 0, 'bk for everyone');`);
  const [window] = await db.query<{ covers_now: boolean }>(`
    SELECT (ai_cost_internal.markup_book_window())[1] <= now() AND now() < (ai_cost_internal.markup_book_window())[2] AS covers_now`);
  t.true(window!.covers_now, 'the compiled markups hold for calls made now');
  const calls: Array<[string | null, string, string, string]> = [
    ['bk-t1', 'bk', 'alpha', 'bk-t1 alpha'],
    ['bk-t1', 'bk', 'gamma', 'bk-t1 bk'],
    // Priced as alpha: the tenant's alpha markup covers it.
    ['bk-t1', 'bk', 'alpha-snap', 'bk-t1 alpha'],
    ['bk-t2', 'bk', 'alpha', 'bk-t2 everything'],
    ['bk-t3', 'bk', 'beta', 'beta for everyone'],
    ['bk-t3', 'bk', 'gamma', 'bk for everyone'],
    [null, 'bk', 'alpha', 'bk for everyone'],
    ['', 'bk', 'beta', 'beta for everyone'],
    ['bk-t3', 'bl', 'alpha', 'resale'],
    ['bk-t3', 'bk', 'unknown', ''],
  ];
  const values = calls.map(([tenant, provider, model], i) => ({ tenant_id: tenant, provider, model, input_tokens: 1001, output_tokens: 37,
    status: i % 4 === 3 ? 'error' : 'success', request_id: `book-${i}` }));
  for (const call of values) {
    await db.query(`INSERT INTO ai_cost.calls (tenant_id, provider, model, input_tokens, output_tokens, status, request_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [call.tenant_id, call.provider, call.model, call.input_tokens, call.output_tokens, call.status, `${call.request_id}-single`]);
  }
  await db.query('SELECT ai_cost.insert_calls($1::jsonb)', [JSON.stringify(values.map((v) => ({ ...v, request_id: `${v.request_id}-batch` })))]);
  const rows = await db.query<{ request_id: string; stored: string | null; stored_markup: string | null; queried: string | null; queried_markup: string | null; note: string | null }>(`
    SELECT c.request_id, c.billed_micros::text AS stored, c.markup_id::text AS stored_markup,
           b.billed_micros::text AS queried, b.markup_id::text AS queried_markup, m.note
      FROM ai_cost.calls c
      LEFT JOIN LATERAL ai_cost_internal.billing_of(c.tenant_id, c.provider, c.model, c.price_id, c.status, c.created_at,
                                                    c.cost_micros, c.input_tokens, c.output_tokens) b ON true
      LEFT JOIN ai_cost.markups m ON m.id = c.markup_id
     WHERE c.request_id LIKE 'book-%'
     ORDER BY split_part(c.request_id, '-', 3), split_part(c.request_id, '-', 2)::int`);
  t.is(rows.length, 2 * calls.length);
  for (const row of rows) {
    const [, , , note] = calls[Number(row.request_id.split('-')[1])]!;
    t.is(row.note ?? '', note, `${row.request_id} is billed by ${note || 'no markup'}`);
    t.deepEqual([row.stored, row.stored_markup], [row.queried, row.queried_markup], `${row.request_id} as the query bills it`);
  }
  // Two charges by hand. bk-t1 alpha: 2,298 x 1.07 = 2,458.86 -> 2,459.
  // bk-t2 alpha, failed: 2,298 x 1.11 + 1,038 x 0.2 = 2,550.78 + 207.6 = 2,758.38 -> 2,759.
  t.is(rows.find((r) => r.request_id === 'book-0-single')!.stored, '2459');
  t.is(rows.find((r) => r.request_id === 'book-3-batch')!.stored, '2759');
});

test('ai-cost reprice re-bills a provider\'s calls up to now, as `prices set` suggests running it', async (t) => {
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('rb', 'm', '2025-01-01', 2, 8);
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens)
    VALUES ('rb', 'm', 'rb-tenant', now() - interval '1 hour', 1001, 37);
    INSERT INTO ai_cost.markups (tenant_id, provider, percent, valid_from, note)
    VALUES ('rb-tenant', 'rb', 50, now() - interval '1 day', 'rb agreed late');`);
  const window = ['--provider', 'rb', '--from', '2d', '--to', 'now', '--database-url', db.url];
  // A dry run counts the call whose cost stays and whose charge changes, and writes nothing.
  const dry = await runCli(['reprice', ...window, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^rb\/m: 1 of 1 calls change, \$0\.002298 -> \$0\.002298 \(delta \$0\.00 on 1 call\(s\) priced before and after\), 0 newly priced, 0 newly unpriced; charges: 1 re-billed, delta \$0\.000689$/m);
  t.regex(dry.stdout, /^dry run: 1 calls would change \(0 newly priced, 0 newly unpriced\), delta \$0\.00 on the calls priced before and after; charges: 1 re-billed, delta \$0\.000689; nothing was written$/m);
  const [unchanged] = await db.query<{ billed: string }>(`SELECT billed_micros::text AS billed FROM ai_cost.calls WHERE provider = 'rb'`);
  t.is(unchanged!.billed, '2758');
  const run = await runCli(['reprice', ...window, '--reason', 'rb agreed late']);
  t.is(run.code, 0, run.stderr);
  // The cost is unchanged; the charge rises by 3,447 - 2,758 micro-dollars.
  t.regex(run.stdout, /^reprice run \d+: 1 calls examined, 1 changed, delta \$0\.00 on the calls priced before and after; charges: 1 re-billed, delta \$0\.000689; every change is in ai_cost\.reprice_audit/m);
  // 2,298 x 1.5, where the every-tenant 20% gave 2,758 before.
  const [call] = await db.query<{ billed: string; old_billed: string }>(`
    SELECT c.billed_micros::text AS billed, a.old_billed_micros::text AS old_billed
      FROM ai_cost.calls c JOIN ai_cost.reprice_audit a ON a.call_id = c.id WHERE c.provider = 'rb'`);
  t.deepEqual(call, { billed: '3447', old_billed: '2758' });
});

test('a dry run predicts every charge the reprice then changes: re-billed, newly billed, no longer billed', async (t) => {
  const other = await createTestDatabase();
  try {
    // alpha costs 2,298 a call (above). Billed now: tenant kept at 10% (2,527.8 -> 2,528),
    // raised at 10% (2,528), dropped at 10% (2,528); new is not billed.
    await other.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('bl', 'alpha', '2025-01-01', 2, 8);
      INSERT INTO ai_cost.markups (tenant_id, percent, note) VALUES ('kept', 10, 'kept'), ('raised', 10, 'raised'), ('dropped', 10, 'dropped');
      INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens)
      SELECT 'bl', 'alpha', t, '2025-04-03', 1001, 37 FROM unnest(ARRAY['kept', 'raised', 'dropped', 'new']) AS t;
      -- raised: 50% (3,447, +919); new: at cost (2,298); dropped: no markup (was 2,528).
      UPDATE ai_cost.markups SET percent = 50 WHERE note = 'raised';
      INSERT INTO ai_cost.markups (tenant_id, percent) VALUES ('new', 0);
      DELETE FROM ai_cost.markups WHERE note = 'dropped';`);
    const window = { from: new Date('2025-04-03T00:00:00Z'), to: new Date('2025-04-04T00:00:00Z') };
    const [preview] = await previewReprice(other.pool, window);
    t.is(preview!.callsChanged, 3n);
    t.deepEqual(preview!.charges, {
      rebilled: 1n, deltaMicros: 919n, newlyBilled: 1n, newlyBilledMicros: 2_298n, noLongerBilled: 1n, noLongerBilledMicros: 2_528n,
    });
    t.is((await other.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost.reprice_audit'))[0]!.n, '0');
    const run = await runReprice(other.pool, (await startReprice(other.pool, { ...window, reason: 'markups changed' })).id);
    t.is(run.callsChanged, preview!.callsChanged);
    t.deepEqual(await repriceCharges(other.pool, run.id), preview!.charges);
  } finally {
    await other.drop();
  }
});

test('ai-cost doctor names the tenants whose recent calls have a cost that no markup bills', async (t) => {
  const other = await createTestDatabase();
  try {
    const url = ['--database-url', other.url];
    t.notRegex((await runCli(['doctor', ...url])).stdout, /^\w+ +billing:/m, 'without markups there is nothing to check');
    await other.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('dr', 'm', '2025-01-01', 2, 8);
      INSERT INTO ai_cost.markups (tenant_id, percent) VALUES ('billed', 10);
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      SELECT 'dr', 'm', t, 100, 10 FROM unnest(ARRAY['billed', 'forgotten', 'forgotten', NULL]) AS t;
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens) VALUES ('dr', 'unpriced', 'forgotten', 1, 1);`);
    const warned = await runCli(['doctor', ...url]);
    t.regex(warned.stdout, /^warn +billing: 3 call\(s\) of the last 7 days have a cost but no markup bills them \(tenant forgotten 2; \(no tenant\) 1\): give them a markup in ai_cost\.markups \(percent 0 bills at cost\), then `ai-cost reprice --from \S+ --to now` bills them$/m);
    await other.query(`INSERT INTO ai_cost.markups (percent) VALUES (0)`);
    const covered = await runCli(['doctor', ...url]);
    t.regex(covered.stdout, /^warn +billing: 3 call\(s\) .*: a markup of every call is in force, added after they were recorded: `ai-cost reprice --from \S+ --to now` bills them$/m,
      'with a markup of every call in force, only the reprice is left to do');
    const from = /--from (\S+) --to now/.exec(warned.stdout)![1]!;
    const dry = await runCli(['reprice', '--from', from, '--to', 'now', '--dry-run', ...url]);
    t.regex(dry.stdout, /; charges: 3 newly billed, \$0\.00084; nothing was written$/m);
    const billed = await runCli(['reprice', '--from', from, '--to', 'now', ...url]);
    t.is(billed.code, 0, billed.stderr);
    // At cost: 100 x $2 + 10 x $8 per million tokens = 280 micro-dollars, each of the three calls.
    t.regex(billed.stdout, /; charges: 3 newly billed, \$0\.00084; /);
    t.regex((await runCli(['doctor', ...url])).stdout, /^ok +billing: every call of the last 7 days that has a cost is billed by a markup$/m);
  } finally {
    await other.drop();
  }
});
