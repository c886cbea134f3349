import test from 'ava';
import { diagnose, type Check } from '../src/reporting/doctor.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

// `ai-cost doctor` warns while calls of the last 7 days have no price,
// naming the models with their unpriced calls, since when and why, and the
// commands that price them; ok when every recent call is priced.
const db = useTestDatabase(test);

async function unpricedLine(): Promise<Check> {
  const { checks } = await diagnose(db.url, db.pool);
  const line = checks.find((check) => check.name === 'unpriced models');
  if (!line) throw new Error(`no unpriced models check among ${checks.map((check) => check.name).join(', ')}`);
  return line;
}

const calls = (model: string, count: number, createdAt = 'now()') =>
  db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens, output_tokens)
            SELECT ${createdAt}, 'openai', $1, 1000, 100 FROM generate_series(1, $2)`, [model, count]);

test.serial('ok while every call of the last 7 days is priced, older unpriced calls included', async (t) => {
  await calls('gpt-4o-mini', 2);
  await calls('old-model', 5, "now() - interval '9 days'");
  t.deepEqual(await unpricedLine(), { name: 'unpriced models', level: 'ok', detail: 'every call of the last 7 days has a price' });
});

test.serial('a warning naming the recent unpriced models, most calls first, with the commands that price them', async (t) => {
  await calls('new-model', 1200);
  await calls('new-model', 3, "'2026-01-02 10:20Z'"); // before the last 7 days: counted and dated, it needs the price too
  await calls('old-model', 1);
  await db.query('SELECT ai_cost.refresh(views => false)');
  await calls('new-model', 1); // not folded yet: the live view counts it

  const line = await unpricedLine();
  t.is(line.level, 'warn');
  t.is(line.detail, '2 model(s) had calls without a price in the last 7 days: '
    + 'openai/new-model (standard): 1,204 unpriced call(s) since 2026-01-02T10:00Z, no price for model openai/new-model; '
    + `openai/old-model (standard): 6 unpriced call(s) since ${await firstHour('old-model')}, no price for model openai/old-model. `
    + 'Give each a price in force from its first call (`ai-cost prices set <provider> <model> --input <usd> --output <usd> --from 2026-01-02T10:00Z`, '
    + 'with --tier for another tier; or `ai-cost prices sync --apply` when the community list has it), '
    + 'then `ai-cost reprice --unpriced --from 2026-01-02T10:00Z`; SELECT * FROM ai_cost.unpriced_models lists them all');
});

test.serial('beyond three models the rest are counted; the CLI prints the line', async (t) => {
  for (const model of ['m-a', 'm-b', 'm-c']) await calls(model, 2);
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.is(doctor.code, 0, doctor.stderr);
  t.regex(doctor.stdout, /^warn {2}unpriced models: 5 model\(s\) had calls without a price in the last 7 days: openai\/new-model .*; and 2 more\. Give each a price/m);
});

test.serial('priced and repriced, the models leave the line', async (t) => {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  SELECT 'openai', m, '-infinity', 1, 2 FROM unnest(ARRAY['new-model', 'old-model', 'm-a', 'm-b', 'm-c']) AS m`);
  await db.query(`CALL ai_cost.reprice('2020-01-01', now() + interval '1 hour', 'priced', only_unpriced => true)`);
  t.is((await unpricedLine()).level, 'ok');
});

test.serial('a price lacking a rate its calls use, and calls that reported no usage, each get their own remedy', async (t) => {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('openai', 'no-cache-write', '-infinity', 1, 2)`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_write_tokens)
                  VALUES ('openai', 'no-cache-write', 1000, 100, 500)`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model) VALUES ('openai', 'new-model')`);
  const line = await unpricedLine();
  t.is(line.level, 'warn');
  t.regex(line.detail, /openai\/no-cache-write \(standard\): 1 unpriced call\(s\) since \S+, no price for cache write tokens/);
  t.regex(line.detail, /openai\/new-model \(standard\): 1 unpriced call\(s\) since \S+, no usage reported/);
  t.regex(line.detail, /\. Give the prices the rates they lack \(`ai-cost prices set <provider> <model>` with the rates of the price in force and --cache-write <usd>, --from \S+; `ai-cost prices list` shows them\), then `ai-cost reprice --unpriced --from \S+`; calls that reported no usage \(no tokens, no units\) have nothing to price: record their usage; SELECT \* FROM ai_cost\.unpriced_models lists them all$/);
  t.notRegex(line.detail, /Give each a price/, 'both models have a price');

  await db.query(`UPDATE ai_cost.prices SET cache_write_per_mtok = 1.25 WHERE model = 'no-cache-write'`);
  await db.query(`CALL ai_cost.reprice('2020-01-01', now() + interval '1 hour', 'cache write rate', only_unpriced => true)`);
  t.regex((await unpricedLine()).detail, /: openai\/new-model \(standard\): 1 unpriced call\(s\) since \S+, no usage reported[^.]*\. Calls that reported no usage \(no tokens, no units\) have nothing to price: record their usage; SELECT/,
    'the calls without usage alone: no price to give');
});

/** The UTC hour of a model's earliest call, as the line writes it. */
async function firstHour(model: string): Promise<string> {
  const [row] = await db.query<{ hour: string }>(
    `SELECT to_char(min(date_trunc('hour', created_at, 'UTC')) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') AS hour
       FROM ai_cost.calls WHERE model = $1`, [model]);
  return row!.hour;
}
