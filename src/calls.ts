import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';

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

const recordedSchema = z.object({
  id: z.bigint(),
  cost_micros: z.bigint().nullable(),
  price_id: z.bigint().nullable(),
});

export interface RecordedCall {
  id: bigint;
  /** Micro-dollars; null when unpriced. */
  costMicros: bigint | null;
  priceId: bigint | null;
  /** True when a call with the same requestId was already recorded: nothing was written. */
  duplicate: boolean;
}

/**
 * Validates and inserts one call, awaiting the database, and returns the cost
 * the trigger computed. A repeated requestId writes nothing and returns the
 * row recorded first. (For the request path, the batching recorder does not
 * make the caller wait.)
 */
export async function recordCall(db: CommonQueryMethods, input: CallInput): Promise<RecordedCall> {
  const call = parseCall(input);
  const inserted = await db.maybeOne(sql.type(recordedSchema)`
    INSERT INTO ai_cost.calls (
      created_at, provider, model, operation, status, service_tier,
      tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
      cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit, provided_cost_micros,
      streamed, cached, ttft_ms, total_ms, error_message
    ) VALUES (
      ${call.createdAt ? sql.timestamp(call.createdAt) : sql.fragment`now()`},
      ${call.provider}, ${call.model}, ${call.operation}, ${call.status}, ${call.serviceTier},
      ${call.tenantId ?? null}, ${call.userId ?? null}, ${call.feature ?? null},
      ${call.conversationId ?? null}, ${call.promptId ?? null}, ${call.promptVersion ?? null},
      ${sql.jsonb(call.metadata)}, ${call.requestId ?? null},
      ${call.inputTokens ?? null}, ${call.outputTokens ?? null}, ${call.cacheReadTokens ?? null},
      ${call.cacheWriteTokens ?? null}, ${call.reasoningTokens ?? null},
      ${call.cacheWrite1hTokens ?? null}, ${call.audioInputTokens ?? null}, ${call.audioOutputTokens ?? null},
      ${call.units ?? null}, ${call.unit ?? null}, ${call.providedCostMicros ?? null},
      ${call.streamed}, ${call.cached}, ${call.ttftMs ?? null}, ${call.totalMs ?? null},
      ${call.errorMessage ?? null}
    )
    ON CONFLICT DO NOTHING
    RETURNING id, cost_micros, price_id
  `);
  const row = inserted ?? (await db.one(sql.type(recordedSchema)`
    SELECT id, cost_micros, price_id FROM ai_cost.calls WHERE request_id = ${call.requestId ?? null}
  `));
  return { id: row.id, costMicros: row.cost_micros, priceId: row.price_id, duplicate: inserted === null };
}
