import test from 'ava';
import pg from 'pg';
import { migrate, MigrationFailedError, shippedMigrations } from '../src/migrate.js';
import { useTestDatabase } from './support/database.js';

// Organisation-wide discounts: rows of ai_cost.tenant_discounts without a
// tenant_id, percent off list prices for every call (an enterprise agreement,
// committed-use credits). One discount applies to a call, never two: a
// tenant's own price, then its narrowest discount, then the organisation's
// narrowest discount, then the list price. Every cost is worked out by hand.
//
// Prices from 2025-01-01, USD per 1M tokens = micro-dollars per token:
//   od/alpha  input 2,    output 8,    cache read 0.5
//   od/beta   input 1.10, output 4.40
//   od/soon   input 1.10, output 4.40
//   oe/gamma  input 3,    output 15
//   op/delta  as alpha
// Every call below has 1,001 input tokens (3 of them cache reads, for alpha
// and delta) and 37 output tokens. Its list cost:
//   alpha  998 x 2 + 37 x 8 + 3 x 0.5  = 1,996 + 296 + 1.5 = 2,293.5
//   beta   1,001 x 1.10 + 37 x 4.40    = 1,101.1 + 162.8  = 1,263.9
//   gamma  1,001 x 3 + 37 x 15         = 3,003 + 555      = 3,558
// Organisation discounts: 5% off everything from 2025-02-01, 10% off
// provider od, 20% off od/alpha from 2025-07-01. Tenant acme: 15% off
// provider od. Tenant globex: its own alpha price, input 1, output 4, cache
// read 0.25.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
      VALUES ('od', 'alpha', '2025-01-01', 2, 8, 0.5),
             ('od', 'beta',  '2025-01-01', 1.10, 4.40, NULL),
             ('od', 'soon',  '2025-01-01', 1.10, 4.40, NULL),
             ('oe', 'gamma', '2025-01-01', 3, 15, NULL),
             ('op', 'delta', '2025-01-01', 2, 8, 0.5);
      INSERT INTO ai_cost.prices (provider, model, valid_from, tenant_id, input_per_mtok, output_per_mtok, cache_read_per_mtok)
      VALUES ('od', 'alpha', '2025-01-01', 'globex', 1, 4, 0.25);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, model, percent_off, valid_from, note)
      VALUES (NULL,   NULL, NULL,    5,  '2025-02-01', 'enterprise agreement'),
             (NULL,   'od', NULL,    10, '-infinity',  'od committed use'),
             (NULL,   'od', 'alpha', 20, '2025-07-01', 'alpha volume tier'),
             ('acme', 'od', NULL,    15, '-infinity',  'acme brings its own od contract');`);
  },
});

/** The id of the discount whose note is `note`. */
async function discountId(note: string): Promise<string> {
  const [row] = await db.query<{ id: string }>('SELECT id::text FROM ai_cost.tenant_discounts WHERE note = $1', [note]);
  return row!.id;
}

interface Priced { id: string; cost: string | null; price_id: string | null; discount_id: string | null }

/** One call of `model` with the usage above through the cost trigger (a single INSERT), at now() unless `at`. */
async function insert(model: string, options: { tenant?: string | null; at?: string } = {}): Promise<Priced> {
  const cacheRead = model === 'alpha' || model === 'delta' ? 3 : null;
  const [row] = await db.query<Priced>(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, created_at, input_tokens, output_tokens, cache_read_tokens)
    VALUES ($1, $2, $3, coalesce($4::timestamptz, now()), 1001, 37, $5)
    RETURNING id::text, cost_micros::text AS cost, price_id::text, discount_id::text`,
  [model === 'gamma' ? 'oe' : model === 'delta' ? 'op' : 'od', model, options.tenant ?? null,
    options.at ?? null, cacheRead]);
  return row!;
}

/** The id of `model`'s list price, or of the tenant's own price. */
async function listPriceId(model: string, tenant: string | null = null): Promise<string> {
  const [row] = await db.query<{ id: string }>(
    'SELECT id::text FROM ai_cost.prices WHERE model = $1 AND tenant_id IS NOT DISTINCT FROM $2', [model, tenant]);
  return row!.id;
}

