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
  cacheReadAudioTokens: { column: 'cache_read_audio_tokens', type: 'bigint' },
  imageInputTokens: { column: 'image_input_tokens', type: 'bigint' },
  imageOutputTokens: { column: 'image_output_tokens', type: 'bigint' },
  videoInputTokens: { column: 'video_input_tokens', type: 'bigint' },
  units: { column: 'units', type: 'numeric' },
  unit: { column: 'unit', type: 'text' },
  extraUnits: { column: 'extra_units', type: 'jsonb' },
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
 * takes. A null field is left out: both read a missing key as null, and the
 * batch is smaller to send and to parse. JSON has no 64-bit integers, so
 * bigints travel as decimal strings, which PostgreSQL reads back exactly.
 */
export function callRecord(call: Call): Record<string, SerializableValue> {
  const record: Record<string, SerializableValue> = {};
  for (const [field, { column, type }] of FIELDS) {
    const value = call[field];
    if (value == null) continue;
    if (type === 'timestamptz') record[column] = (value as Date).toISOString();
    else if (type === 'bigint') record[column] = (value as bigint).toString();
    else record[column] = value as SerializableValue;
  }
  return record;
}

/** How each column type is written as JSON, for callJson. Every value has passed callSchema. */
const JSON_ENCODERS: Record<CallColumnType, (value: never) => string> = {
  text: jsonString,
  bigint: (value: bigint) => `"${value}"`,
  integer: (value: number) => String(value),
  numeric: (value: string) => `"${value}"`,
  boolean: (value: boolean) => (value ? 'true' : 'false'),
  jsonb: (value: SerializableValue) => JSON.stringify(value),
  timestamptz: (value: Date) => `"${isoTimestamp(value)}"`,
};

const JSON_FIELDS = FIELDS.map(([field, { column, type }]) => ({
  field, key: `${JSON.stringify(column)}:`, encode: JSON_ENCODERS[type] as (value: unknown) => string,
}));

/**
 * JSON.stringify(callRecord(call)), written directly: the recorder encodes
 * every call it sends, and this is several times faster than building the
 * object first (test/recorder.test.ts holds the two to the same text).
 */
export function callJson(call: Call): string {
  let json = '';
  for (const { field, key, encode } of JSON_FIELDS) {
    const value = call[field];
    if (value == null) continue;
    json += (json === '' ? '{' : ',') + key + encode(value);
  }
  return json === '' ? '{}' : `${json}}`;
}

// A string that needs no escaping is written as it is; most labels are such.
const NEEDS_ESCAPING = /["\\\u0000-\u001f]/;
function jsonString(value: string): string {
  return NEEDS_ESCAPING.test(value) ? JSON.stringify(value) : `"${value}"`;
}

// Date.prototype.toISOString costs about as much as the rest of a call's
// encoding, and calls come many to the second: the text up to the
// milliseconds is kept for the last second seen.
let isoSecond = Number.NaN;
let isoPrefix = '';
/** date.toISOString(), for any valid date. */
function isoTimestamp(date: Date): string {
  const ms = date.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = date.toISOString().slice(0, -4); // up to and including the '.' before the milliseconds
    isoSecond = second;
  }
  return `${isoPrefix}${String(ms - second * 1000).padStart(3, '0')}Z`;
}
