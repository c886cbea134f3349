import { sql, type CommonQueryMethods, type DatabasePool, type FragmentSqlToken, type IdentifierSqlToken } from 'slonik';
import { z } from 'zod';
import { jsonb, timestamptz } from '../db.js';
import { SERVICE_TIERS, type PriceRow } from './price-row.js';

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'must be a non-negative decimal number').nullable();

/** A price as `ai-cost prices set` or the API takes it; rates in USD per 1M tokens. */
export const priceInputSchema = z
  .object({
    provider: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a canonical provider id such as openai'),
    model: z.string().min(1).max(500),
    serviceTier: z.enum(SERVICE_TIERS).default('standard'),
    aboveInputTokens: z.number().int().min(0).default(0),
    tenantId: z.string().min(1).nullable().default(null),
    validFrom: z.date().optional(),
    inputPerMtok: decimal.default(null),
    outputPerMtok: decimal.default(null),
    cacheReadPerMtok: decimal.default(null),
    cacheWritePerMtok: decimal.default(null),
    cacheWrite1hPerMtok: decimal.default(null),
    audioInputPerMtok: decimal.default(null),
    audioOutputPerMtok: decimal.default(null),
    unit: z.string().min(1).nullable().default(null),
    unitPrice: decimal.default(null),
    source: z.string().min(1).nullable().default(null),
  })
  .strict()
  .refine((p) => (p.unit === null) === (p.unitPrice === null), { message: 'and the unit price go together: give both or neither', path: ['unit'] })
  .refine((p) => [p.inputPerMtok, p.outputPerMtok, p.unitPrice].some((v) => v !== null), {
    message: 'give at least one of an input, output or unit price',
  });
export type PriceInput = z.input<typeof priceInputSchema>;

/** A price that cannot be stored; the message names each field and what is wrong with it. */
export class InvalidPriceError extends Error {
  override name = 'InvalidPriceError';
  constructor(readonly problems: Array<{ field: string | undefined; message: string }>, describe = (field: string) => field) {
    super(`invalid price: ${problems.map((p) => (p.field ? `${describe(p.field)} ${p.message}` : p.message)).join('; ')}`);
  }
}

