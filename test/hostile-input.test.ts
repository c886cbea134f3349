import test from 'ava';
import { parseCall, recordCall } from '../src/recorder/index.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

async function callCount(): Promise<number> {
  const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost.calls');
  return Number(row!.n);
}

test('SQL metacharacters in every text field are stored as plain text', async (t) => {
  const nasty = `'); DROP TABLE ai_cost.calls; -- "\\ $1 %s \${x} ;`;
  const recorded = await recordCall(db.pool, {
    provider: nasty, model: nasty, tenantId: nasty, userId: nasty, feature: nasty, conversationId: nasty,
    promptId: nasty, promptVersion: nasty, requestId: nasty, errorMessage: nasty, unit: nasty, units: 1,
    metadata: { [nasty]: nasty },
  });
  const [row] = await db.query<Record<string, string>>(
    'SELECT provider, model, tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, request_id, error_message, unit, metadata::text AS metadata FROM ai_cost.calls WHERE id = $1',
    [recorded.id.toString()]);
  for (const [column, value] of Object.entries(row!)) {
    if (column !== 'metadata') t.is(value, nasty, column);
  }
  t.deepEqual(JSON.parse(row!.metadata!), { [nasty]: nasty });
  t.is(recorded.costMicros, null); // no price for that provider: unpriced, not an error
});

// Serial: these count rows, and ava runs serial tests before the concurrent ones.
test.serial('invalid UTF-8 from a client is refused whole', async (t) => {
  const before = await callCount();
  const error = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, feature) VALUES ('openai', 'gpt-4o-mini', convert_from('\\xc328'::bytea, 'UTF8'))`));
  t.regex(error!.message, /invalid byte sequence for encoding "UTF8"/);
  const nul = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, metadata) VALUES ('openai', 'gpt-4o-mini', '{"a": "\\u0000"}')`));
  t.regex(nul!.message, /unsupported Unicode escape sequence|\\u0000 cannot be converted to text/);
  t.is(await callCount(), before);
});

test('overflowing token counts are refused with a message, not wrapped around', async (t) => {
  const error = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('openai', 'gpt-4o-mini', 9223372036854775808)`));
  t.regex(error!.message, /out of range/);
  const absurd = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('openai', 'gpt-4o-mini', 9223372036854775807)`));
  t.regex(absurd!.message, /token counts must be at most 1e10/);
  const cost = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, provided_cost_micros) VALUES ('openrouter', 'any', 9223372036854775807)`));
  t.regex(cost!.message, /provided_cost_micros must be at most 1e10/);
});

test('NaN and Infinity cannot become prices', async (t) => {
  for (const value of ['NaN', 'Infinity', '1e7']) {
    const error = await t.throwsAsync(db.query(
      `INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok) VALUES ('x', 'y', $1::numeric, 1)`, [value]));
    t.regex(error!.message, /prices must be finite and below 1000000 USD per 1M tokens/, value);
  }
});

test.serial('a batch with one bad row writes nothing', async (t) => {
  const before = await callCount();
  await t.throwsAsync(db.query(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES
      ('openai', 'gpt-4o-mini', 10, 1), ('openai', 'gpt-4o-mini', 10, 1), ('openai', 'gpt-4o-mini', -1, 1)`));
  t.is(await callCount(), before);
});

test.serial('insert_calls refuses a hostile batch whole, naming the problem', async (t) => {
  const before = await callCount();
  const batch = (...calls: object[]) => db.query('SELECT ai_cost.insert_calls($1::jsonb)', [JSON.stringify(calls)]);
  const good = { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 10, output_tokens: 1 };
  for (const [bad, message] of [
    [{ ...good, input_tokens: -1 }, /token counts must not be negative/],
    [{ ...good, input_tokens: 9223372036854775807n.toString() }, /token counts must be at most 1e10/],
    [{ ...good, input_tokens: '1e40' }, /invalid input syntax for type bigint|out of range/],
    [{ ...good, status: 'ok' }, /status must be success, error or cancelled/],
    [{ ...good, units: 'NaN', unit: 'image' }, /units must be finite/],
    [{ ...good, error_message: 'x'.repeat(10_001) }, /error_message must be at most 10000 characters/],
    [{ ...good, provider: null }, /null value in column "provider"/],
  ] as const) {
    const error = await t.throwsAsync(batch(good, bad, good));
    t.regex(error!.message, message, JSON.stringify(bad).slice(0, 80));
  }
  const notArray = await t.throwsAsync(db.query(`SELECT ai_cost.insert_calls('{"provider": "openai"}')`));
  t.regex(notArray!.message, /takes a JSON array of call objects, not a JSON object/);
  t.is(await callCount(), before, 'nothing of a refused batch is written');

  const nasty = `'); DROP TABLE ai_cost.calls; -- "\\ $1 %s`;
  await batch({ ...good, model: nasty, feature: nasty, request_id: nasty });
  const [row] = await db.query<{ model: string; feature: string }>('SELECT model, feature FROM ai_cost.calls WHERE request_id = $1', [nasty]);
  t.deepEqual(row, { model: nasty, feature: nasty });
});

test('the TypeScript schema refuses hostile values before they reach the database', (t) => {
  const base = { provider: 'openai', model: 'gpt-4o-mini' };
  for (const [field, value] of [
    ['inputTokens', Number.POSITIVE_INFINITY], ['inputTokens', Number.NaN], ['inputTokens', 1e13],
    ['outputTokens', -1], ['totalMs', 2 ** 31], ['units', Number.NaN], ['units', '1e5'], ['tenantId', 'x'.repeat(1_001)],
    ['metadata', { blob: 'x'.repeat(70_000) }], ['metadata', []], ['status', 'ok'], ['operation', 'DROP TABLE'],
  ] as const) {
    const error = t.throws(() => parseCall({ ...base, [field]: value }), undefined, `${field}=${String(value).slice(0, 20)}`);
    t.regex(error!.message, new RegExp(field), field);
  }
});

test('hostile CLI arguments are data, never SQL', async (t) => {
  const result = await runCli(['report', '--since', "2026-01-01'; DROP TABLE ai_cost.calls; --", '--database-url', db.url]);
  t.not(result.code, 0);
  t.regex(result.stderr, /is not a date/);
  const url = await runCli(['report', '--database-url', `${db.url}'; DROP SCHEMA ai_cost CASCADE; --`]);
  t.not(url.code, 0);
  const [row] = await db.query<{ calls: string | null }>(`SELECT to_regclass('ai_cost.calls')::text AS calls`);
  t.is(row!.calls, 'ai_cost.calls');
});
