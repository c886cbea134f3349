import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

// The compiled price book (sql/050_price_book.sql): current list prices as constants
// the cost trigger reads without a query. pricing-fast-path.test.ts holds its
// costs to ai_cost_internal.cost_of(); these tests hold what it contains to the price
// tables, at every moment a price can change.

const db = useTestDatabase(test);

interface BookEntry { price_id: string | null; stale_at: string }

/** The book's entry for "provider tier model": its price id (null when not compiled), and when the book goes stale. */
async function bookEntry(query: (text: string) => Promise<Array<Record<string, unknown>>>, key: string): Promise<BookEntry> {
  const [row] = await query(`
    SELECT (ai_cost_internal.price_book_ids())[s.slot][1]::text AS price_id, ai_cost_internal.price_book_stale_at()::text AS stale_at
      FROM (SELECT ai_cost_internal.price_book_slot('${key}') AS slot) s`);
  return row as unknown as BookEntry;
}

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return client;
}

test('the book holds the current list price of each model, and follows a price change inside its transaction', async (t) => {
  const [current] = await db.query<{ id: string }>(`
    SELECT id::text FROM ai_cost.prices
     WHERE provider = 'openai' AND model = 'gpt-4o-mini' AND service_tier = 'standard' AND tenant_id IS NULL
       AND above_input_tokens = 0 AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())`);
  t.is((await bookEntry(db.query, 'openai standard gpt-4o-mini')).price_id, current!.id);

  const client = await connect();
  try {
    await client.query('BEGIN');
    const { rows: [price] } = await client.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
      VALUES ('book', 'm', now() - interval '1 day', 3, 15) RETURNING id::text`);
    const inside = (text: string) => client.query(text).then((r) => r.rows);
    t.is((await bookEntry(inside, 'book standard m')).price_id, price.id);
    const { rows: [call] } = await client.query(`
      INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('book', 'm', 1000, 100)
      RETURNING cost_micros::text, price_id::text`);
    t.deepEqual(call, { cost_micros: '4500', price_id: price.id }); // 1,000 x 3 + 100 x 15
    // The book's table, which insert_calls reads, follows in the same transaction.
    const { rows: [batch] } = await client.query(`
      SELECT b.price_id::text, ai_cost.insert_calls('[{"provider": "book", "model": "m", "input_tokens": 1000, "output_tokens": 100, "request_id": "book-batch"}]')::int AS n
        FROM ai_cost_internal.price_book b WHERE b.key = 'book standard m'`);
    t.deepEqual(batch, { price_id: price.id, n: 1 });
    const { rows: [batched] } = await client.query(`SELECT cost_micros::text, price_id::text FROM ai_cost.calls WHERE request_id = 'book-batch'`);
    t.deepEqual(batched, { cost_micros: '4500', price_id: price.id });
    await client.query('ROLLBACK');
  } finally {
    await client.end();
  }
  t.is((await bookEntry(db.query, 'book standard m')).price_id, null);
});

test('a price that starts after the compile applies at once, and refresh() compiles it in', async (t) => {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('book', 'later', '2020-01-01', 1, 2)`);
  const [{ starts } = { starts: '' }] = await db.query<{ starts: string }>(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
    VALUES ('book', 'later', date_trunc('milliseconds', clock_timestamp() + interval '1.5 seconds'), 10, 20)
    RETURNING valid_from::text AS starts`);
  const before = await bookEntry(db.query, 'book standard later');
  t.is(before.stale_at, starts, 'the book knows when it goes stale');

  await db.query(`SELECT pg_sleep_until('${starts}'::timestamptz + interval '50 milliseconds')`);
  const [call] = await db.query(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('book', 'later', 1000, 100)
    RETURNING cost_micros::text, (SELECT valid_from::text FROM ai_cost.prices WHERE id = price_id) AS price_from`);
  t.deepEqual(call, { cost_micros: '12000', price_from: starts }); // the new price, before any recompile

  await db.query('SELECT ai_cost.refresh(false)');
  const after = await bookEntry(db.query, 'book standard later');
  t.not(after.price_id, before.price_id);
  const [newPrice] = await db.query<{ id: string }>(`SELECT id::text FROM ai_cost.prices WHERE provider = 'book' AND model = 'later' AND valid_to IS NULL`);
  t.is(after.price_id, newPrice!.id);
  t.is(after.stale_at, 'infinity');
});

test('what the book cannot hold is left to the lookup and priced the same', async (t) => {
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES
      ('book', 'with space', '2020-01-01', 1, 2),            -- a space would make keys ambiguous
      ('book', 'fine-rate', '2020-01-01', 0.0000001, 2),     -- not a whole number of picodollars per token
      ('book', 'dear', '2020-01-01', 1500, 3000);            -- above 1,000 USD per 1M tokens
    INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('book-tenant', 'book', 50);`);
  for (const key of ['book standard with space', 'book standard fine-rate', 'book standard dear']) {
    t.is((await bookEntry(db.query, key)).price_id, null, key);
  }
  const [{ has } = { has: false }] = await db.query<{ has: boolean }>(`SELECT ai_cost_internal.price_book_has_tenant('book-tenant') AS has`);
  t.true(has);

  const calls = await db.query<{ model: string; cost_micros: string; expected: string }>(`
    WITH c AS (
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens) VALUES
        ('book', 'with space', NULL, 1000, 100), ('book', 'fine-rate', NULL, 1000, 100), ('book', 'dear', NULL, 1000, 100),
        ('book', 'dear', 'book-tenant', 1000, 100), ('openai', 'gpt-4o-mini', NULL, 2000000000, 100)
      RETURNING *)
    SELECT c.model || coalesce(' for ' || c.tenant_id, '') AS model, c.cost_micros::text, n.cost_micros::text AS expected
      FROM c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n ORDER BY c.id`);
  t.deepEqual(calls.map((c) => [c.model, c.cost_micros]), [
    ['with space', '1200'], // 1,000 x 1 + 100 x 2
    ['fine-rate', '201'], // 1,000 x 0.0000001 = 0.0001, + 200, rounded up once
    ['dear', '1800000'],
    ['dear for book-tenant', '900000'],
    ['gpt-4o-mini', calls[4]!.expected], // more tokens than the book's integer arithmetic takes
  ]);
  t.true(calls.every((c) => c.cost_micros === c.expected));
});

test('price changes in two transactions at once take turns, and the book ends with both', async (t) => {
  const [first, second] = [await connect(), await connect()];
  try {
    await first.query('BEGIN');
    await first.query(`INSERT INTO ai_cost.prices (provider, model, input_per_mtok) VALUES ('book', 'one', 1)`);
    await second.query('BEGIN');
    // Waits for the first transaction's lock on the lookup, then compiles from what it committed.
    const secondInsert = second.query(`INSERT INTO ai_cost.prices (provider, model, input_per_mtok) VALUES ('book', 'two', 2)`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.query('COMMIT');
    await secondInsert;
    await second.query('COMMIT');
  } finally {
    await first.end();
    await second.end();
  }
  t.not((await bookEntry(db.query, 'book standard one')).price_id, null);
  t.not((await bookEntry(db.query, 'book standard two')).price_id, null);
});