/** Inserts one price, in force from validFrom (default now); the previous price for its key ends there. Returns the row id. */
export async function setPrice(db: CommonQueryMethods, input: PriceInput): Promise<bigint> {
  const parsed = priceInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidPriceError(parsed.error.issues.map((i) => ({ field: i.path.length ? i.path.join('.') : undefined, message: i.message })));
  }
  const p = parsed.data;
  return db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, tenant_id, valid_from,
      input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
      audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, source, checked_on)
    VALUES (${p.provider}, ${p.model}, ${p.serviceTier}, ${p.aboveInputTokens}, ${p.tenantId},
      ${p.validFrom ? timestamptz(p.validFrom) : sql.fragment`pg_catalog.now()`},
      ${p.inputPerMtok}, ${p.outputPerMtok}, ${p.cacheReadPerMtok}, ${p.cacheWritePerMtok}, ${p.cacheWrite1hPerMtok},
      ${p.audioInputPerMtok}, ${p.audioOutputPerMtok}, ${p.unit}, ${p.unitPrice}, ${p.source}, current_date)
    RETURNING id`);
}

const listedSchema = z.object({
  id: z.bigint(),
  provider: z.string(),
  model: z.string(),
  service_tier: z.string(),
  above_input_tokens: z.bigint(),
  tenant_id: z.string().nullable(),
  /** NULL for a price in force since always ('-infinity': a model's first known price applies to all earlier calls). */
  valid_from: z.date().nullable(),
  valid_to: z.date().nullable(),
  input_per_mtok: z.string().nullable(),
  output_per_mtok: z.string().nullable(),
  cache_read_per_mtok: z.string().nullable(),
  cache_write_per_mtok: z.string().nullable(),
  cache_write_1h_per_mtok: z.string().nullable(),
  audio_input_per_mtok: z.string().nullable(),
  audio_output_per_mtok: z.string().nullable(),
  unit: z.string().nullable(),
  unit_price: z.string().nullable(),
  source: z.string().nullable(),
  checked_on: z.string().nullable(),
});
export type ListedPrice = z.infer<typeof listedSchema>;

export interface ListOptions {
  provider?: string;
  /** Substring of the model id. */
  model?: string;
  /** Prices in force at this instant (default now); ignored with history. */
  at?: Date;
  /** Every row, past and future, instead of those in force. */
  history?: boolean;
}

/** Price rows in force at an instant (or all of them), ordered by provider, model, tier. */
export async function listPrices(db: CommonQueryMethods, options: ListOptions = {}): Promise<readonly ListedPrice[]> {
  const at = options.at ? timestamptz(options.at) : sql.fragment`pg_catalog.now()`;
  return db.any(sql.type(listedSchema)`
    SELECT id, provider, model, service_tier, above_input_tokens, tenant_id,
           CASE WHEN valid_from OPERATOR(pg_catalog.<>) '-infinity' THEN valid_from END AS valid_from, valid_to,
           input_per_mtok::pg_catalog.text, output_per_mtok::pg_catalog.text, cache_read_per_mtok::pg_catalog.text,
           cache_write_per_mtok::pg_catalog.text, cache_write_1h_per_mtok::pg_catalog.text,
           audio_input_per_mtok::pg_catalog.text, audio_output_per_mtok::pg_catalog.text,
           unit, unit_price::pg_catalog.text, source, checked_on::pg_catalog.text
      FROM ai_cost.prices
     WHERE (${options.provider ?? null}::pg_catalog.text IS NULL OR provider OPERATOR(pg_catalog.=) ${options.provider ?? null})
       AND (${options.model ?? null}::pg_catalog.text IS NULL
            OR pg_catalog.strpos(model, ${options.model ?? null}) OPERATOR(pg_catalog.>) 0)
       AND (${options.history ?? false}
            OR (valid_from OPERATOR(pg_catalog.<=) ${at} AND (valid_to IS NULL OR valid_to OPERATOR(pg_catalog.>) ${at})))
     ORDER BY provider, model, service_tier, above_input_tokens, tenant_id NULLS FIRST, valid_from`);
}

type ImportAction = 'added' | 'changed' | 'unchanged';

export interface ImportedRow {
  action: ImportAction;
  provider: string;
  model: string;
  serviceTier: string;
  aboveInputTokens: bigint;
  /** The list price in force before, for changed rows. */
  before: Record<string, string | null> | null;
}

export interface ImportOptions {
  /** When changed prices take effect (default now). A model's first price applies to all its earlier calls. */
  effective?: Date;
  /** Compare only; write nothing. */
  dryRun?: boolean;
}

const importedSchema = z.object({
  action: z.enum(['added', 'changed', 'unchanged']),
  provider: z.string(),
  model: z.string(),
  service_tier: z.string(),
  above_input_tokens: z.bigint(),
  before: z.record(z.string(), z.string().nullable()).nullable(),
});

/** The columns of a price, as opposed to its key. */
const PRICE_COLUMNS = [
  'input_per_mtok', 'output_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'cache_write_1h_per_mtok',
  'audio_input_per_mtok', 'audio_output_per_mtok', 'unit', 'unit_price',
] as const;

/**
 * a IS NOT DISTINCT FROM b, with the = of pg_catalog: IS NOT DISTINCT FROM
 * looks = up on the search_path, and this query may run on a pool of the
 * user's.
 */
function notDistinct(a: IdentifierSqlToken, b: IdentifierSqlToken): FragmentSqlToken {
  return sql.fragment`coalesce(${a} OPERATOR(pg_catalog.=) ${b}, ${a} IS NULL AND ${b} IS NULL)`;
}

/**
 * Writes list prices (tenant_id NULL) in one statement: a key with no price
 * yet is added from '-infinity' (its first known price), a key whose price in
 * force at `effective` differs gets a new row from `effective`, and an equal
 * price is left alone, so importing the same list twice changes nothing.
 */
export async function importPrices(
  pool: DatabasePool, rows: readonly PriceRow[], options: ImportOptions = {},
): Promise<ImportedRow[]> {
  const effective = options.effective ? timestamptz(options.effective) : sql.fragment`pg_catalog.now()`;
  const incoming = rows.map((r) => ({
    provider: r.provider, model: r.model, service_tier: r.serviceTier, above_input_tokens: r.aboveInputTokens,
    input_per_mtok: r.inputPerMtok, output_per_mtok: r.outputPerMtok, cache_read_per_mtok: r.cacheReadPerMtok,
    cache_write_per_mtok: r.cacheWritePerMtok, cache_write_1h_per_mtok: r.cacheWrite1hPerMtok,
    audio_input_per_mtok: r.audioInputPerMtok, audio_output_per_mtok: r.audioOutputPerMtok,
    unit: r.unit, unit_price: r.unitPrice, source: r.source,
  }));
  const sameKey = (p: string) => sql.fragment`${sql.identifier([p, 'provider'])} OPERATOR(pg_catalog.=) i.provider
    AND ${sql.identifier([p, 'model'])} OPERATOR(pg_catalog.=) i.model
    AND ${sql.identifier([p, 'service_tier'])} OPERATOR(pg_catalog.=) i.service_tier
    AND ${sql.identifier([p, 'above_input_tokens'])} OPERATOR(pg_catalog.=) i.above_input_tokens
    AND ${sql.identifier([p, 'tenant_id'])} IS NULL`;
  const samePrice = sql.join(PRICE_COLUMNS.map((column) => notDistinct(sql.identifier(['cur', column]), sql.identifier(['i', column]))),
    sql.fragment` AND `);
  const result = await pool.any(sql.type(importedSchema)`
    WITH incoming AS (
      SELECT * FROM pg_catalog.jsonb_to_recordset(${jsonb(incoming)}) AS r (
        provider pg_catalog.text, model pg_catalog.text, service_tier pg_catalog.text, above_input_tokens bigint,
        input_per_mtok numeric, output_per_mtok numeric, cache_read_per_mtok numeric, cache_write_per_mtok numeric,
        cache_write_1h_per_mtok numeric, audio_input_per_mtok numeric, audio_output_per_mtok numeric,
        unit pg_catalog.text, unit_price numeric, source pg_catalog.text)
    ),
    compared AS (
      SELECT i.*, cur.id AS current_id,
             EXISTS (SELECT FROM ai_cost.prices h WHERE ${sameKey('h')}) AS has_history,
             CASE WHEN cur.id IS NULL THEN 'added'
                  WHEN ${samePrice} THEN 'unchanged'
                  ELSE 'changed' END AS action,
             CASE WHEN cur.id IS NOT NULL THEN pg_catalog.jsonb_build_object(
               'input_per_mtok', cur.input_per_mtok::pg_catalog.text, 'output_per_mtok', cur.output_per_mtok::pg_catalog.text,
               'cache_read_per_mtok', cur.cache_read_per_mtok::pg_catalog.text,
               'cache_write_per_mtok', cur.cache_write_per_mtok::pg_catalog.text,
               'cache_write_1h_per_mtok', cur.cache_write_1h_per_mtok::pg_catalog.text,
               'audio_input_per_mtok', cur.audio_input_per_mtok::pg_catalog.text,
               'audio_output_per_mtok', cur.audio_output_per_mtok::pg_catalog.text,
               'unit', cur.unit, 'unit_price', cur.unit_price::pg_catalog.text) END AS before
        FROM incoming i
        LEFT JOIN LATERAL (
          SELECT p.* FROM ai_cost.prices p
           WHERE ${sameKey('p')}
             AND p.valid_from OPERATOR(pg_catalog.<=) ${effective}
             AND (p.valid_to IS NULL OR p.valid_to OPERATOR(pg_catalog.>) ${effective})
        ) cur ON true
    ),
    written AS (
      INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, valid_from,
        input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
        audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, source, checked_on)
      SELECT provider, model, service_tier, above_input_tokens,
             CASE WHEN has_history THEN ${effective} ELSE '-infinity' END,
             input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
             audio_input_per_mtok, audio_output_per_mtok, unit, unit_price, source, current_date
        FROM compared
       WHERE action OPERATOR(pg_catalog.<>) 'unchanged' AND NOT ${options.dryRun ?? false}
      RETURNING id
    )
    SELECT action, provider, model, service_tier, above_input_tokens, before
      FROM compared
     ORDER BY provider, model, service_tier, above_input_tokens`);
  return result.map((r) => ({
    action: r.action, provider: r.provider, model: r.model, serviceTier: r.service_tier,
    aboveInputTokens: r.above_input_tokens, before: r.before,
  }));
}
