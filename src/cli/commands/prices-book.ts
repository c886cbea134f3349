import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { listPrices, priceHistory, type ListedPrice } from '../../pricing/prices.js';
import { databaseUrlOption, parseWhen } from '../options.js';
import { withPool } from './prices-pool.js';

type BookFormat = 'table' | 'json' | 'csv';

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table');

/** `ai-cost prices list`, `prices history PROVIDER MODEL` and `prices at TIME`: reading the price book. */
export function registerPriceBook(prices: Command): void {
  prices
    .command('list')
    .description('prices in force now (or at --at), or every row with --history')
    .addOption(databaseUrlOption())
    .option('--provider <id>', 'only this provider')
    .option('--model <text>', 'only models whose id contains this')
    .option('--at <when>', 'prices in force at this date/time (default: now)', parseWhen)
    .option('--history', 'every price row, past and future')
    .addOption(formatOption())
    .action(async (options: { databaseUrl?: string; provider?: string; model?: string; at?: Date; history?: boolean; format: BookFormat }) => {
      await withPool(options.databaseUrl, async (pool) => {
        console.log(renderPrices(await listPrices(pool, options), options.format));
      });
    });

  prices
    .command('history <provider> <model>')
    .description('every price row of one model (its exact id) over time, oldest first, with who set it and its source')
    .addOption(databaseUrlOption())
    .addOption(formatOption())
    .action(async (provider: string, model: string, options: { databaseUrl?: string; format: BookFormat }) => {
      await withPool(options.databaseUrl, async (pool) => {
        const rows = await priceHistory(pool, provider, model);
        if (options.format !== 'table') console.log(renderPrices(rows, options.format));
        else if (rows.length === 0) console.log(`no prices for ${provider}/${model} (the exact id: \`ai-cost prices list --model\` finds ids containing a text)`);
        else console.log(`${provider}/${model}\n${historyTable(rows)}`);
      });
    });

  prices
    .command('at')
    .description('the whole price book in force at an instant')
    .argument('<when>', 'an ISO date/time, or e.g. 30d for that long before now', parseWhen)
    .addOption(databaseUrlOption())
    .addOption(formatOption())
    .action(async (at: Date, options: { databaseUrl?: string; format: BookFormat }) => {
      await withPool(options.databaseUrl, async (pool) => {
        const rows = await listPrices(pool, { at });
        console.log(options.format === 'table' ? `in force at ${at.toISOString()}\n${renderPrices(rows, 'table')}` : renderPrices(rows, options.format));
      });
    });
}

/** Rate columns of a price and their labels; unit_price is shown with its unit. */
export const RATE_COLUMNS = [
  ['input_per_mtok', 'input'], ['output_per_mtok', 'output'], ['cache_read_per_mtok', 'cache read'],
  ['cache_write_per_mtok', 'cache write'], ['cache_write_1h_per_mtok', 'cache write 1h'],
  ['audio_input_per_mtok', 'audio in'], ['audio_output_per_mtok', 'audio out'], ['reasoning_per_mtok', 'reasoning'],
  ['cache_read_audio_per_mtok', 'cache read audio'], ['image_input_per_mtok', 'image in'],
  ['image_output_per_mtok', 'image out'], ['video_input_per_mtok', 'video in'], ['unit_price', 'per unit'],
] as const;

const RATE_LABELS = new Map<string, string>(RATE_COLUMNS);

/** The CSV columns of a price row, in order. */
const CSV_COLUMNS = [
  'provider', 'model', 'service_tier', 'above_input_tokens', 'tenant_id', 'valid_from', 'valid_to',
  'input_per_mtok', 'output_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'cache_write_1h_per_mtok',
  'audio_input_per_mtok', 'audio_output_per_mtok', 'reasoning_per_mtok', 'cache_read_audio_per_mtok',
  'image_input_per_mtok', 'image_output_per_mtok', 'video_input_per_mtok', 'unit', 'unit_price',
  'unit_prices', 'rates_from', 'daily_from', 'daily_to', 'time_zone',
  'origin', 'catalog', 'source', 'checked_on',
] as const;

