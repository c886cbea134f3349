import { sql, type CommonQueryMethods, type FragmentSqlToken, type IdentifierSqlToken } from 'slonik';
import { z } from 'zod';
import { jsonb, timestamptz } from '../db.js';
import { SERVICE_TIER_PATTERN, type PriceRow } from './price-row.js';

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'must be a non-negative decimal number').nullable();

/** The per-token rates of a price, by column. */
export const TOKEN_RATE_COLUMNS = [
  'input_per_mtok', 'output_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'cache_write_1h_per_mtok',
  'audio_input_per_mtok', 'audio_output_per_mtok', 'reasoning_per_mtok', 'cache_read_audio_per_mtok',
  'image_input_per_mtok', 'image_output_per_mtok', 'video_input_per_mtok',
] as const;
const tokenRate = z.enum(TOKEN_RATE_COLUMNS, { message: `must name a rate: ${TOKEN_RATE_COLUMNS.join(', ')}` });

const WHOLE_TOKENS = 'must be a whole number of input tokens, 0 or more';

/** A price as `ai-cost prices set` or the API takes it; rates in USD per 1M tokens. */
export const priceInputSchema = z
  .object({
    provider: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a canonical provider id such as openai'),
    model: z.string().min(1).max(500),
    serviceTier: z.string().max(100).regex(SERVICE_TIER_PATTERN, 'must be a service tier name such as standard, batch or fast').default('standard'),
    aboveInputTokens: z.number({ error: WHOLE_TOKENS }).int(WHOLE_TOKENS).min(0, WHOLE_TOKENS).default(0),
    tenantId: z.string().min(1, 'must name a tenant (leave it out for a price of every tenant)').nullable().default(null),
    validFrom: z.date().optional(),
    inputPerMtok: decimal.default(null),
    outputPerMtok: decimal.default(null),
    cacheReadPerMtok: decimal.default(null),
    cacheWritePerMtok: decimal.default(null),
    cacheWrite1hPerMtok: decimal.default(null),
    audioInputPerMtok: decimal.default(null),
    audioOutputPerMtok: decimal.default(null),
    reasoningPerMtok: decimal.default(null),
    cacheReadAudioPerMtok: decimal.default(null),
    imageInputPerMtok: decimal.default(null),
    imageOutputPerMtok: decimal.default(null),
    videoInputPerMtok: decimal.default(null),
    unit: z.string().min(1).nullable().default(null),
    unitPrice: decimal.default(null),
    /** Further units and their USD per unit, e.g. { web_search: '0.01' }. */
    unitPrices: z.record(z.string().min(1, 'must name each unit'), z.string().regex(/^\d+(\.\d+)?$/, 'must map each unit to a non-negative decimal number'))
      .nullable().default(null),
    /** A price of certain hours of each day: local times HH:MM in timeZone (an IANA zone), dailyTo before dailyFrom past midnight. */
    dailyFrom: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day such as 16:30').nullable().default(null),
    dailyTo: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day such as 00:30').nullable().default(null),
    timeZone: z.string().min(1).nullable().default(null),
    /**
     * Rates the provider bills as a multiple of another rate of this price,
     * declared (ai_cost.prices.rates_from), e.g. { cache_write_per_mtok:
     * { rate: 'input_per_mtok', times: '1.25' } }.
     */
    ratesFrom: z.record(z.string(), z.object({
      rate: tokenRate,
      times: z.string().regex(/^\d+(\.\d+)?$/, 'must be a multiple such as 1.25'),
    }).strict())
      .refine((rates) => Object.keys(rates).every((rate) => (TOKEN_RATE_COLUMNS as readonly string[]).includes(rate)), {
        message: `must declare rates: ${TOKEN_RATE_COLUMNS.join(', ')}`,
      })
      .nullable().default(null),
    source: z.string().min(1).nullable().default(null),
  })
  .strict()
  .refine((p) => (p.unit === null) === (p.unitPrice === null), { message: 'and the unit price go together: give both or neither', path: ['unit'] })
  .refine((p) => (p.dailyFrom === null) === (p.dailyTo === null) && (p.dailyFrom === null) === (p.timeZone === null), {
    message: 'a price of certain hours needs their start, their end and the time zone they are given in', path: ['dailyFrom'],
  })
  .refine((p) => [p.inputPerMtok, p.outputPerMtok, p.unitPrice].some((v) => v !== null) || Object.keys(p.unitPrices ?? {}).length > 0, {
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
  // INSERT ... SELECT, not VALUES: on a ledger distributed over Citus the
  // prices are a reference table, and Citus refuses subqueries in an
  // INSERT ... VALUES into one.
  return db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, tenant_id, valid_from,
      input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
      audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok,
      image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, unit, unit_price, unit_prices,
      daily_from, daily_to, time_zone, rates_from, source, checked_on)
    SELECT ${p.provider}, ${p.model}, ${p.serviceTier}, ${p.aboveInputTokens}, ${p.tenantId},
      ${p.validFrom ? timestamptz(p.validFrom) : sql.fragment`pg_catalog.now()`},
      ${p.inputPerMtok}, ${p.outputPerMtok}, ${p.cacheReadPerMtok}, ${p.cacheWritePerMtok}, ${p.cacheWrite1hPerMtok},
      ${p.audioInputPerMtok}, ${p.audioOutputPerMtok}, ${p.reasoningPerMtok}, ${p.cacheReadAudioPerMtok},
      ${p.imageInputPerMtok}, ${p.imageOutputPerMtok}, ${p.videoInputPerMtok}, ${p.unit}, ${p.unitPrice},
      -- Numbers as JSON numbers, from the exact decimal text.
      (SELECT pg_catalog.jsonb_object_agg(u.key, u.value::pg_catalog.numeric)
         FROM pg_catalog.jsonb_each_text(${p.unitPrices ? JSON.stringify(p.unitPrices) : null}::pg_catalog.jsonb) u),
      ${p.dailyFrom}::pg_catalog.time, ${p.dailyTo}::pg_catalog.time, ${p.timeZone},
      (SELECT pg_catalog.jsonb_object_agg(d.key, pg_catalog.jsonb_build_object('rate', d.value OPERATOR(pg_catalog.->>) 'rate',
                                                                             'times', (d.value OPERATOR(pg_catalog.->>) 'times')::pg_catalog.numeric))
         FROM pg_catalog.jsonb_each(${p.ratesFrom ? JSON.stringify(p.ratesFrom) : null}::pg_catalog.jsonb) d),
      ${p.source}, current_date
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
  reasoning_per_mtok: z.string().nullable(),
  cache_read_audio_per_mtok: z.string().nullable(),
  image_input_per_mtok: z.string().nullable(),
  image_output_per_mtok: z.string().nullable(),
  video_input_per_mtok: z.string().nullable(),
  unit: z.string().nullable(),
  unit_price: z.string().nullable(),
  /** Further units and their USD per unit, e.g. { web_search: '0.01' } (exact decimals as text). */
  unit_prices: z.record(z.string(), z.string()).nullable(),
  /** Rates declared as a multiple of another rate of the row, e.g. { cache_read_per_mtok: { rate: 'input_per_mtok', times: '1' } }. */
  rates_from: z.record(z.string(), z.object({ rate: z.string(), times: z.string() })).nullable(),
  /** For a price of certain hours of the day: from and until which local time (HH:MM:SS) in time_zone; null all day. */
  daily_from: z.string().nullable(),
  daily_to: z.string().nullable(),
  time_zone: z.string().nullable(),
  source: z.string().nullable(),
  checked_on: z.string().nullable(),
  /** The pg-ai-cost release whose catalog shipped the row. */
  catalog: z.string().nullable(),
  origin: z.enum(['catalog', 'price list', 'yours']),
});
export type ListedPrice = z.infer<typeof listedSchema>;

