/** A service tier name: one word of lowercase letters, digits, _ or - (which tiers exist is data in ai_cost.service_tiers). */
export type ServiceTier = string;
/** The shape of a service tier name, as sql/040_calls.sql checks it. */
export const SERVICE_TIER_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * One ai_cost.prices row to write, rates as exact decimal strings in USD per
 * 1M tokens (unitPrice in USD per unit); null = that dimension has no price.
 */
export interface PriceRow {
  provider: string;
  model: string;
  serviceTier: ServiceTier;
  /** Long-context tier: 0 for the base price, N for calls whose input exceeds N tokens. */
  aboveInputTokens: number;
  inputPerMtok: string | null;
  outputPerMtok: string | null;
  cacheReadPerMtok: string | null;
  cacheWritePerMtok: string | null;
  cacheWrite1hPerMtok: string | null;
  audioInputPerMtok: string | null;
  audioOutputPerMtok: string | null;
  /** Null: reasoning tokens are billed as output. */
  reasoningPerMtok: string | null;
  /** Null: cached audio input is billed as other cache reads. */
  cacheReadAudioPerMtok: string | null;
  /** Null: image input is billed as other input. */
  imageInputPerMtok: string | null;
  /** Null: image output is billed as other output. */
  imageOutputPerMtok: string | null;
  /** Null: video input is billed as other input. */
  videoInputPerMtok: string | null;
  unit: string | null;
  unitPrice: string | null;
  source: string | null;
}