test('the narrowest organisation discount applies to every call, whatever its tenant, rounded up once', async (t) => {
  const alphaModel = await discountId('alpha volume tier');
  const od = await discountId('od committed use');
  const everything = await discountId('enterprise agreement');
  // The compiled book holds alpha at 20% off (1.6, 6.4 and 0.4 USD per 1M
  // tokens, in picodollars per token), so a call now is priced without a query.
  const [book] = await db.query(`
    SELECT i[s][1]::text AS price_id, r[s:s][1:3] AS rates, i[s][2]::text AS discount_id
      FROM (SELECT ai_cost_internal.price_book_rates() AS r, ai_cost_internal.price_book_ids() AS i,
                   ai_cost_internal.price_book_slot('od standard alpha') AS s) b`);
  t.deepEqual(book, { price_id: await listPriceId('alpha'), rates: [['1600000', '6400000', '400000']], discount_id: alphaModel });
  // alpha now: 20% off, 0.8 x 2,293.5 = 1,834.8 -> 1,835 (rounding each component up first would give
  // 1,596.8 -> 1,597, 236.8 -> 237, 1.2 -> 2: 1,836)
  for (const tenant of [null, 'initech']) {
    const call = await insert('alpha', { tenant });
    t.deepEqual([call.cost, call.price_id, call.discount_id], ['1835', await listPriceId('alpha'), alphaModel], `tenant ${tenant}`);
  }
  // beta: od's 10%, the narrowest that covers it: 0.9 x 1,263.9 = 1,137.51 -> 1,138
  t.deepEqual(await insert('beta').then((c) => [c.cost, c.discount_id]), ['1138', od]);
  // gamma (provider oe): only the 5% on everything: 0.95 x 3,558 = 3,380.1 -> 3,381
  t.deepEqual(await insert('gamma', { tenant: 'initech' }).then((c) => [c.cost, c.discount_id]), ['3381', everything]);
});

test('a discount that starts mid-period applies from its first instant, to history and to calls a day ahead', async (t) => {
  const alphaModel = await discountId('alpha volume tier');
  const od = await discountId('od committed use');
  // Before 2025-07-01 alpha has od's 10%: 0.9 x 2,293.5 = 2,064.15 -> 2,065; from then on 20%: 1,835.
  const before = await insert('alpha', { at: '2025-06-30T23:59:59.999999Z' });
  const from = await insert('alpha', { at: '2025-07-01T00:00:00Z' });
  t.deepEqual([before.cost, before.discount_id], ['2065', od]);
  t.deepEqual([from.cost, from.discount_id], ['1835', alphaModel]);
  // Before the 5% on everything starts, gamma is at list: 3,558.
  t.deepEqual(await insert('gamma', { at: '2025-01-15T12:00:00Z' }).then((c) => [c.cost, c.discount_id]), ['3558', null]);

  // A discount on soon from an hour ahead: the compiled book holds soon at
  // od's 10% only until then. 0.9 x 1,263.9 -> 1,138 now; 0.7 x 1,263.9 =
  // 884.73 -> 885 two hours ahead, by a single INSERT and by insert_calls.
  const [{ id: soonId }] = await db.query<{ id: string }>(`
    INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, model, percent_off, valid_from)
    VALUES (NULL, 'od', 'soon', 30, now() + interval '1 hour') RETURNING id::text`) as [{ id: string }];
  t.deepEqual(await insert('soon').then((c) => [c.cost, c.discount_id]), ['1138', od]);
  const ahead = await insert('soon', { at: new Date(Date.now() + 2 * 3_600_000).toISOString() });
  t.deepEqual([ahead.cost, ahead.discount_id], ['885', soonId]);
  await db.query(`SELECT ai_cost.insert_calls(jsonb_build_array(jsonb_build_object(
    'provider', 'od', 'model', 'soon', 'created_at', now() + interval '2 hours', 'input_tokens', 1001, 'output_tokens', 37,
    'request_id', 'soon-ahead')))`);
  const [batched] = await db.query(`SELECT cost_micros::text AS cost, discount_id::text FROM ai_cost.calls WHERE request_id = 'soon-ahead'`);
  t.deepEqual(batched, { cost: '885', discount_id: soonId });
});

