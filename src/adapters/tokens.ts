import type { CallInput } from '../recorder/call.js';

/** The token and cost fields of a call that a usage adapter fills in. */
export type UsageFields = Pick<
  CallInput,
  | 'inputTokens'
  | 'outputTokens'
  | 'cacheReadTokens'
  | 'cacheWriteTokens'
  | 'reasoningTokens'
  | 'cacheWrite1hTokens'
  | 'audioInputTokens'
  | 'audioOutputTokens'
  | 'cacheReadAudioTokens'
  | 'imageInputTokens'
  | 'imageOutputTokens'
  | 'videoInputTokens'
  | 'providedCostMicros'
>;

/** A count as the SDK reported it, or undefined when it is absent, null or not a count at all. */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The sum of the counts that are present; undefined when none is. */
export function sum(...values: unknown[]): number | undefined {
  const present = values.map(count).filter((value): value is number => value !== undefined);
  return present.length === 0 ? undefined : present.reduce((a, b) => a + b, 0);
}

/** Drops undefined fields, so spreading adapter output never overwrites a value with undefined. */
export function defined<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}
