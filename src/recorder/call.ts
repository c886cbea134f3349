import { z } from 'zod';
import { describeThrown, oneLine, toStorableJson, unstorableText, type JsonObject } from './storable.js';

const OPERATIONS = [
  'chat', 'completion', 'embedding', 'image', 'audio_transcription',
  'audio_speech', 'moderation', 'rerank', 'video', 'web_search', 'other',
] as const;
const STATUSES = ['success', 'error', 'cancelled'] as const;
/** The shape of a service tier name (sql/040_calls.sql); which tiers exist is data (ai_cost.service_tiers). */
const SERVICE_TIER = /^[a-z0-9][a-z0-9_-]*$/;

/** The database's per-call ceilings (sql/040_calls.sql): far above any real call, far below overflowing a rollup. */
const MAX_TOKENS = 1e10;
const MAX_COST_MICROS = 10n ** 10n;
const tokenCount = z
  .union([z.number().int().min(0).max(MAX_TOKENS), z.bigint().min(0n).max(BigInt(MAX_TOKENS))])
  .transform((value) => BigInt(value))
  .nullish();
/** A string PostgreSQL can store as text: no U+0000, no lone surrogate (see storable.ts). */
const text = (min: number, max: number) => z.string().min(min).max(max).superRefine((value, ctx) => {
  const problem = unstorableText(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const label = text(1, 1_000).nullish();
const milliseconds = z.number().int().min(0).max(2_147_483_647).nullish();

/**
 * A token count for the sums between counts: 0 when left out, undefined when
 * the count itself was refused. zod runs the object's refinement even then,
 * with the raw value, and a refused count already has its own issue.
 */
function validCount(value: unknown): bigint | undefined {
  if (value == null) return 0n;
  return typeof value === 'bigint' ? value : undefined;
}

/**
 * One AI/LLM call as the application reports it. Token counts follow the
 * OpenTelemetry GenAI semantics: inputTokens counts ALL prompt tokens,
 * including cache reads and writes; outputTokens includes reasoning tokens.
 * Leave a count out (or null) when it does not apply: null is not 0.
 */
export const callSchema = z
  .object({
    provider: text(1, 200),
    model: text(1, 500),
    operation: z.enum(OPERATIONS).default('chat'),
    status: z.enum(STATUSES).default('success'),
    serviceTier: z.string().max(100).regex(SERVICE_TIER, 'must be a service tier name such as standard, batch, flex, priority or fast').default('standard'),
    createdAt: z.date().optional(),
    tenantId: label,
    userId: label,
    feature: label,
    conversationId: label,
    promptId: label,
    promptVersion: label,
    /** A plain JSON object, copied as it is validated (see toStorableJson for what is refused). */
    metadata: z
      .custom<JsonObject>()
      .transform((value, ctx) => {
        const result = toStorableJson(value);
        if (result.ok) return result.value;
        ctx.addIssue({ code: 'custom', message: result.problem, path: result.path, input: value });
        return z.NEVER;
      })
      .default({}),
    requestId: text(1, 1_000).nullish(),
    inputTokens: tokenCount,
    outputTokens: tokenCount,
    cacheReadTokens: tokenCount,
    cacheWriteTokens: tokenCount,
    reasoningTokens: tokenCount,
    cacheWrite1hTokens: tokenCount,
    audioInputTokens: tokenCount,
    audioOutputTokens: tokenCount,
    /** Audio input read from the prompt cache: counted in cacheReadTokens and in audioInputTokens too, as providers report it. */
    cacheReadAudioTokens: tokenCount,
    /** Image input not read from the prompt cache: cached image tokens are counted in cacheReadTokens only. */
    imageInputTokens: tokenCount,
    imageOutputTokens: tokenCount,
    /** Video input not read from the prompt cache: cached video tokens are counted in cacheReadTokens only. */
    videoInputTokens: tokenCount,
    /** Quantity billed per unit (images, seconds, requests, queries); a decimal string keeps it exact. */
    units: z.union([z.number().finite().min(0).max(1e12), z.string().regex(/^\d{1,12}(\.\d+)?$/, 'must be a non-negative decimal up to 1e12')])
      .transform(String)
      .nullish(),
    unit: text(1, 100).nullish(),
    /** Further units billed beside units and unit, as unit: quantity (e.g. { web_search: 3 } beside the tokens). */
    extraUnits: z.record(text(1, 100), z.number().finite().min(0).max(1e12)).nullish(),
    /** Cost the provider reported itself (e.g. OpenRouter), in micro-dollars: used instead of pricing the tokens. */
    providedCostMicros: z.bigint().min(0n).max(MAX_COST_MICROS).nullish(),
    streamed: z.boolean().default(false),
    cached: z.boolean().default(false),
    ttftMs: milliseconds,
    totalMs: milliseconds,
    errorMessage: text(0, 10_000).nullish(),
  })
  .strict()
  .superRefine((call, ctx) => {
    const cacheRead = validCount(call.cacheReadTokens);
    const cacheWrite = validCount(call.cacheWriteTokens);
    const input = validCount(call.inputTokens);
    if (cacheRead !== undefined && cacheWrite !== undefined && input !== undefined && cacheRead + cacheWrite > input) {
      ctx.addIssue({
        code: 'custom',
        path: ['inputTokens'],
        message: `must include cacheReadTokens + cacheWriteTokens (${cacheRead + cacheWrite}); pass all prompt tokens, not only the uncached ones`,
      });
    }
    const within = (part: keyof Call, whole: keyof Call, hint: string) => {
      const partValue = validCount(call[part]);
      const wholeValue = validCount(call[whole]);
      if (partValue !== undefined && wholeValue !== undefined && partValue > wholeValue) {
        ctx.addIssue({ code: 'custom', path: [whole], message: `must include ${part} (${partValue})${hint}` });
      }
    };
    within('reasoningTokens', 'outputTokens', '');
    within('audioInputTokens', 'inputTokens', '');
    within('audioOutputTokens', 'outputTokens', '');
    within('cacheWrite1hTokens', 'cacheWriteTokens', ': cacheWriteTokens counts all cache writes, 5-minute and 1-hour');
    within('cacheReadAudioTokens', 'cacheReadTokens', ': cacheReadTokens counts all cache reads, text and audio');
    within('cacheReadAudioTokens', 'audioInputTokens', ': audioInputTokens counts all audio input, cached or not');
    within('imageInputTokens', 'inputTokens', '');
    within('videoInputTokens', 'inputTokens', '');
    within('imageOutputTokens', 'outputTokens', '');
    if (call.units != null && !call.unit) {
      ctx.addIssue({ code: 'custom', path: ['unit'], message: 'is required with units (image, second, request, query, ...)' });
    }
    if (call.unit && call.extraUnits && Object.hasOwn(call.extraUnits, call.unit)) {
      ctx.addIssue({ code: 'custom', path: ['extraUnits', call.unit], message: 'is the unit of units already: count each unit once' });
    }
  });

export type CallInput = z.input<typeof callSchema>;
export type Call = z.output<typeof callSchema>;

/** A call that failed validation; the message, one line, names each bad field. */
export class InvalidCallError extends Error {
  override name = 'InvalidCallError';
  constructor(readonly issues: readonly z.core.$ZodIssue[]) {
    super(oneLine(`invalid call: ${issues.map((issue) => `${describePath(issue.path)}: ${describeIssue(issue)}`).join('; ')}`, 2_000));
  }
}

/** zod's message, with unknown keys quoted as JSON so that a key holding a newline or U+0000 stays visible on one line. */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'unrecognized_keys') return issue.message;
  return `Unrecognized key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
}

/** metadata.a.0, with a key that is not a plain name quoted as JSON ("a.b", "line\nbreak"); (call) for the call itself. */
function describePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(call)';
  return path.map((key) => (typeof key === 'string' && /^[\w$-]+$/.test(key) ? key : typeof key === 'number' ? String(key) : JSON.stringify(String(key)))).join('.');
}

/**
 * Validates a call and never throws: a call whose reading throws (a getter,
 * a Proxy) is refused like any invalid one, with the field that threw named.
 */
export function checkCall(input: unknown): { success: true; data: Call } | { success: false; error: InvalidCallError } {
  try {
    const result = callSchema.safeParse(input);
    return result.success ? { success: true, data: result.data } : { success: false, error: new InvalidCallError(result.error.issues) };
  } catch (error) {
    return { success: false, error: new InvalidCallError([unreadable(input, error)]) };
  }
}

/** The issue for a call that threw while it was read: the first field whose read throws, else the call as a whole. */
function unreadable(input: unknown, error: unknown): z.core.$ZodIssue {
  try {
    for (const key of Object.keys(input as object)) {
      try {
        void (input as Record<string, unknown>)[key];
      } catch (thrown) {
        return { code: 'custom', path: [key], message: `reading it threw ${describeThrown(thrown)}`, input };
      }
    }
  } catch {
    // Not even its keys can be listed: name the call as a whole.
  }
  return { code: 'custom', path: [], message: `could not be read: ${describeThrown(error)}`, input };
}

/** Validates a call, throwing InvalidCallError that names every bad field. */
export function parseCall(input: unknown): Call {
  const result = checkCall(input);
  if (!result.success) throw result.error;
  return result.data;
}
