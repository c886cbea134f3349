import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

// Who decides what a call costs. A writer reports what happened (provider,
// model, tokens, whether its own cache answered); the database prices it.
// A cost the writer sends along (provided_cost_micros) is kept, beside the
// list cost, and becomes the call's cost only for a provider an admin marked
// as reporting its own cost (ai_cost.providers.reports_own_cost: OpenRouter
// in the catalog). An app-cache hit costs 0 and keeps its list cost beside.
const db = useTestDatabase(test);

/** gpt-4o-mini lists input at $0.15 per 1M tokens; OpenRouter's openai/gpt-4o at $2.50. */
const MINI_1M_INPUT = '150000';
const OPENROUTER_GPT_4O_1M_INPUT = '2500000';

/** Runs statements in one session as `role` (SET ROLE from the test's superuser); returns the last one's rows. */
async function as(role: string, ...statements: string[]): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`SET ROLE ${role}`);
    let rows: Record<string, unknown>[] = [];
    for (const statement of statements) rows = (await client.query(statement)).rows;
    return rows;
  } finally {
    await client.end();
  }
}
const asWriter = (...statements: string[]) => as('ai_cost_writer', ...statements);

interface Stored {
  cost_micros: string | null; computed_cost_micros: string | null; provided_cost_micros: string | null;
  price_id: string | null; unpriced_reason: string | null;
}
/** The stored call's cost columns, as text (to_jsonb, so that a column missing is undefined, not an error). */
const stored = async (requestId: string): Promise<Stored | undefined> => {
  const [row] = await db.query<{ call: Record<string, unknown> }>('SELECT to_jsonb(c) AS call FROM ai_cost.calls c WHERE request_id = $1', [requestId]);
  if (!row) return undefined;
  const text = (key: string) => (row.call[key] === null || row.call[key] === undefined ? row.call[key] : String(row.call[key])) as string | null;
  return {
    cost_micros: text('cost_micros'), computed_cost_micros: text('computed_cost_micros'), provided_cost_micros: text('provided_cost_micros'),
    price_id: text('price_id'), unpriced_reason: text('unpriced_reason'),
  };
};
const batch = (...calls: object[]) => `SELECT ai_cost.insert_calls('${JSON.stringify(calls)}'::jsonb)`;

test.serial('a writer reporting a cost of 1 for a 1M-token OpenAI call gets the list cost, with its own number kept beside', async (t) => {
  await asWriter(
    `INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, provided_cost_micros)
     VALUES ('openai', 'gpt-4o-mini', 'forged-insert', 1000000, 1)`,
    batch({ provider: 'openai', model: 'gpt-4o-mini', request_id: 'forged-batch', input_tokens: 1000000, provided_cost_micros: 1 }));
  for (const requestId of ['forged-insert', 'forged-batch']) {
    const row = await stored(requestId);
    t.like(row, { cost_micros: MINI_1M_INPUT, computed_cost_micros: MINI_1M_INPUT, provided_cost_micros: '1', unpriced_reason: null }, requestId);
    t.not(row?.price_id, null, requestId);
  }
});

test.serial('OpenRouter reports its own cost: that is the bill, and the list cost stays beside it', async (t) => {
  t.deepEqual(await db.query('SELECT id FROM ai_cost.providers WHERE reports_own_cost ORDER BY id'), [{ id: 'openrouter' }]);
  await asWriter(
    `INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, provided_cost_micros)
     VALUES ('openrouter', 'openai/gpt-4o', 'openrouter-insert', 1000000, 2400000),
            ('openrouter', 'some/unlisted-model', 'openrouter-unlisted', 1000, 4321)`,
    batch({ provider: 'openrouter', model: 'openai/gpt-4o', request_id: 'openrouter-batch', input_tokens: 1000000, provided_cost_micros: 2400000 }));
  for (const requestId of ['openrouter-insert', 'openrouter-batch']) {
    const row = await stored(requestId);
    t.like(row, { cost_micros: '2400000', computed_cost_micros: OPENROUTER_GPT_4O_1M_INPUT, unpriced_reason: null }, requestId);
    t.not(row?.price_id, null, 'price_id names the list price of computed_cost_micros');
  }
  t.deepEqual(await as('ai_cost_reader', `SELECT cost_micros, computed_cost_micros, provided_cost_micros FROM ai_cost.calls WHERE request_id = 'openrouter-insert'`),
    [{ cost_micros: '2400000', computed_cost_micros: OPENROUTER_GPT_4O_1M_INPUT, provided_cost_micros: '2400000' }],
    'a dashboard can compare the two');
  // No list price: the reported cost is still the bill; the list cost is unknown (NULL), not 0.
  t.like(await stored('openrouter-unlisted'), { cost_micros: '4321', computed_cost_micros: null, price_id: null, unpriced_reason: null });
  // Without a reported cost an OpenRouter call is priced from the list like any other.
  await asWriter(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens)
                  VALUES ('openrouter', 'openai/gpt-4o', 'openrouter-unreported', 1000000)`);
  t.like(await stored('openrouter-unreported'), { cost_micros: OPENROUTER_GPT_4O_1M_INPUT, computed_cost_micros: OPENROUTER_GPT_4O_1M_INPUT });
});

test.serial('which providers report their own cost is an admin\'s decision, not a writer\'s', async (t) => {
  await t.throwsAsync(asWriter(`UPDATE ai_cost.providers SET reports_own_cost = true WHERE id = 'openai'`), { message: /permission denied/ });
  await t.throwsAsync(asWriter(`INSERT INTO ai_cost.providers (id, name, reports_own_cost) VALUES ('mygateway', 'Mine', true)`),
    { message: /permission denied/ });
  await as('ai_cost_admin', `INSERT INTO ai_cost.providers (id, name, reports_own_cost) VALUES ('billing-gateway', 'A gateway that bills', true)`);
  await asWriter(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, provided_cost_micros)
                  VALUES ('billing-gateway', 'any', 'gateway-1', 10, 77)`);
  t.like(await stored('gateway-1'), { cost_micros: '77', computed_cost_micros: null, unpriced_reason: null });
});

