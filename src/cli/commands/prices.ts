import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../db.js';
import { InvalidPriceError, setPrice, TOKEN_RATE_COLUMNS, type PriceInput } from '../../pricing/prices.js';
import { databaseUrlOption, parseWhen } from '../options.js';
import { registerPriceBook } from './prices-book.js';
import { withPool } from './prices-pool.js';
import { registerPriceLists } from './prices-sync.js';

/** The flag of `prices set` that gives each field, to name a problem by what the user typed. */
const PRICE_FLAGS: Record<string, string> = {
  inputPerMtok: '--input', outputPerMtok: '--output', cacheReadPerMtok: '--cache-read', cacheWritePerMtok: '--cache-write',
  cacheWrite1hPerMtok: '--cache-write-1h', audioInputPerMtok: '--audio-input', audioOutputPerMtok: '--audio-output',
  reasoningPerMtok: '--reasoning', cacheReadAudioPerMtok: '--cache-read-audio',
  imageInputPerMtok: '--image-input', imageOutputPerMtok: '--image-output', videoInputPerMtok: '--video-input',
  unit: '--unit', unitPrice: '--unit-price', aboveInputTokens: '--above', tenantId: '--tenant', provider: 'provider', model: 'model',
  unitPrices: '--unit-prices', dailyFrom: '--hours', dailyTo: '--hours', timeZone: '--time-zone', ratesFrom: '--rates-from',
};

/** `web_search=0.01,image=0.04` as { web_search: '0.01', image: '0.04' }; the schema checks each price. */
function parseUnitPrices(value: string): Record<string, string> {
  return Object.fromEntries(value.split(',').map((pair) => {
    const at = pair.indexOf('=');
    return at < 0 ? [pair.trim(), ''] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
  }));
}

/** `16:30-00:30` as its two times of day, the second before the first past midnight. */
function parseHours(value: string): { dailyFrom: string; dailyTo: string } {
  const hours = /^\s*(([01]\d|2[0-3]):[0-5]\d)\s*-\s*(([01]\d|2[0-3]):[0-5]\d)\s*$/.exec(value);
  if (!hours) throw new InvalidArgumentError(`'${value}' is not two times of day such as 16:30-00:30`);
  return { dailyFrom: hours[1]!, dailyTo: hours[3]! };
}

/** A number of input tokens, 0 or more. */
function parseTokenCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${value}' is not a whole number of input tokens, 0 or more`);
  return n;
}

/** The rates --rates-from names, as their flags name them (cache-write-1h for cache_write_1h_per_mtok). */
const RATE_NAMES = new Map(TOKEN_RATE_COLUMNS.map((column) => [column.replace(/_per_mtok$/, '').replaceAll('_', '-'), column]));

function rateColumn(name: string): string {
  const column = RATE_NAMES.get(name.trim());
  if (!column) throw new InvalidArgumentError(`'${name.trim()}' is not a rate: ${[...RATE_NAMES.keys()].join(', ')}`);
  return column;
}

/**
 * `cache-read=input,cache-write=input*1.25` as declared rates
 * ({ cache_read_per_mtok: { rate: 'input_per_mtok', times: '1' }, ... });
 * the schema and the database say what else is wrong with one.
 */
function parseRatesFrom(value: string): Record<string, { rate: string; times: string }> {
  return Object.fromEntries(value.split(',').map((pair) => {
    const [target = '', source = ''] = pair.split('=');
    const [rate = '', times = '1'] = source.split('*');
    return [rateColumn(target), { rate: rateColumn(rate), times: times.trim() }];
  }));
}