test('a tenant discount or a tenant price replaces the organisation discount: one discount, never compounded', async (t) => {
  // acme's 15% off od: 0.85 x 2,293.5 = 1,949.475 -> 1,950. Not the organisation's 20% (1,835), and
  // not both (0.85 x 0.8 x 2,293.5 = 1,559.58 -> 1,560).
  const acme = await insert('alpha', { tenant: 'acme' });
  t.deepEqual([acme.cost, acme.price_id, acme.discount_id],
    ['1950', await listPriceId('alpha'), await discountId('acme brings its own od contract')]);
  // acme on gamma: its discount is for od only, so the organisation's 5% applies: 3,381.
  t.deepEqual(await insert('gamma', { tenant: 'acme' }).then((c) => [c.cost, c.discount_id]),
    ['3381', await discountId('enterprise agreement')]);
  // globex's own alpha price, undiscounted: 998 x 1 + 37 x 4 + 3 x 0.25 = 998 + 148 + 0.75 = 1,146.75 -> 1,147
  const globex = await insert('alpha', { tenant: 'globex' });
  t.deepEqual([globex.cost, globex.price_id, globex.discount_id], ['1147', await listPriceId('alpha', 'globex'), null]);
  // globex on beta has no price of its own there: the organisation's 10%, 1,138.
  t.deepEqual(await insert('beta', { tenant: 'globex' }).then((c) => c.cost), '1138');
});

// Serial, so before the others: disabling the trigger locks the calls table.
test.serial('insert_calls prices organisation discounts in its own statement, with the discount named', async (t) => {
  const [alphaModel, od, everything, acmeOd] = await Promise.all(
    ['alpha volume tier', 'od committed use', 'enterprise agreement', 'acme brings its own od contract'].map(discountId));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    // With the cost trigger disabled (rolled back), whatever has a cost, insert_calls priced itself.
    await client.query('BEGIN; ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call');
    const calls = [
      { provider: 'od', model: 'alpha', input_tokens: 1001, output_tokens: 37, cache_read_tokens: 3, request_id: 'b-alpha' },
      { provider: 'od', model: 'alpha', tenant_id: 'initech', input_tokens: 1001, output_tokens: 37, cache_read_tokens: 3, request_id: 'b-alpha-initech' },
      { provider: 'od', model: 'beta', input_tokens: 1001, output_tokens: 37, request_id: 'b-beta' },
      { provider: 'oe', model: 'gamma', input_tokens: 1001, output_tokens: 37, request_id: 'b-gamma' },
      // Tenant terms are left to the trigger: no cost here.
      { provider: 'od', model: 'alpha', tenant_id: 'acme', input_tokens: 1001, output_tokens: 37, cache_read_tokens: 3, request_id: 'b-alpha-acme' },
    ];
    await client.query('SELECT ai_cost.insert_calls($1::jsonb)', [JSON.stringify(calls)]);
    // A row without a cost is the trigger's to price, discount_id included.
    const { rows } = await client.query<{ request_id: string; cost: string | null; discount_id: string | null }>(`
      SELECT request_id, cost_micros::text AS cost, CASE WHEN cost_micros IS NOT NULL THEN discount_id::text END AS discount_id
        FROM ai_cost.calls
       WHERE request_id LIKE 'b-%' ORDER BY request_id`);
    t.deepEqual(rows, [
      { request_id: 'b-alpha', cost: '1835', discount_id: alphaModel },
      { request_id: 'b-alpha-acme', cost: null, discount_id: null },
      { request_id: 'b-alpha-initech', cost: '1835', discount_id: alphaModel },
      { request_id: 'b-beta', cost: '1138', discount_id: od },
      { request_id: 'b-gamma', cost: '3381', discount_id: everything },
    ]);
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
  // With the trigger, acme's call gets its own discount: 1,950.
  await db.query(`SELECT ai_cost.insert_calls('[{"provider": "od", "model": "alpha", "tenant_id": "acme", "input_tokens": 1001,
                   "output_tokens": 37, "cache_read_tokens": 3, "request_id": "acme-batch"}]')`);
  const [acme] = await db.query(`SELECT cost_micros::text AS cost, discount_id::text FROM ai_cost.calls WHERE request_id = 'acme-batch'`);
  t.deepEqual(acme, { cost: '1950', discount_id: acmeOd });
});