test.serial('an app-cache hit costs 0, keeps what the provider call would have cost, and is counted apart', async (t) => {
  await asWriter(
    `INSERT INTO ai_cost.calls (provider, model, request_id, feature, input_tokens, cached)
     VALUES ('openai', 'gpt-4o-mini', 'cache-insert', 'app-cache', 1000000, true)`,
    batch({ provider: 'openai', model: 'gpt-4o-mini', request_id: 'cache-batch', feature: 'app-cache', input_tokens: 1000000, cached: true }),
    // A cache hit with a reported cost: no provider call was made, so nothing was billed.
    `INSERT INTO ai_cost.calls (provider, model, request_id, feature, input_tokens, cached, provided_cost_micros)
     VALUES ('openrouter', 'openai/gpt-4o', 'cache-openrouter', 'app-cache', 1000000, true, 2400000)`);
  for (const requestId of ['cache-insert', 'cache-batch']) {
    t.like(await stored(requestId), { cost_micros: '0', computed_cost_micros: MINI_1M_INPUT, unpriced_reason: null }, requestId);
  }
  t.like(await stored('cache-openrouter'), { cost_micros: '0', computed_cost_micros: OPENROUTER_GPT_4O_1M_INPUT, provided_cost_micros: '2400000' });

  await db.query('SELECT ai_cost.refresh()');
  const rollup = await db.query(`SELECT cached, sum(calls)::int AS calls, sum(cost_micros)::bigint AS cost
                                   FROM ai_cost.calls_hourly WHERE feature = 'app-cache' GROUP BY cached`);
  t.deepEqual(rollup, [{ cached: true, calls: 3, cost: '0' }], 'the rollups show app-cache hits as a group of their own');
});

test.serial('setting cost_micros, computed_cost_micros or price_id directly forges nothing, with or without the batch function\'s setting', async (t) => {
  const [price] = await db.query<{ id: string }>(`SELECT id FROM ai_cost.prices WHERE provider = 'openai' AND model = 'gpt-4o' AND valid_to IS NULL AND service_tier = 'standard' AND tenant_id IS NULL`);
  await asWriter(
    `SELECT set_config('ai_cost.inserting_priced_calls', 'on', false)`,
    `INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, cost_micros, computed_cost_micros, price_id)
     VALUES ('openai', 'gpt-4o-mini', 'direct-cost', 1000000, 1, 1, ${price!.id})`,
    batch({ provider: 'openai', model: 'gpt-4o-mini', request_id: 'direct-batch', input_tokens: 1000000,
            cost_micros: 1, computed_cost_micros: 1, price_id: Number(price!.id) }));
  for (const requestId of ['direct-cost', 'direct-batch']) {
    const row = await stored(requestId);
    t.like(row, { cost_micros: MINI_1M_INPUT, computed_cost_micros: MINI_1M_INPUT }, requestId);
    t.not(row?.price_id, price!.id, requestId);
  }
  await t.throwsAsync(asWriter(`UPDATE ai_cost.calls SET provided_cost_micros = 1 WHERE request_id = 'direct-cost'`), { message: /permission denied/ });
  // An admin's UPDATE of the cost columns is priced again by the trigger.
  await db.query(`UPDATE ai_cost.calls SET cost_micros = 1, computed_cost_micros = 1 WHERE request_id = 'direct-cost'`);
  t.like(await stored('direct-cost'), { cost_micros: MINI_1M_INPUT, computed_cost_micros: MINI_1M_INPUT });
});

test.serial('explain_cost of a recorded call shows the list cost and which number became cost_micros', async (t) => {
  const explain = async (requestId: string) => db.query<{ component: string; micros: string | null; detail: string | null }>(
    `SELECT component, micros::text, detail FROM ai_cost.explain_cost((SELECT id FROM ai_cost.calls WHERE request_id = $1))`, [requestId]);
  const forged = await explain('forged-insert');
  t.like(forged.find((row) => row.component === 'total'), { micros: MINI_1M_INPUT });
  t.regex(forged.at(-1)!.detail!, /openai is not marked as reporting its own cost/);
  t.is(forged.at(-1)!.micros, '1');

  const openrouter = await explain('openrouter-insert');
  t.like(openrouter.find((row) => row.component === 'total'), { micros: OPENROUTER_GPT_4O_1M_INPUT });
  t.like(openrouter.at(-1), { component: 'cost reported by the provider', micros: '2400000' });

  const cached = await explain('cache-insert');
  t.like(cached.find((row) => row.component === 'total'), { micros: MINI_1M_INPUT });
  t.like(cached.at(-1), { component: 'app cache hit', micros: '0' });
});

test.serial('a reprice computes what the trigger stored: nothing to change', async (t) => {
  const [preview] = await db.query<{ changed: string }>(
    `SELECT coalesce(sum(calls_changed), 0)::text AS changed FROM ai_cost.reprice_preview('-infinity', 'infinity')`);
  t.is(preview?.changed, '0');
  const mismatches = await db.query(`
    SELECT c.request_id FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
     WHERE (c.cost_micros, c.computed_cost_micros, c.price_id, c.discount_id, c.unpriced_reason)
           IS DISTINCT FROM (n.cost_micros, n.computed_cost_micros, n.price_id, n.discount_id, n.unpriced_reason)`);
  t.deepEqual(mismatches, []);
});
