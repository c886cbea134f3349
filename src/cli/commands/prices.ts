import type { Command } from 'commander';
import { InvalidPriceError, setPrice } from '../../pricing/prices.js';
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
};

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
    .option('--tier <tier>', 'service tier (standard, batch, flex, priority, or another in ai_cost.service_tiers)', 'standard')
    .option('--above <tokens>', 'long-context tier: applies to calls with more input tokens than this', (v) => Number(v), 0)
    .option('--tenant <id>', 'a negotiated price for this tenant only')
    .option('--from <when>', 'in force from (default: now)', parseWhen)
    .option('--source <text>', 'where the price comes from')
    .action(async (provider: string, model: string, o: Record<string, string | number | Date | undefined> & { databaseUrl?: string }) => {
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
        }).catch((error: unknown) => {
          // Name the problem by the flag the user typed, not the API's field.
          if (error instanceof InvalidPriceError) throw new InvalidPriceError(error.problems, (field) => PRICE_FLAGS[field] ?? field);
          throw error;
        });
        console.log(`added price ${id} for ${provider}/${model}; \`ai-cost reprice --unpriced --from <date> --to now\` prices calls that had none`);
      });
    });

  registerPriceLists(prices);
}
