import type { TestDatabase } from './database.js';

/** A call's cost and why it has none, as stored. */
export interface PricedCall {
  id: string;
  cost: string | null;
  reason: string | null;
}

/** One call's cost through each way a call is priced. */
export interface CostEveryWay {
  book: string | null;
  lookup: string | null;
  batch: string | null;
}

/** The same cost through every way: what each case of a rate test expects. */
export const everywhere = (cost: string): CostEveryWay => ({ book: cost, lookup: cost, batch: cost });

/**
 * The ways a call of `provider` is priced, for tests of a billing dimension:
 * a single INSERT through the cost trigger (the compiled book, or the lookup
 * for `lookupTenant`, a tenant the setup gave a 0% discount so that the book
 * leaves it to the lookup) and a batch through ai_cost.insert_calls. `columns`
 * are the usage columns of ai_cost.calls the test sets.
 */
export function pricingPaths<Usage extends object>(db: TestDatabase, provider: string, columns: ReadonlyArray<keyof Usage & string>,
  lookupTenant = 'by-lookup') {
  let requests = 0;

  /** One call through the cost trigger (a single INSERT), for a tenant or none. */
  async function insert(model: string, usage: Usage, tenant: string | null = null): Promise<PricedCall> {
    const [row] = await db.query<{ id: string; cost: string | null; reason: string | null }>(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, ${columns.join(', ')})
      VALUES ($1, $2, $3, ${columns.map((_, i) => `$${i + 4}`).join(', ')})
      RETURNING id::text, cost_micros::text AS cost, unpriced_reason AS reason`,
    [provider, model, tenant, ...columns.map((c) => usage[c] ?? null)]);
    return row!;
  }

  /** The JSON array ai_cost.insert_calls takes, one call per model, each with a request id of its own. */
  function batchOf(calls: ReadonlyArray<readonly [string, Usage]>): { json: string; ids: string[] } {
    const ids = calls.map(() => `${provider}-${(requests += 1)}`);
    return { json: JSON.stringify(calls.map(([model, usage], i) => ({ provider, model, request_id: ids[i], ...usage }))), ids };
  }

  /** The stored cost of each call by request id, in the order given, read through `query`. */
  async function costsOf(query: (text: string, params: unknown[]) => Promise<Array<{ cost: string | null }>>, ids: string[]): Promise<Array<string | null>> {
    const rows = await query(`
      SELECT c.cost_micros::text AS cost FROM unnest($1::text[]) WITH ORDINALITY AS r(id, n)
        JOIN ai_cost.calls c ON c.request_id = r.id ORDER BY r.n`, [ids]);
    return rows.map((r) => r.cost);
  }

  /** The cost of each call through the trigger (book and lookup paths) and through insert_calls. */
  async function everyWay(calls: ReadonlyArray<readonly [string, Usage]>): Promise<CostEveryWay[]> {
    const book = await Promise.all(calls.map(([model, usage]) => insert(model, usage)));
    const lookup = await Promise.all(calls.map(([model, usage]) => insert(model, usage, lookupTenant)));
    const { json, ids } = batchOf(calls);
    await db.query('SELECT ai_cost.insert_calls($1::jsonb)', [json]);
    const batch = await costsOf((text, params) => db.query(text, params), ids);
    return calls.map((_, i) => ({ book: book[i]!.cost, lookup: lookup[i]!.cost, batch: batch[i]! }));
  }

  return { insert, batchOf, costsOf, everyWay };
}