/** `ai-cost prices list|history|at|set|sync|import|diff`. */
export function registerPrices(program: Command): void {
  const prices = program.command('prices').description('read, set and sync prices: the book at any instant, a model\'s history, price lists');
  registerPriceBook(prices);

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
    .option('--reasoning <usd>', 'per 1M reasoning tokens, where the provider bills them apart from output (default: as output)')
    .option('--cache-read-audio <usd>', 'per 1M cache-read audio input tokens (default: as other cache reads)')
    .option('--image-input <usd>', 'per 1M image input tokens, where the provider bills them apart from text (default: as input)')
    .option('--image-output <usd>', 'per 1M image output tokens, where the provider bills them apart from text (default: as output)')
    .option('--video-input <usd>', 'per 1M video input tokens, where the provider bills them apart from text (default: as input)')
    .option('--unit <unit>', 'what --unit-price is per: image, second, request, query, ...')
    .option('--unit-price <usd>', 'USD per unit')
    .option('--unit-prices <unit=usd,...>', 'further units billed in the same call, each at its USD per unit, e.g. web_search=0.01', parseUnitPrices)
    .option('--hours <from-to>', 'a price of these hours of each day only, e.g. 16:30-00:30 (off-peak), beside the all-day price', parseHours)
    .option('--time-zone <zone>', 'the IANA time zone --hours are given in, as the provider states them, e.g. UTC or Asia/Shanghai')
    .option('--rates-from <rate=rate*times,...>', 'rates the provider bills as a multiple of another rate of this price, e.g. cache-read=input or cache-write=input*1.25 (never assumed otherwise)', parseRatesFrom)
    .option('--tier <tier>', 'service tier (standard, batch, flex, priority, or another in ai_cost.service_tiers)', 'standard')
    .option('--above <tokens>', 'long-context tier: applies to calls with more input tokens than this', parseTokenCount, 0)
    .option('--tenant <id>', 'a negotiated price for this tenant only')
    .option('--from <when>', 'in force from (default: now)', parseWhen)
    .option('--source <text>', 'where the price comes from')
    .action(async (provider: string, model: string, o: Record<string, string | number | Date | undefined> & { databaseUrl?: string }) => {
      if ((o.hours === undefined) !== (o.timeZone === undefined)) {
        throw new UsageError(o.hours === undefined
          ? '--time-zone goes with --hours: the hours of the day the price is for'
          : '--hours needs --time-zone: the IANA zone the hours are given in, e.g. UTC or Asia/Shanghai');
      }
      await withPool(o.databaseUrl, async (pool) => {
        const text = (key: string) => (o[key] === undefined ? null : String(o[key]));
        const id = await setPrice(pool, {
          provider, model, serviceTier: o.tier as string, aboveInputTokens: o.above as number,
          tenantId: text('tenant'), ...(o.from ? { validFrom: o.from as Date } : {}),
          inputPerMtok: text('input'), outputPerMtok: text('output'), cacheReadPerMtok: text('cacheRead'),
          cacheWritePerMtok: text('cacheWrite'), cacheWrite1hPerMtok: text('cacheWrite1h'),
          audioInputPerMtok: text('audioInput'), audioOutputPerMtok: text('audioOutput'),
          reasoningPerMtok: text('reasoning'), cacheReadAudioPerMtok: text('cacheReadAudio'),
          imageInputPerMtok: text('imageInput'), imageOutputPerMtok: text('imageOutput'), videoInputPerMtok: text('videoInput'),
          unit: text('unit'), unitPrice: text('unitPrice'), source: text('source'),
          unitPrices: (o.unitPrices as unknown as Record<string, string> | undefined) ?? null,
          ...((o.hours as unknown as { dailyFrom: string; dailyTo: string } | undefined) ?? {}), timeZone: text('timeZone'),
          ratesFrom: (o.ratesFrom as unknown as PriceInput['ratesFrom']) ?? null,
        }).catch((error: unknown) => {
          // Name the problem by the flag the user typed, not the API's field.
          if (error instanceof InvalidPriceError) {
            throw new InvalidPriceError(error.problems, (field) => {
              const [name = field, unit] = field.split('.');
              return `${PRICE_FLAGS[name] ?? name}${unit ? ` ${unit}` : ''}`;
            });
          }
          throw error;
        });
        console.log(`added price ${id} for ${provider}/${model}; \`ai-cost reprice --unpriced --from <date> --to now\` prices calls that had none`);
      });
    });

  registerPriceLists(prices);
}
