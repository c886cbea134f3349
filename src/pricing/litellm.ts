import { z } from 'zod';
import { perTokenToPerMillion, toDecimalString } from './decimal.js';
import type { PriceRow, ServiceTier } from './price-row.js';

/**
 * Reads a price list in the format of LiteLLM's
 * model_prices_and_context_window.json (a JSON object of model entries with
 * USD-per-token costs) and maps each entry onto pg-ai-cost price rows: one
 * per service tier and long-context tier it lists.
 */

/**
 * LiteLLM provider names and the canonical pg-ai-cost provider ids they map
 * to. Names in the file are data: they are looked up in Maps, never as
 * properties of an object, where "constructor" or "__proto__" would find
 * what every object inherits.
 */
const PROVIDERS = new Map<string, string>([
  ['openai', 'openai'],
  ['text-completion-openai', 'openai'],
  ['anthropic', 'anthropic'],
  ['gemini', 'google'],
  ['vertex_ai', 'vertex'],
  ['mistral', 'mistral'],
  ['deepseek', 'deepseek'],
  ['xai', 'xai'],
  ['meta_llama', 'meta'],
  ['cohere', 'cohere'],
  ['cohere_chat', 'cohere'],
  ['bedrock', 'amazon'],
  ['bedrock_converse', 'amazon'],
  ['azure', 'azure'],
  ['groq', 'groq'],
  ['together_ai', 'together'],
  ['fireworks_ai', 'fireworks'],
  ['openrouter', 'openrouter'],
  ['perplexity', 'perplexity'],
]);

/** The canonical provider id for a LiteLLM provider name (vertex_ai-anthropic_models counts as vertex_ai). */
function canonicalProvider(litellmProvider: string): string | undefined {
  return PROVIDERS.get(litellmProvider) ?? PROVIDERS.get(litellmProvider.split('-')[0]!);
}

/**
 * Providers whose model ids contain no "/": a key of theirs that still has
 * one after the routing prefix is a variant of a price (a region, a
 * deployment type, an image size), which no call reports as its model.
 */
const PROVIDERS_WITHOUT_SLASHED_IDS = new Set(['openai', 'anthropic', 'google', 'amazon', 'azure', 'mistral', 'deepseek', 'xai', 'cohere', 'meta']);

/** Path segments of a LiteLLM key that make it a variant of a price rather than a model id, and what each is. */
const VARIANT_SEGMENTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\*$/, 'a wildcard'],
  [/^\d+-(month|year)-commitment$/, 'a provisioned-throughput commitment'],
  [/^(\d+|max)-x-(\d+|max)$/, 'an image size'],
  [/^(\d+|max)-steps$/, 'an image step count'],
  [/^[a-z]{2}(-gov)?-[a-z]+-\d+$/, 'a cloud region'],
];

/** Why a model id (routing prefix removed) is not one a call reports, or undefined for a model id. */
function notAModelId(provider: string, model: string): string | undefined {
  const segments = model.split('/');
  for (const segment of segments.slice(0, -1)) {
    const variant = VARIANT_SEGMENTS.find(([pattern]) => pattern.test(segment));
    if (variant) return `not a model id: it names ${variant[1]}`;
  }
  if (segments.length > 1 && PROVIDERS_WITHOUT_SLASHED_IDS.has(provider)) {
    return `not a model id: ${provider} model ids contain no "/"`;
  }
  return undefined;
}

const cost = z.number().finite().min(0);

/** A model entry's fields by name (own fields only: a Map has no inherited ones). */
type Entry = ReadonlyMap<string, unknown>;

/** Per-token cost fields and the rate column each fills. */
const TOKEN_RATES = [
  ['input_cost_per_token', 'inputPerMtok'],
  ['output_cost_per_token', 'outputPerMtok'],
  ['cache_read_input_token_cost', 'cacheReadPerMtok'],
  ['cache_creation_input_token_cost', 'cacheWritePerMtok'],
] as const;
const TIER_SUFFIXES: ReadonlyArray<readonly [ServiceTier, string]> = [
  ['standard', ''], ['batch', '_batches'], ['flex', '_flex'], ['priority', '_priority'],
];
/** Per-unit charges, in the order one is picked when an entry lists several. */
const UNIT_PRICES = [
  ['output_cost_per_image', 'image'],
  ['input_cost_per_request', 'request'],
  ['input_cost_per_query', 'query'],
  ['output_cost_per_second', 'second'],
  ['input_cost_per_second', 'second'],
  ['input_cost_per_character', 'character'],
] as const;