/**
 * Price rows as a table, JSON or CSV. Rates are the exact decimals stored; a
 * NULL rate (not priced) is an empty cell or field and null in JSON, never 0.
 * A valid_from of -infinity (in force since always) is null in JSON and
 * empty in CSV, as is the valid_to of a row still in force.
 */
export function renderPrices(rows: readonly ListedPrice[], format: BookFormat): string {
  if (format === 'json') return JSON.stringify(rows, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
  if (format === 'csv') {
    const field = (value: unknown) => {
      const text = value === null ? '' : value instanceof Date ? value.toISOString()
        : typeof value === 'object' ? JSON.stringify(value) : String(value);
      return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    };
    return [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((column) => field(r[column])).join(','))].join('\n');
  }
  if (rows.length === 0) return 'no prices';
  const table = newTable(['provider', 'model', 'tier', 'tenant', 'hours', ...RATE_COLUMNS.map(([, label]) => label), 'also', 'from', 'to', 'set by']);
  for (const r of rows) {
    table.push([r.provider, r.model, tierOf(r), r.tenant_id ?? '', hours(r), ...rates(r), also(r), from(r), r.valid_to ? instant(r.valid_to) : '', origin(r)]);
  }
  return `${table.toString()}\n${UNITS_NOTE}`;
}

/** One model's rows: when each was in force first, then what it charged, who set it and where it was read. */
function historyTable(rows: readonly ListedPrice[]): string {
  const table = newTable(['from', 'to', 'tier', 'tenant', 'hours', ...RATE_COLUMNS.map(([, label]) => label), 'also', 'set by', 'source', 'checked']);
  for (const r of rows) {
    table.push([from(r), r.valid_to ? instant(r.valid_to) : 'in force', tierOf(r), r.tenant_id ?? '', hours(r), ...rates(r), also(r), origin(r),
      r.source ?? '', r.checked_on ?? '']);
  }
  return `${table.toString()}\n${UNITS_NOTE}`;
}

const UNITS_NOTE = 'USD per 1M tokens; per unit in USD; an empty rate is not priced, but empty reasoning and image out are billed as output, empty image in and video in as input, and empty cache read audio as cache read; "also" lists further units and rates declared as a multiple of another; hours: a price of those hours of each day, in its time zone, beside the all-day one.';

function newTable(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [], compact: true } });
}

function tierOf(r: ListedPrice): string {
  return r.above_input_tokens > 0n ? `${r.service_tier} >${r.above_input_tokens}` : r.service_tier;
}

/** The hours of a price of certain hours of the day, e.g. 16:30-00:30 UTC; empty for an all-day price. */
function hours(r: ListedPrice): string {
  return r.daily_from && r.daily_to ? `${r.daily_from.slice(0, 5)}-${r.daily_to.slice(0, 5)} ${r.time_zone}` : '';
}

/** Further units at their prices, and rates declared as a multiple of another, e.g. "web_search 0.01/unit; cache read = 1.25 x input". */
function also(r: ListedPrice): string {
  return [
    ...Object.entries(r.unit_prices ?? {}).map(([unit, price]) => `${unit} ${price}/unit`),
    ...Object.entries(r.rates_from ?? {}).map(([rate, { rate: base, times }]) => `${RATE_LABELS.get(rate) ?? rate} = ${times} x ${RATE_LABELS.get(base) ?? base}`),
  ].join('; ');
}

function rates(r: ListedPrice): string[] {
  return RATE_COLUMNS.map(([column]) => (column === 'unit_price' && r.unit_price ? `${r.unit_price}/${r.unit}` : r[column] ?? ''));
}

function from(r: ListedPrice): string {
  return r.valid_from ? instant(r.valid_from) : 'always';
}

function origin(r: ListedPrice): string {
  return r.origin === 'catalog' && r.catalog ? `catalog ${r.catalog}` : r.origin;
}

/** A date when the instant is a UTC midnight, else the date and time in UTC. */
function instant(date: Date): string {
  const iso = date.toISOString();
  if (iso.endsWith('T00:00:00.000Z')) return iso.slice(0, 10);
  return `${iso.slice(0, 10)} ${iso.slice(11, iso.endsWith('.000Z') ? 19 : 23)}Z`;
}
