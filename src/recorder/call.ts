import { z } from 'zod';

const OPERATIONS = [
  'chat', 'completion', 'embedding', 'image', 'audio_transcription',
  'audio_speech', 'moderation', 'rerank', 'video', 'web_search', 'other',
] as const;
const STATUSES = ['success', 'error', 'cancelled'] as const;
const SERVICE_TIERS = ['standard', 'batch', 'flex', 'priority'] as const;

/** The database's bound on any one token count: far above any real call, far below overflow. */
const MAX_TOKENS = 1e12;
const tokenCount = z
  .union([z.number().int().min(0).max(MAX_TOKENS), z.bigint().min(0n).max(BigInt(MAX_TOKENS))])
  .transform((value) => BigInt(value))
  .nullish();
const label = z.string().min(1).max(1_000).nullish();
const milliseconds = z.number().int().min(0).max(2_147_483_647).nullish();

/**
 * One AI/LLM call as the application reports it. Token counts follow the
 * OpenTelemetry GenAI semantics: inputTokens counts ALL prompt tokens,
 * including cache reads and writes; outputTokens includes reasoning tokens.
 * Leave a count out (or null) when it does not apply: null is not 0.
 */
export const callSchema = z
  .object({
    provider: z.string().min(1).max(200),
    model: z.string().min(1).max(500),
    operation: z.enum(OPERATIONS).default('chat'),
    status: z.enum(STATUSES).default('success'),
    serviceTier: z.enum(SERVICE_TIERS).default('standard'),
    createdAt: z.date().optional(),
    tenantId: label,
    userId: label,
    feature: label,
    conversationId: label,
    promptId: label,
    promptVersion: label,
    metadata: z
      .record(z.string(), z.json())
      .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= 65_536, 'must be at most 64 kB as JSON')
      .default({}),
    requestId: z.string().min(1).max(1_000).nullish(),
    inputTokens: tokenCount,
    outputTokens: tokenCount,
    cacheReadTokens: tokenCount,
    cacheWriteTokens: tokenCount,
    reasoningTokens: tokenCount,
    cacheWrite1hTokens: tokenCount,
    audioInputTokens: tokenCount,
    audioOutputTokens: tokenCount,
    /** Quantity billed per unit (images, seconds, requests, queries); a decimal string keeps it exact. */
    units: z.union([z.number().finite().min(0).max(MAX_TOKENS), z.string().regex(/^\d{1,12}(\.\d+)?$/, 'must be a non-negative decimal up to 1e12')])
      .transform(String)
      .nullish(),
    unit: z.string().min(1).max(100).nullish(),
    /** Cost the provider reported itself (e.g. OpenRouter), in micro-dollars: used instead of pricing the tokens. */
    providedCostMicros: z.bigint().min(0n).max(2n ** 63n - 1n).nullish(),
    streamed: z.boolean().default(false),
    cached: z.boolean().default(false),
    ttftMs: milliseconds,
    totalMs: milliseconds,
    errorMessage: z.string().max(10_000).nullish(),
  })
  .strict()
  .superRefine((call, ctx) => {
    const cacheTokens = (call.cacheReadTokens ?? 0n) + (call.cacheWriteTokens ?? 0n);
    if (cacheTokens > (call.inputTokens ?? 0n)) {
      ctx.addIssue({
        code: 'custom',
        path: ['inputTokens'],
        message: `must include cacheReadTokens + cacheWriteTokens (${cacheTokens}); pass all prompt tokens, not only the uncached ones`,
      });
    }
    const within = (part: keyof Call, whole: keyof Call, hint: string) => {
      const partValue = (call[part] as bigint | null | undefined) ?? 0n;
      if (partValue > ((call[whole] as bigint | null | undefined) ?? 0n)) {
        ctx.addIssue({ code: 'custom', path: [whole], message: `must include ${part} (${partValue})${hint}` });
      }
    };
    within('reasoningTokens', 'outputTokens', '');
    within('audioInputTokens', 'inputTokens', '');
    within('audioOutputTokens', 'outputTokens', '');
    within('cacheWrite1hTokens', 'cacheWriteTokens', ': cacheWriteTokens counts all cache writes, 5-minute and 1-hour');
    if (call.units != null && !call.unit) {
      ctx.addIssue({ code: 'custom', path: ['unit'], message: 'is required with units (image, second, request, query, ...)' });
    }
  });

export type CallInput = z.input<typeof callSchema>;
export type Call = z.output<typeof callSchema>;

/** A call that failed validation; the message names each bad field. */
export class InvalidCallError extends Error {
  override name = 'InvalidCallError';
  constructor(readonly issues: readonly z.core.$ZodIssue[]) {
    super(`invalid call: ${issues.map((issue) => `${issue.path.join('.') || '(call)'}: ${issue.message}`).join('; ')}`);
  }
}

/** Validates a call, throwing InvalidCallError that names every bad field. */
export function parseCall(input: unknown): Call {
  const result = callSchema.safeParse(input);
  if (!result.success) throw new InvalidCallError(result.error.issues);
  return result.data;
}
