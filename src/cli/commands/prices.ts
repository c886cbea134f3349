import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { createPool, resolveDatabaseUrl, UsageError } from '../../db.js';
import { InvalidPriceListError, parseLiteLlmPriceList } from '../../pricing/litellm.js';
import { importPrices, InvalidPriceError, listPrices, setPrice, type ImportedRow, type ListedPrice } from '../../pricing/prices.js';

const PRICE_FLAGS: Record<string, string> = {
  inputPerMtok: '--input', outputPerMtok: '--output', cacheReadPerMtok: '--cache-read', cacheWritePerMtok: '--cache-write',
  cacheWrite1hPerMtok: '--cache-write-1h', audioInputPerMtok: '--audio-input', audioOutputPerMtok: '--audio-output',
  unit: '--unit', unitPrice: '--unit-price', aboveInputTokens: '--above', tenantId: '--tenant', provider: 'provider', model: 'model',
};
import { SERVICE_TIERS, type PriceRow } from '../../pricing/price-row.js';
import { databaseUrlOption, parseWhen } from '../options.js';

/** `ai-cost prices list|set|import|diff`. */
export function registerPrices(program: Command): void {
  const prices = program.command('prices').description('list, set, import and compare prices');

  prices
    .command('list')
    .description('prices in force now (or at --at), or every row with --history')
    .addOption(databaseUrlOption())
    .option('--provider <id>', 'only this provider')
    .option('--model <text>', 'only models whose id contains this')
    .option('--at <when>', 'prices in force at this date/time (default: now)', parseWhen)
    .option('--history', 'every price row, past and future')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (options: { databaseUrl?: string; provider?: string; model?: string; at?: Date; history?: boolean; format: string }) => {
      await withPool(options.databaseUrl, async (pool) => {
        const rows = await listPrices(pool, options);
        console.log(options.format === 'json' ? JSON.stringify(rows, jsonReplacer, 2) : renderPrices(rows));
      });
    });

  prices
    .command('set <provider> <model>')
    .description('add a price (USD per 1M tokens) in force from --from; the previous price for the same key ends there')
    .addOption(databaseUrlOption())
    .option('--input <usd>', 'per 1M uncached input tokens')
    .option('--output <usd>', 'per 1M output tokens')
    .option('--cache-read <usd>', 'per 1M cache-read tokens')
    .option('--cache-write <usd>', 'per 1M 5-minute cache-write tokens')
    .option('--cache-write-1h <usd>', 'per 1M 1-hour cache-write tokens')
    .option('--audio-input <usd>', 'per 1M audio input tokens')
    .option('--audio-output <usd>', 'per 1M audio output tokens')
    .option('--unit <unit>', 'what --unit-price is per: image, second, request, query, ...')
    .option('--unit-price <usd>', 'USD per unit')
    .addOption(new Option('--tier <tier>', 'service tier').choices(SERVICE_TIERS).default('standard'))
    .option('--above <tokens>', 'long-context tier: applies to calls with more input tokens than this', (v) => Number(v), 0)
    .option('--tenant <id>', 'a negotiated price for this tenant only')
    .option('--from <when>', 'in force from (default: now)', parseWhen)
    .option('--source <text>', 'where the price comes from')
    .action(async (provider: string, model: string, o: Record<string, string | number | Date | undefined> & { databaseUrl?: string }) => {
      await withPool(o.databaseUrl, async (pool) => {
        const text = (key: string) => (o[key] === undefined ? null : String(o[key]));
        const id = await setPrice(pool, {
          provider, model, serviceTier: o.tier as (typeof SERVICE_TIERS)[number], aboveInputTokens: o.above as number,
          tenantId: text('tenant'), ...(o.from ? { validFrom: o.from as Date } : {}),
          inputPerMtok: text('input'), outputPerMtok: text('output'), cacheReadPerMtok: text('cacheRead'),
          cacheWritePerMtok: text('cacheWrite'), cacheWrite1hPerMtok: text('cacheWrite1h'),
          audioInputPerMtok: text('audioInput'), audioOutputPerMtok: text('audioOutput'),
          unit: text('unit'), unitPrice: text('unitPrice'), source: text('source'),
        }).catch((error: unknown) => {
          // Name the problem by the flag the user typed, not the API's field.
          if (error instanceof InvalidPriceError) throw new InvalidPriceError(error.problems, (field) => PRICE_FLAGS[field] ?? field);
          throw error;
        });
        console.log(`added price ${id} for ${provider}/${model}; \`ai-cost reprice --unpriced --from <date> --to now\` prices calls that had none`);
      });
    });

  prices
    .command('import <file>')
    .description("import a price list in LiteLLM's model_prices_and_context_window.json format")
    .addOption(databaseUrlOption())
    .option('--effective <when>', 'when changed prices take effect (default: now)', parseWhen)
    .action(async (file: string, options: { databaseUrl?: string; effective?: Date }) => {
      const { rows, skipped } = await readPriceList(file);
      await withPool(options.databaseUrl, async (pool) => {
        const result = await importPrices(pool, rows, options.effective ? { effective: options.effective } : {});
        console.log(`${file}: ${countActions(result)}, ${skipped.length} entries skipped`);
        const reasons = tally(skipped.map((s) => s.reason));
        for (const [reason, n] of reasons.slice(0, 10)) console.log(`  skipped ${n}: ${reason}`);
        if (reasons.length > 10) console.log(`  ... and ${reasons.length - 10} more reasons`);
      });
    });

  prices
    .command('diff <file>')
    .description('what `prices import <file>` would add and change, without writing')
    .addOption(databaseUrlOption())
    .option('--effective <when>', 'compare with the prices in force then (default: now)', parseWhen)
    .action(async (file: string, options: { databaseUrl?: string; effective?: Date }) => {
      const { rows, skipped } = await readPriceList(file);
      await withPool(options.databaseUrl, async (pool) => {
        const result = await importPrices(pool, rows, { dryRun: true, ...(options.effective ? { effective: options.effective } : {}) });
        const byKey = new Map(rows.map((r) => [`${r.provider}/${r.model}/${r.serviceTier}/${r.aboveInputTokens}`, r]));
        const changes = result.filter((r) => r.action !== 'unchanged');
        for (const r of changes) console.log(describeChange(r, byKey.get(`${r.provider}/${r.model}/${r.serviceTier}/${r.aboveInputTokens}`)));
        console.log(`${changes.length === 0 ? 'no differences: ' : ''}${file} would make ${countActions(result)}, ${skipped.length} entries skipped`);
      });
    });
}

