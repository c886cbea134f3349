import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { UsageError } from '../../db.js';
import { InvalidPriceListError, parseLiteLlmPriceList, type ParsedPriceList } from '../../pricing/litellm.js';
import { COMMUNITY_PRICE_LIST_URL, fetchPriceList, PriceListUnavailableError } from '../../pricing/price-list-fetch.js';
import { importPrices, type ImportedRow, type PriceRates } from '../../pricing/prices.js';
import { databaseUrlOption, parseWhen } from '../options.js';
import { RATE_COLUMNS } from './prices-book.js';
import { withPool } from './prices-pool.js';

type ReportFormat = 'text' | 'json';

const formatOption = () => new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');
const overwriteOption = () => new Option('--overwrite', 'also replace prices of the built-in catalog and your own where the list differs (default: keep them)');

/**
 * `ai-cost prices sync [URL]`, `prices import <file>` and `prices diff
 * <file>`: one price list, compared with the prices in force and written by
 * the same rules. sync fetches the list and writes only with --apply;
 * import is its form for a file, which writes; diff is import's dry run.
 */
export function registerPriceLists(prices: Command): void {
  prices
    .command('sync [url]')
    .description(`compare a LiteLLM-format price list (default: LiteLLM's community list) with the prices in force; --apply writes the differences`)
    .addOption(databaseUrlOption())
    .option('--apply', 'write the added and changed prices (default: only show them)')
    .option('--from <when>', 'when changed prices take effect (default: now)', parseWhen)
    .addOption(overwriteOption())
    .addOption(formatOption())
    .action(async (url: string | undefined, options: ListOptions & { apply?: boolean; from?: Date }) => {
      const source = url ?? COMMUNITY_PRICE_LIST_URL;
      const list = parse(source, await fetchOrExplain(source), source);
      await run(list, source, { ...options, effective: options.from, write: options.apply ?? false, verb: 'sync' });
    });

  prices
    .command('import <file>')
    .description("write a price list file in LiteLLM's model_prices_and_context_window.json format (what `prices diff` shows)")
    .addOption(databaseUrlOption())
    .option('--from <when>', 'when changed prices take effect (default: now)', parseWhen)
    .addOption(effectiveOption())
    .addOption(overwriteOption())
    .addOption(formatOption())
    .action(async (file: string, options: ListOptions & FromOptions) => {
      const list = parse(file, await readFile(file, 'utf8'), `LiteLLM price list ${basename(file)}`);
      await run(list, file, { ...options, effective: options.from ?? options.effective, write: true, verb: 'import' });
    });

  prices
    .command('diff <file>')
    .description('what `prices import <file>` would add, change and keep, without writing')
    .addOption(databaseUrlOption())
    .option('--from <when>', 'when the changed prices would take effect: compared with the prices in force then (default: now)', parseWhen)
    .addOption(effectiveOption())
    .addOption(overwriteOption())
    .addOption(formatOption())
    .action(async (file: string, options: ListOptions & FromOptions) => {
      const list = parse(file, await readFile(file, 'utf8'), `LiteLLM price list ${basename(file)}`);
      await run(list, file, { ...options, effective: options.from ?? options.effective, write: false, verb: 'diff' });
    });
}

interface FromOptions {
  from?: Date;
  effective?: Date;
}

/**
 * --effective: --from under the name import and diff gave it in release
 * 0.1.0, so scripts written then keep working; hidden from the help, which
 * names --from as prices set and sync do.
 */
const effectiveOption = () =>
  new Option('--effective <when>', 'the same as --from').hideHelp().argParser(parseWhen).conflicts('from');

interface ListOptions {
  databaseUrl?: string;
  overwrite?: boolean;
  format: ReportFormat;
}

interface RunOptions extends ListOptions {
  effective?: Date | undefined;
  write: boolean;
  verb: 'sync' | 'import' | 'diff';
}