export interface SkippedEntry {
  key: string;
  reason: string;
  /** LiteLLM's name of the provider, when the entry was skipped for having no canonical provider id. */
  unknownProvider?: string;
}

export interface ParsedPriceList {
  rows: PriceRow[];
  skipped: SkippedEntry[];
}

const EXPECTED_SHAPE = 'expected a JSON object of model entries, as in LiteLLM\'s model_prices_and_context_window.json';

/** A price list file that cannot be imported; the message names the entry and field. */
export class InvalidPriceListError extends Error {
  override name = 'InvalidPriceListError';
}

/**
 * Parses the text of a LiteLLM-format file into price rows. Throws
 * InvalidPriceListError, before anything is written, for text that is not a
 * JSON object of model entries or an entry whose cost field is not a
 * non-negative number. Entries with no price, of a provider without a
 * canonical id, or whose id is not a model's (a region's, a commitment's,
 * an image size's price) are returned as skipped with the reason.
 */
export function parseLiteLlmPriceList(text: string, source: string): ParsedPriceList {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidPriceListError(`not valid JSON: ${(error as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidPriceListError(EXPECTED_SHAPE);
  }
  const rows: PriceRow[] = [];
  const skipped: SkippedEntry[] = [];
  const seen = new Set<string>();
  let entries = 0;
  for (const [key, value] of Object.entries(json)) {
    // Only the fields the mapping reads are checked; LiteLLM adds new ones all the time.
    const entry: Entry | undefined = value !== null && typeof value === 'object' && !Array.isArray(value)
      ? new Map(Object.entries(value)) : undefined;
    if (key === 'sample_spec') {
      skipped.push({ key, reason: 'the format\'s sample entry, not a model' });
      continue;
    }
    if (entry) entries += 1;
    const provided = entry?.get('litellm_provider');
    if (!entry || (provided !== undefined && typeof provided !== 'string')) {
      // The file carries metadata next to the models, such as "last_updated".
      skipped.push({ key, reason: 'not a model entry' });
      continue;
    }
    checkCosts(key, entry);
    const litellmProvider = typeof provided === 'string' ? provided : undefined;
    if (!litellmProvider) {
      skipped.push({ key, reason: 'no litellm_provider' });
      continue;
    }
    const provider = canonicalProvider(litellmProvider);
    if (!provider) {
      skipped.push({ key, reason: `provider ${litellmProvider} has no canonical pg-ai-cost id`, unknownProvider: litellmProvider });
      continue;
    }
    const model = modelId(key, litellmProvider);
    const notModel = notAModelId(provider, model);
    if (notModel) {
      skipped.push({ key, reason: notModel });
      continue;
    }
    const entryRows = rowsOf(entry, provider, model, source);
    if (entryRows.length === 0) {
      skipped.push({ key, reason: 'no prices' });
      continue;
    }
    if (seen.has(`${provider}\u0000${model}`)) {
      skipped.push({ key, reason: 'an earlier entry has the same provider and model' });
      continue;
    }
    seen.add(`${provider}\u0000${model}`);
    rows.push(...entryRows);
  }
  if (entries === 0) throw new InvalidPriceListError(`no model entries: ${EXPECTED_SHAPE}`);
  return { rows, skipped };
}

function checkCosts(key: string, entry: Entry): void {
  for (const [field, value] of entry) {
    if (!/(^|_)cost(_|$)/.test(field) || typeof value === 'object') continue;
    if (!cost.safeParse(value).success) {
      throw new InvalidPriceListError(`entry "${key}": ${field} must be a non-negative number, not ${JSON.stringify(value)}`);
    }
  }
}

/** The model id without LiteLLM's routing prefix: gemini/gemini-2.5-pro is gemini-2.5-pro. */
function modelId(key: string, litellmProvider: string): string {
  const prefixes = [`${litellmProvider}/`, `${litellmProvider.split('-')[0]}/`];
  const prefix = prefixes.find((p) => key.startsWith(p));
  return prefix ? key.slice(prefix.length) : key;
}

function rowsOf(entry: Entry, provider: string, model: string, source: string): PriceRow[] {
  const thresholds = [...new Set([...entry.keys()]
    .map((field) => /_above_(\d+)k_tokens/.exec(field)?.[1])
    .filter((k): k is string => k !== undefined)
    .map(Number))].sort((a, b) => a - b);
  const rate = (field: string) => {
    const value = entry.get(field);
    return typeof value === 'number' ? perTokenToPerMillion(value) : null;
  };
  const rows: PriceRow[] = [];
  for (const [serviceTier, suffix] of TIER_SUFFIXES) {
    const base = rowFor(serviceTier, suffix, '', 0);
    if (base) rows.push(base);
    for (const k of thresholds) {
      const tier = rowFor(serviceTier, suffix, `_above_${k}k_tokens`, k * 1000);
      // A long-context tier lists what changes; the rest is the base price.
      if (tier && base) rows.push({ ...base, ...definedOnly(tier), aboveInputTokens: tier.aboveInputTokens, unit: null, unitPrice: null });
    }
  }
  return rows;

  function rowFor(serviceTier: ServiceTier, suffix: string, above: string, aboveInputTokens: number): PriceRow | undefined {
    const standard = serviceTier === 'standard';
    const row: PriceRow = {
      provider, model, serviceTier, aboveInputTokens,
      inputPerMtok: null, outputPerMtok: null, cacheReadPerMtok: null, cacheWritePerMtok: null,
      cacheWrite1hPerMtok: standard ? rate(`cache_creation_input_token_cost_above_1hr${above}`) : null,
      audioInputPerMtok: standard && !above ? rate('input_cost_per_audio_token') : null,
      audioOutputPerMtok: standard && !above ? rate('output_cost_per_audio_token') : null,
      reasoningPerMtok: null, cacheReadAudioPerMtok: null,
      imageInputPerMtok: null, imageOutputPerMtok: null, videoInputPerMtok: null,
      unit: null, unitPrice: null, source,
    };
    for (const [field, column] of TOKEN_RATES) row[column] = rate(`${field}${above}${suffix}`);
    if (standard && !above) {
      // A rate equal to the one that bills these tokens anyway (Gemini lists
      // its reasoning at the output rate) means no rate of their own: stored
      // as such, a list that spells it out and one that does not agree.
      // cache_creation_input_audio_token_cost is not read: no provider bills
      // writing audio to its cache, and on OpenAI's Realtime entries it holds
      // what OpenAI publishes as the cached audio input price, a read.
      row.reasoningPerMtok = unlessEqual(rate('output_cost_per_reasoning_token'), row.outputPerMtok);
      row.cacheReadAudioPerMtok = unlessEqual(rate('cache_read_input_audio_token_cost'), row.cacheReadPerMtok);
      // Video input is listed per second (input_cost_per_video_per_second),
      // not per token: a video_input_per_mtok has no source here.
      row.imageInputPerMtok = unlessEqual(rate('input_cost_per_image_token'), row.inputPerMtok);
      row.imageOutputPerMtok = unlessEqual(rate('output_cost_per_image_token'), row.outputPerMtok);
    }
    if (standard && !above) {
      const unitPrice = UNIT_PRICES.find(([field]) => typeof entry.get(field) === 'number' && (entry.get(field) as number) > 0);
      if (unitPrice) {
        row.unit = unitPrice[1];
        row.unitPrice = toDecimalString(entry.get(unitPrice[0]) as number);
      }
    }
    const priced = row.inputPerMtok !== null || row.outputPerMtok !== null || row.unit !== null;
    return priced && (standard || !above || row.inputPerMtok !== null) ? row : undefined;
  }
}

/** The rate, or null when it equals the rate that applies without it (both are canonical decimal strings). */
function unlessEqual(rate: string | null, fallback: string | null): string | null {
  return rate === fallback ? null : rate;
}

function definedOnly(row: PriceRow): Partial<PriceRow> {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== null));
}