/** Who set a price: the built-in catalog, a price list (`prices sync` or `import`), or you. */
export type PriceOrigin = ListedPrice['origin'];

/** The columns of a listed price, -infinity (in force since always) as NULL. */
const LISTED_COLUMNS = sql.fragment`
  id, provider, model, service_tier, above_input_tokens, tenant_id,
  CASE WHEN valid_from OPERATOR(pg_catalog.<>) '-infinity' THEN valid_from END AS valid_from, valid_to,
  input_per_mtok::pg_catalog.text, output_per_mtok::pg_catalog.text, cache_read_per_mtok::pg_catalog.text,
  cache_write_per_mtok::pg_catalog.text, cache_write_1h_per_mtok::pg_catalog.text,
  audio_input_per_mtok::pg_catalog.text, audio_output_per_mtok::pg_catalog.text,
  reasoning_per_mtok::pg_catalog.text, cache_read_audio_per_mtok::pg_catalog.text,
  image_input_per_mtok::pg_catalog.text, image_output_per_mtok::pg_catalog.text, video_input_per_mtok::pg_catalog.text,
  unit, unit_price::pg_catalog.text,
  -- Numbers as text, so that a decimal stays exact in JavaScript.
  (SELECT pg_catalog.jsonb_object_agg(u.key, u.value OPERATOR(pg_catalog.#>>) '{}') FROM pg_catalog.jsonb_each(unit_prices) u) AS unit_prices,
  (SELECT pg_catalog.jsonb_object_agg(r.key, pg_catalog.jsonb_build_object(
            'rate', r.value OPERATOR(pg_catalog.->>) 'rate', 'times', r.value OPERATOR(pg_catalog.->>) 'times'))
     FROM pg_catalog.jsonb_each(rates_from) r) AS rates_from,
  daily_from::pg_catalog.text, daily_to::pg_catalog.text, time_zone,
  source, checked_on::pg_catalog.text, catalog,
  CASE WHEN catalog IS NOT NULL THEN 'catalog' WHEN from_price_list THEN 'price list' ELSE 'yours' END AS origin`;

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
    SELECT ${LISTED_COLUMNS}
      FROM ai_cost.prices
     WHERE (${options.provider ?? null}::pg_catalog.text IS NULL OR provider OPERATOR(pg_catalog.=) ${options.provider ?? null})
       AND (${options.model ?? null}::pg_catalog.text IS NULL
            OR pg_catalog.strpos(model, ${options.model ?? null}) OPERATOR(pg_catalog.>) 0)
       AND (${options.history ?? false}
            OR (valid_from OPERATOR(pg_catalog.<=) ${at} AND (valid_to IS NULL OR valid_to OPERATOR(pg_catalog.>) ${at})))
     ORDER BY provider, model, service_tier, above_input_tokens, tenant_id NULLS FIRST, prices.valid_from`);
}

/**
 * Every price row of one model (its exact id), past, current and future, of
 * every tier and tenant: oldest first, so it reads as the model's timeline.
 */
export async function priceHistory(db: CommonQueryMethods, provider: string, model: string): Promise<readonly ListedPrice[]> {
  return db.any(sql.type(listedSchema)`
    SELECT ${LISTED_COLUMNS}
      FROM ai_cost.prices
     WHERE provider OPERATOR(pg_catalog.=) ${provider} AND model OPERATOR(pg_catalog.=) ${model}
     ORDER BY prices.valid_from, service_tier, above_input_tokens, tenant_id NULLS FIRST`);
}

type ImportAction = 'added' | 'changed' | 'unchanged' | 'kept';

/** Rates of a price by column (exact decimal strings, null = not priced), unit included. */
export type PriceRates = Record<(typeof PRICE_COLUMNS)[number], string | null>;

export interface ImportedRow {
  /**
   * added: the key had no price in force; changed: a price list's price
   * (or, with overwrite, any) differed; unchanged: the same price is in
   * force; kept: a differing price of the catalog or of yours stays.
   */
  action: ImportAction;
  provider: string;
  model: string;
  serviceTier: string;
  aboveInputTokens: bigint;
  /** Who set the price in force at the effective instant; null when none is. */
  origin: PriceOrigin | null;
  /** The price in force at the effective instant; null when none is. */
  before: PriceRates | null;
  /** The list's price. */
  listed: PriceRates;
}

export interface ImportOptions {
  /** When changed prices take effect (default now). A model's first price applies to all its earlier calls. */
  effective?: Date;
  /** Compare only; write nothing. */
  dryRun?: boolean;
  /** Replace differing prices of the built-in catalog and your own too; by default they are kept. */
  overwrite?: boolean;
}

/** The columns of a price, as opposed to its key. */
const PRICE_COLUMNS = [...TOKEN_RATE_COLUMNS, 'unit', 'unit_price'] as const;

const ratesSchema = z.object(Object.fromEntries(PRICE_COLUMNS.map((c) => [c, z.string().nullable()])) as
  Record<(typeof PRICE_COLUMNS)[number], z.ZodNullable<z.ZodString>>);

const importedSchema = z.object({
  action: z.enum(['added', 'changed', 'unchanged', 'kept']),
  provider: z.string(),
  model: z.string(),
  service_tier: z.string(),
  above_input_tokens: z.bigint(),
  origin: z.enum(['catalog', 'price list', 'yours']).nullable(),
  before: ratesSchema.nullable(),
  listed: ratesSchema,
});

/**
 * a IS NOT DISTINCT FROM b, with the = of pg_catalog: IS NOT DISTINCT FROM
 * looks = up on the search_path, and this query may run on a pool of the
 * user's.
 */
function notDistinct(a: IdentifierSqlToken, b: IdentifierSqlToken): FragmentSqlToken {
  return sql.fragment`coalesce(${a} OPERATOR(pg_catalog.=) ${b}, ${a} IS NULL AND ${b} IS NULL)`;
}

/** The rates of the row `alias` as a jsonb object of exact decimal strings. */
function ratesOf(alias: string): FragmentSqlToken {
  return sql.fragment`pg_catalog.jsonb_build_object(${sql.join(PRICE_COLUMNS.map((column) =>
    sql.fragment`${column}::pg_catalog.text, ${sql.identifier([alias, column])}::pg_catalog.text`), sql.fragment`, `)})`;
}

/**
 * Writes a price list's prices (tenant_id NULL) in one statement, so all of
 * them or none (a dry run only reads, which every role may): a key with no price yet is added from '-infinity' (its first
 * known price), a key whose price in force at `effective` differs gets a new
 * row from `effective`, and an equal price is left alone, so importing the
 * same list twice changes nothing. A differing price that the built-in
 * catalog or you set is kept unless `overwrite`: a community list's mistake
 * never silently replaces a curated price. Rows written are marked
 * from_price_list, so the next list may replace them.
 */
export async function importPrices(
  pool: CommonQueryMethods, rows: readonly PriceRow[], options: ImportOptions = {},
): Promise<ImportedRow[]> {
  const effective = options.effective ? timestamptz(options.effective) : sql.fragment`pg_catalog.now()`;
  const incoming = rows.map((r) => ({
    provider: r.provider, model: r.model, service_tier: r.serviceTier, above_input_tokens: r.aboveInputTokens,
    input_per_mtok: r.inputPerMtok, output_per_mtok: r.outputPerMtok, cache_read_per_mtok: r.cacheReadPerMtok,
    cache_write_per_mtok: r.cacheWritePerMtok, cache_write_1h_per_mtok: r.cacheWrite1hPerMtok,
    audio_input_per_mtok: r.audioInputPerMtok, audio_output_per_mtok: r.audioOutputPerMtok,
    reasoning_per_mtok: r.reasoningPerMtok, cache_read_audio_per_mtok: r.cacheReadAudioPerMtok,
    image_input_per_mtok: r.imageInputPerMtok, image_output_per_mtok: r.imageOutputPerMtok, video_input_per_mtok: r.videoInputPerMtok,
    unit: r.unit, unit_price: r.unitPrice, source: r.source,
  }));
  const sameKey = (p: string) => sql.fragment`${sql.identifier([p, 'provider'])} OPERATOR(pg_catalog.=) i.provider
    AND ${sql.identifier([p, 'model'])} OPERATOR(pg_catalog.=) i.model
    AND ${sql.identifier([p, 'service_tier'])} OPERATOR(pg_catalog.=) i.service_tier
    AND ${sql.identifier([p, 'above_input_tokens'])} OPERATOR(pg_catalog.=) i.above_input_tokens
    AND ${sql.identifier([p, 'tenant_id'])} IS NULL
    AND ${sql.identifier([p, 'daily_from'])} IS NULL`;
  const samePrice = sql.join(PRICE_COLUMNS.map((column) => notDistinct(sql.identifier(['cur', column]), sql.identifier(['i', column]))),
    sql.fragment` AND `);
  const result = await pool.any(sql.type(importedSchema)`
    WITH incoming AS (
      SELECT * FROM pg_catalog.jsonb_to_recordset(${jsonb(incoming)}) AS r (
        provider pg_catalog.text, model pg_catalog.text, service_tier pg_catalog.text, above_input_tokens bigint,
        input_per_mtok numeric, output_per_mtok numeric, cache_read_per_mtok numeric, cache_write_per_mtok numeric,
        cache_write_1h_per_mtok numeric, audio_input_per_mtok numeric, audio_output_per_mtok numeric,
        reasoning_per_mtok numeric, cache_read_audio_per_mtok numeric, image_input_per_mtok numeric,
        image_output_per_mtok numeric, video_input_per_mtok numeric, unit pg_catalog.text, unit_price numeric, source pg_catalog.text)
    ),
    compared AS (
      SELECT i.*,
             EXISTS (SELECT FROM ai_cost.prices h WHERE ${sameKey('h')}) AS has_history,
             CASE WHEN cur.id IS NULL THEN 'added'
                  WHEN ${samePrice} THEN 'unchanged'
                  WHEN cur.from_price_list OR ${options.overwrite ?? false} THEN 'changed'
                  ELSE 'kept' END AS action,
             CASE WHEN cur.catalog IS NOT NULL THEN 'catalog'
                  WHEN cur.from_price_list THEN 'price list'
                  WHEN cur.id IS NOT NULL THEN 'yours' END AS origin,
             CASE WHEN cur.id IS NOT NULL THEN ${ratesOf('cur')} END AS before,
             ${ratesOf('i')} AS listed
        FROM incoming i
        LEFT JOIN LATERAL (
          SELECT p.* FROM ai_cost.prices p
           WHERE ${sameKey('p')}
             AND p.valid_from OPERATOR(pg_catalog.<=) ${effective}
             AND (p.valid_to IS NULL OR p.valid_to OPERATOR(pg_catalog.>) ${effective})
        ) cur ON true
    )
    ${options.dryRun ? sql.fragment`` : sql.fragment`, written AS (
      INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, valid_from,
        input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
        audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok,
        image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, unit, unit_price, source, checked_on, from_price_list)
      SELECT provider, model, service_tier, above_input_tokens,
             CASE WHEN has_history THEN ${effective} ELSE '-infinity' END,
             input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
             audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok,
             image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, unit, unit_price, source, current_date, true
        FROM compared
       WHERE action OPERATOR(pg_catalog.=) 'added' OR action OPERATOR(pg_catalog.=) 'changed'
      RETURNING id
    )`}
    SELECT action, provider, model, service_tier, above_input_tokens, origin, before, listed
      FROM compared
     ORDER BY provider, model, service_tier, above_input_tokens`);
  return result.map((r) => ({
    action: r.action, provider: r.provider, model: r.model, serviceTier: r.service_tier,
    aboveInputTokens: r.above_input_tokens, origin: r.origin, before: r.before, listed: r.listed,
  }));
}