async function run(list: ParsedPriceList, name: string, options: RunOptions): Promise<void> {
  await withPool(options.databaseUrl, async (pool) => {
    const result = await importPrices(pool, list.rows, {
      dryRun: !options.write, overwrite: options.overwrite ?? false, ...(options.effective ? { effective: options.effective } : {}),
    });
    console.log(options.format === 'json'
      ? JSON.stringify({ source: name, written: options.write, effective: options.effective ?? null, prices: result, skipped: list.skipped },
        (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2)
      : report(result, list, name, options));
  });
}

async function fetchOrExplain(url: string): Promise<string> {
  try {
    return await fetchPriceList(url);
  } catch (error) {
    if (error instanceof PriceListUnavailableError) throw new UsageError(`${error.message}; nothing was written`);
    throw error;
  }
}

function parse(name: string, text: string, source: string): ParsedPriceList {
  try {
    return parseLiteLlmPriceList(text, source);
  } catch (error) {
    if (error instanceof InvalidPriceListError) throw new UsageError(`${name}: ${error.message}; nothing was written`);
    throw error;
  }
}

/**
 * What a list adds, changes and keeps, one line per price, then the skipped
 * entries by reason and a summary line; the unchanged are only counted.
 */
function report(result: readonly ImportedRow[], list: ParsedPriceList, name: string, options: RunOptions): string {
  const lines = result.filter((r) => r.action !== 'unchanged').map(describe);
  // Entries of providers pg-ai-cost has no id for are most of a community
  // list: one line counts them by provider; every other reason gets a line.
  const reasons = new Map<string, string[]>();
  const providers = new Map<string, number>();
  for (const { key, reason, unknownProvider } of list.skipped) {
    if (unknownProvider !== undefined) providers.set(unknownProvider, (providers.get(unknownProvider) ?? 0) + 1);
    else reasons.set(reason, [...(reasons.get(reason) ?? []), key]);
  }
  for (const [reason, keys] of byCount([...reasons].map(([reason, keys]) => [reason, keys.length, keys] as const))) {
    lines.push(`  skipped ${keys.length}: ${reason} (${keys.slice(0, 2).join(', ')}${keys.length > 2 ? ', ...' : ''})`);
  }
  if (providers.size > 0) {
    const counted = byCount([...providers].map(([provider, n]) => [provider, n, n] as const));
    lines.push(`  skipped ${[...providers.values()].reduce((a, b) => a + b, 0)}: ${providers.size} provider(s) without a canonical `
      + `pg-ai-cost id (${counted.slice(0, 5).map(([provider, n]) => `${provider} ${n}`).join(', ')}${counted.length > 5 ? ', ...' : ''})`);
  }
  const count = (pick: (r: ImportedRow) => boolean) => result.filter(pick).length;
  const kept = (origin: 'catalog' | 'yours', label: string) => {
    const n = count((r) => r.action === 'kept' && r.origin === origin);
    return n > 0 ? `, ${n} kept (${label})` : '';
  };
  const counts = `${count((r) => r.action === 'added')} added, ${count((r) => r.action === 'changed')} changed, `
    + `${count((r) => r.action === 'unchanged')} unchanged${kept('catalog', 'curated')}${kept('yours', 'yours')}, `
    + `${list.skipped.length} entries skipped`;
  const changes = count((r) => r.action === 'added' || r.action === 'changed');
  lines.push(options.write ? `${name}: ${counts}` : `${changes === 0 ? 'no differences: ' : ''}${name} would make ${counts}`);
  if (options.verb === 'sync' && !options.write && changes > 0) {
    lines.push(`nothing was written: --apply writes these prices from ${options.effective?.toISOString() ?? 'now'}`);
  }
  if (count((r) => r.action === 'kept') > 0) lines.push('kept prices stay in force; --overwrite replaces them with the list\'s');
  if (options.write && changes > 0) {
    lines.push('calls already recorded keep their cost: `ai-cost reprice --unpriced --from <date> --to now` prices those that had none, '
      + '`ai-cost reprice --from <date> --to now` reprices a changed window');
  }
  return lines.join('\n');
}

/** Entries [name, count, value] by count, largest first, then by name. */
function byCount<T>(entries: ReadonlyArray<readonly [string, number, T]>): Array<readonly [string, T]> {
  return [...entries].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([name, , value]) => [name, value] as const);
}

/** "+ key: rates" for an added price, "~ key: a -> b" per changed rate, "kept (curated) key: ours (list: theirs)". */
function describe(row: ImportedRow): string {
  const key = `${row.provider}/${row.model} ${row.serviceTier}${row.aboveInputTokens > 0n ? ` above ${row.aboveInputTokens}` : ''}`;
  if (row.action === 'added') {
    return `+ ${key}: ${RATE_COLUMNS.filter(([column]) => row.listed[column] !== null).map(([column, label]) => `${label} ${rate(row.listed, column)}`).join(', ')}`;
  }
  const differing = RATE_COLUMNS.filter(([column]) => !sameRate(row.before, row.listed, column));
  if (row.action === 'changed') {
    return `~ ${key}: ${differing.map(([column, label]) => `${label} ${rate(row.before, column)} -> ${rate(row.listed, column)}`).join(', ')}`;
  }
  const who = row.origin === 'catalog' ? 'curated' : 'yours';
  return `  kept (${who}) ${key}: ${differing.map(([column, label]) => `${label} ${rate(row.before, column)} (list: ${rate(row.listed, column)})`).join(', ')}`;
}

/** A rate for display: the exact decimal, with its unit for a per-unit price; "none" when not priced. */
function rate(rates: PriceRates | null, column: (typeof RATE_COLUMNS)[number][0]): string {
  const value = rates?.[column] ?? null;
  if (value === null) return 'none';
  return column === 'unit_price' ? `${value}/${rates!.unit}` : value;
}

/** Equal rates (and units), compared as decimals: 2.50 stored is 2.5 listed. */
function sameRate(a: PriceRates | null, b: PriceRates | null, column: (typeof RATE_COLUMNS)[number][0]): boolean {
  const normal = (value: string | null | undefined) => (value == null ? null : value.includes('.') ? value.replace(/\.?0+$/, '') : value);
  return normal(a?.[column]) === normal(b?.[column]) && (column !== 'unit_price' || a?.unit === b?.unit);
}
