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

interface SkippedEntry {
  key: string;
  reason: string;
}

export interface ParsedPriceList {
  rows: PriceRow[];
  skipped: SkippedEntry[];
}

/** A price list file that cannot be imported; the message names the entry and field. */
export class InvalidPriceListError extends Error {
  override name = 'InvalidPriceListError';
}

/**
 * Parses the text of a LiteLLM-format file into price rows. Throws
 * InvalidPriceListError, before anything is written, for text that is not a
 * JSON object or an entry whose cost field is not a non-negative number.
 * Entries with no price, or of a provider without a canonical id, are
 * returned as skipped with the reason.
 */
export function parseLiteLlmPriceList(text: string, source: string): ParsedPriceList {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidPriceListError(`not valid JSON: ${(error as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidPriceListError('expected a JSON object of model entries, as in LiteLLM\'s model_prices_and_context_window.json');
  }
  const rows: PriceRow[] = [];
  const skipped: SkippedEntry[] = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(json)) {
    if (key === 'sample_spec') continue;
    // Only the fields the mapping reads are checked; LiteLLM adds new ones all the time.
    const entry: Entry | undefined = value !== null && typeof value === 'object' && !Array.isArray(value)
      ? new Map(Object.entries(value)) : undefined;
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
      skipped.push({ key, reason: `provider ${litellmProvider} has no canonical pg-ai-cost id` });
      continue;
    }
    const model = modelId(key, litellmProvider);
    const entryRows = rowsOf(entry, provider, model, source);
    if (entryRows.length === 0) {
      skipped.push({ key, reason: 'no prices' });
      continue;
    }
    if (seen.has(`${provider}\u0000${model}`)) {
      skipped.push({ key, reason: `duplicate of ${provider}/${model}` });
      continue;
    }
    seen.add(`${provider}\u0000${model}`);
    rows.push(...entryRows);
  }
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
      unit: null, unitPrice: null, source,
    };
    for (const [field, column] of TOKEN_RATES) row[column] = rate(`${field}${above}${suffix}`);
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

function definedOnly(row: PriceRow): Partial<PriceRow> {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== null));
}