test('explain_cost names the organisation discount and shows each component after it', async (t) => {
  const call = await insert('alpha');
  const rows = await db.query<{ component: string; micros: string; detail: string | null }>(
    'SELECT component, trim_scale(micros)::text AS micros, detail FROM ai_cost.explain_cost($1::bigint)', [call.id]);
  const alphaModel = await discountId('alpha volume tier');
  t.true(rows[0]!.detail!.includes(`organisation discount ${alphaModel}: 20% off`), rows[0]!.detail!);
  // 998 x 2 x 0.8 = 1,596.8; 3 x 0.5 x 0.8 = 1.2; 37 x 8 x 0.8 = 236.8; total 1,834.8 -> 1,835
  t.deepEqual(rows.slice(1).map((r) => [r.component, r.micros]),
    [['input', '1596.8'], ['cache read', '1.2'], ['output', '236.8'], ['total', '1835']]);
  const acme = await db.query<{ detail: string }>(
    `SELECT detail FROM ai_cost.explain_cost('od', 'alpha', now(), 1001, 37, 3, tenant_id => 'acme') LIMIT 1`);
  t.regex(acme[0]!.detail, /tenant acme discount \d+: 15% off/);
});

test('a reprice applies a discount signed after the calls were recorded, from its start only', async (t) => {
  // delta has only the 5% on everything: 0.95 x 2,293.5 = 2,178.825 -> 2,179 per call.
  const everything = await discountId('enterprise agreement');
  const march = await insert('delta', { at: '2025-03-01T00:00:00Z' });
  const september = await insert('delta', { at: '2025-09-01T00:00:00Z' });
  t.deepEqual([march, september].map((c) => [c.cost, c.discount_id]), [['2179', everything], ['2179', everything]]);
  // op's own agreement, 25% from June, entered after the fact.
  const [{ id }] = await db.query<{ id: string }>(`
    INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off, valid_from, note)
    VALUES (NULL, 'op', 25, '2025-06-01', 'op agreement, signed late') RETURNING id::text`) as [{ id: string }];
  // Recorded calls keep their cost until repriced.
  t.deepEqual((await db.query(`SELECT cost_micros::text FROM ai_cost.calls WHERE id = $1`, [september.id]))[0], { cost_micros: '2179' });
  await db.query(`CALL ai_cost.reprice('2025-01-01', '2026-01-01', 'op agreement', provider => 'op')`);
  const after = await db.query<{ cost: string; discount_id: string | null }>(
    `SELECT cost_micros::text AS cost, discount_id::text FROM ai_cost.calls WHERE id IN ($1, $2) ORDER BY created_at`,
    [march.id, september.id]);
  // March, before it, is unchanged; September: 0.75 x 2,293.5 = 1,720.125 -> 1,721.
  t.deepEqual(after.map((c) => [c.cost, c.discount_id]), [['2179', everything], ['1721', id]]);
  const audit = await db.query(`SELECT call_id::text, old_cost_micros::text, new_cost_micros::text FROM ai_cost.reprice_audit
                                 WHERE reason = 'op agreement'`);
  t.deepEqual(audit, [{ call_id: september.id, old_cost_micros: '2179', new_cost_micros: '1721' }]);
});

test('organisation discounts of one scope must not overlap in time, and a tenant id is never empty', async (t) => {
  await t.throwsAsync(db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off, valid_from)
                                VALUES (NULL, 'od', 12, '2025-05-01')`),
  { message: /conflicting key value violates exclusion constraint "discounts for one tenant and scope must not overlap in time"/ });
  await t.throwsAsync(db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, percent_off) VALUES ('', 10)`),
    { message: /discount tenant_id must not be empty: NULL is every tenant/ });
  // A tenant's discount of the same scope is no overlap: it is the tenant's.
  await t.notThrowsAsync(db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('hooli', 'od', 12)`));
});

// Serial, so before the others: the attempt locks what the step would change.
// Down through the organisation discounts step: the later steps go first, and
// the whole run is one transaction, so the refusal undoes them too.
test.serial('migrating down past organisation discounts refuses, rather than drop contract terms', async (t) => {
  const shipped = await shippedMigrations();
  const count = shipped.length - shipped.indexOf('0009_organisation_discounts');
  await t.throwsAsync(migrate(db.url, { direction: 'down', count }),
    { instanceOf: MigrationFailedError, message: /holds organisation-wide discounts \(tenant_id NULL\), which the earlier schema cannot hold/ });
  const [kept] = await db.query(`SELECT count(*)::int AS n FROM ai_cost.tenant_discounts WHERE tenant_id IS NULL`);
  t.deepEqual(kept, { n: 3 });
});
