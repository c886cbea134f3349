import { sql, type ListSqlToken, type PrimitiveValueExpression, type SerializableValue, type ValueExpression } from 'slonik';
import type { Call } from './call.js';

/** The PostgreSQL type of each written column, which also decides how its value is encoded. */
const SQL_TYPES = {
  text: sql.fragment`text`,
  bigint: sql.fragment`bigint`,
  integer: sql.fragment`integer`,
  numeric: sql.fragment`numeric`,
  boolean: sql.fragment`boolean`,
  jsonb: sql.fragment`jsonb`,
  timestamptz: sql.fragment`timestamptz`,
} as const;

export type CallColumnType = keyof typeof SQL_TYPES;

export interface CallColumn {
  column: string;
  type: CallColumnType;
}

/**
 * The columns of ai_cost.calls that the TypeScript layer writes, keyed by the
 * Call field that fills each: the one list recordCall and the recorder's
 * batches are built from. The id and what the cost trigger sets
 * (cost_micros, price_id, discount_id, unpriced_reason) are not written.
 * The compiler holds it to the Call type; test/call-columns.test.ts holds it
 * to the table and to ai_cost.insert_calls().
 */
export const CALL_COLUMNS = {
  createdAt: { column: 'created_at', type: 'timestamptz' },
  provider: { column: 'provider', type: 'text' },
  model: { column: 'model', type: 'text' },
  operation: { column: 'operation', type: 'text' },
  status: { column: 'status', type: 'text' },
  serviceTier: { column: 'service_tier', type: 'text' },
  tenantId: { column: 'tenant_id', type: 'text' },
  userId: { column: 'user_id', type: 'text' },
  feature: { column: 'feature', type: 'text' },
  conversationId: { column: 'conversation_id', type: 'text' },
  promptId: { column: 'prompt_id', type: 'text' },
  promptVersion: { column: 'prompt_version', type: 'text' },
  metadata: { column: 'metadata', type: 'jsonb' },
  requestId: { column: 'request_id', type: 'text' },
  inputTokens: { column: 'input_tokens', type: 'bigint' },
  outputTokens: { column: 'output_tokens', type: 'bigint' },
  cacheReadTokens: { column: 'cache_read_tokens', type: 'bigint' },
  cacheWriteTokens: { column: 'cache_write_tokens', type: 'bigint' },
  reasoningTokens: { column: 'reasoning_tokens', type: 'bigint' },
  cacheWrite1hTokens: { column: 'cache_write_1h_tokens', type: 'bigint' },
  audioInputTokens: { column: 'audio_input_tokens', type: 'bigint' },
  audioOutputTokens: { column: 'audio_output_tokens', type: 'bigint' },
  units: { column: 'units', type: 'numeric' },
  unit: { column: 'unit', type: 'text' },
  providedCostMicros: { column: 'provided_cost_micros', type: 'bigint' },
  streamed: { column: 'streamed', type: 'boolean' },
  cached: { column: 'cached', type: 'boolean' },
  ttftMs: { column: 'ttft_ms', type: 'integer' },
  totalMs: { column: 'total_ms', type: 'integer' },
  errorMessage: { column: 'error_message', type: 'text' },
} as const satisfies Record<keyof Call, CallColumn>;

const FIELDS = Object.entries(CALL_COLUMNS) as Array<[keyof Call, CallColumn]>;
const COMMA = sql.fragment`, `;

/** The written columns, for the column list of an INSERT and the select list that feeds it. */
export const callColumnList = sql.join(FIELDS.map(([, { column }]) => sql.identifier([column])), COMMA);

/** The column definitions jsonb_to_recordset() needs to read call records (see callRecord). */
export const callRecordColumns = sql.join(
  FIELDS.map(([, { column, type }]) => sql.fragment`${sql.identifier([column])} ${SQL_TYPES[type]}`), COMMA);

/**
 * One call as the values of an INSERT ... VALUES row, in callColumnList
 * order. A field left undefined (only createdAt can be) writes the column's
 * default, so the database's clock stamps the call.
 */
export function callValues(call: Call): ListSqlToken {
  const values = FIELDS.map(([field, { type }]): ValueExpression => {
    const value = call[field];
    if (value === undefined) return sql.fragment`DEFAULT`;
    if (value === null) return null;
    if (type === 'timestamptz') return sql.timestamp(value as Date);
    if (type === 'jsonb') return sql.jsonb(value as SerializableValue);
    return value as PrimitiveValueExpression;
  });
  return sql.join(values, COMMA);
}

/**
 * One call as a JSON object keyed by column, the shape ai_cost.insert_calls()
 * takes. JSON has no 64-bit integers, so bigints travel as decimal strings,
 * which PostgreSQL reads back exactly.
 */
export function callRecord(call: Call): Record<string, SerializableValue> {
  return Object.fromEntries(FIELDS.map(([field, { column, type }]) => {
    const value = call[field] ?? null;
    if (value === null) return [column, null];
    if (type === 'timestamptz') return [column, (value as Date).toISOString()];
    if (type === 'bigint') return [column, (value as bigint).toString()];
    return [column, value as SerializableValue];
  }));
}