/** "3 added, 1 changed, 40 unchanged": how many prices of a list each action took. */
function countActions(result: readonly ImportedRow[]): string {
  const count = (action: ImportedRow['action']) => result.filter((r) => r.action === action).length;
  return `${count('added')} added, ${count('changed')} changed, ${count('unchanged')} unchanged`;
}

async function withPool(url: string | undefined, work: (pool: Awaited<ReturnType<typeof createPool>>) => Promise<void>) {
  const pool = await createPool(resolveDatabaseUrl(url), 1);
  try {
    await work(pool);
  } finally {
    await pool.end();
  }
}

async function readPriceList(file: string) {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return parseLiteLlmPriceList(text, `LiteLLM price list ${basename(file)}`);
  } catch (error) {
    if (error instanceof InvalidPriceListError) throw new UsageError(`${file}: ${error.message}; nothing was imported`);
    throw error;
  }
}

function tally(values: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

const RATE_COLUMNS = [
  ['input_per_mtok', 'input'], ['output_per_mtok', 'output'], ['cache_read_per_mtok', 'cache read'],
  ['cache_write_per_mtok', 'cache write'], ['cache_write_1h_per_mtok', 'cache write 1h'],
  ['audio_input_per_mtok', 'audio in'], ['audio_output_per_mtok', 'audio out'], ['unit_price', 'per unit'],
] as const;

function describeChange(row: ImportedRow, next: PriceRow | undefined): string {
  const key = `${row.provider}/${row.model} ${row.serviceTier}${row.aboveInputTokens > 0n ? ` above ${row.aboveInputTokens}` : ''}`;
  if (row.action === 'added') return `+ ${key}`;
  const camel = (s: string) => s.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
  const changes = RATE_COLUMNS
    .map(([column, label]) => [label, row.before?.[column] ?? null, ((next as Record<string, unknown> | undefined)?.[camel(column)] as string | null) ?? null] as const)
    .filter(([, before, after]) => (before === null ? null : Number(before)) !== (after === null ? null : Number(after)))
    .map(([label, before, after]) => `${label} ${before ?? '-'} -> ${after ?? '-'}`);
  return `~ ${key}: ${changes.join(', ')}`;
}

function renderPrices(rows: readonly ListedPrice[]): string {
  if (rows.length === 0) return 'no prices';
  const table = new Table({
    head: ['provider', 'model', 'tier', 'tenant', ...RATE_COLUMNS.map(([, label]) => label), 'from', 'to'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    const tier = r.above_input_tokens > 0n ? `${r.service_tier} >${r.above_input_tokens}` : r.service_tier;
    table.push([r.provider, r.model, tier, r.tenant_id ?? '',
      ...RATE_COLUMNS.map(([column]) => (column === 'unit_price' && r.unit_price ? `${r.unit_price}/${r.unit}` : r[column] ?? '-')),
      r.valid_from ? day(r.valid_from) : 'always', r.valid_to ? day(r.valid_to) : '']);
  }
  return `${table.toString()}\nUSD per 1M tokens; per unit in USD.`;
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
