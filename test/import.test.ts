import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { InvalidPriceListError, parseLiteLlmPriceList } from '../src/pricing/litellm.js';
import { importPrices } from '../src/pricing/prices.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);
const fixture = (name: string) => new URL(`fixtures/litellm/${name}`, import.meta.url);
const read = async (name: string) => parseLiteLlmPriceList(await readFile(fixture(name), 'utf8'), name);
const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, [new URL('../bin/ai-cost.js', import.meta.url).pathname, ...args],
  { env: { ...process.env, DATABASE_URL: db.url } });

async function fixtureRows() {
  return db.query<{ model: string; service_tier: string; above_input_tokens: string; input: string | null;
    output: string | null; cache_read: string | null; cache_write: string | null; cache_write_1h: string | null;
    audio_input: string | null; unit: string | null; unit_price: string | null; valid_from: string }>(
    `SELECT model, service_tier, above_input_tokens, input_per_mtok::text AS input, output_per_mtok::text AS output,
            cache_read_per_mtok::text AS cache_read, cache_write_per_mtok::text AS cache_write,
            cache_write_1h_per_mtok::text AS cache_write_1h, audio_input_per_mtok::text AS audio_input,
            unit, unit_price::text, valid_from::text
       FROM ai_cost.prices WHERE model LIKE 'fixture-%' ORDER BY model, service_tier, above_input_tokens, valid_from`);
}

test.serial('a LiteLLM file maps onto tiers, long-context tiers, cache, audio and per-image rows', async (t) => {
  const { rows, skipped } = await read('prices-v1.json');
  t.deepEqual(skipped.map((s) => s.reason).sort(),
    ['no prices', 'provider some_new_host has no canonical pg-ai-cost id', 'the format\'s sample entry, not a model']);
  const result = await importPrices(db.pool, rows);
  t.is(result.filter((r) => r.action === 'added').length, 8);
  const stored = await fixtureRows();
  const brief = stored.map((r) => [r.model, r.service_tier, r.above_input_tokens, r.input, r.output, r.cache_read,
    r.cache_write, r.cache_write_1h, r.audio_input, r.unit, r.unit_price]);
  t.deepEqual(brief, [
    ['fixture-claude', 'standard', '0', '3', '15', '0.3', '3.75', '6', null, null, null],
    ['fixture-claude', 'standard', '200000', '6', '22.5', '0.6', '7.5', '12', null, null, null],
    ['fixture-gemini', 'standard', '0', '1.25', '10', null, null, null, '1', null, null],
    ['fixture-gemini', 'standard', '200000', '2.5', '15', null, null, null, '1', null, null],
    ['fixture-gpt', 'batch', '0', '1.25', '5', null, null, null, null, null, null],
    ['fixture-gpt', 'priority', '0', '4.25', '17', null, null, null, null, null, null],
    ['fixture-gpt', 'standard', '0', '2.5', '10', '1.25', null, null, null, null, null],
    ['fixture-image', 'standard', '0', null, null, null, null, null, null, 'image', '0.04'],
  ]);
  // A model's first price applies to its earlier calls too.
  t.true(stored.every((r) => r.valid_from === '-infinity'));
  // And prices calls: 1,000 x 2.5 + 100 x 10 = 3,500
  const [call] = await db.query<{ cost_micros: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'fixture-gpt', 1000, 100)
     RETURNING cost_micros`);
  t.is(call!.cost_micros, '3500');
});

test.serial('importing the same file again changes nothing', async (t) => {
  const before = await fixtureRows();
  const result = await importPrices(db.pool, (await read('prices-v1.json')).rows);
  t.deepEqual([...new Set(result.map((r) => r.action))], ['unchanged']);
  t.deepEqual(await fixtureRows(), before);
});

test.serial('a changed price gets a new row from the effective date; history keeps the old one', async (t) => {
  const effective = new Date('2026-08-01T00:00:00Z');
  const diff = await importPrices(db.pool, (await read('prices-v2.json')).rows, { effective, dryRun: true });
  t.deepEqual(diff.filter((r) => r.action !== 'unchanged').map((r) => [r.model, r.serviceTier, r.action, r.before?.input_per_mtok]),
    [['fixture-gpt', 'standard', 'changed', '2.5']]);
  t.is((await fixtureRows()).length, 8, 'a dry run writes nothing');
  await importPrices(db.pool, (await read('prices-v2.json')).rows, { effective });
  const gpt = (await fixtureRows()).filter((r) => r.model === 'fixture-gpt' && r.service_tier === 'standard');
  t.deepEqual(gpt.map((r) => [r.input, r.valid_from]), [['2.5', '-infinity'], ['2', '2026-08-01 00:00:00+00']]);
});

test('reasoning and cached audio rates are read where they differ from the rates that bill them anyway', async (t) => {
  const list = JSON.stringify({
    'perplexity/apart-deep-research': {
      litellm_provider: 'perplexity', input_cost_per_token: 2e-6, output_cost_per_token: 8e-6, output_cost_per_reasoning_token: 3e-6,
    },
    // Gemini lists its reasoning at the output rate: no rate of its own.
    'gemini/apart-thinking': {
      litellm_provider: 'gemini', input_cost_per_token: 3e-7, output_cost_per_token: 2.5e-6, output_cost_per_reasoning_token: 2.5e-6,
      cache_read_input_token_cost: 3e-8, input_cost_per_audio_token: 1e-6,
    },
    // cache_creation_input_audio_token_cost names a cache write: not read.
    'apart-realtime': {
      litellm_provider: 'openai', input_cost_per_token: 5e-6, output_cost_per_token: 2e-5, cache_read_input_token_cost: 2.5e-6,
      input_cost_per_audio_token: 1e-4, output_cost_per_audio_token: 2e-4, cache_read_input_audio_token_cost: 2e-5,
      cache_creation_input_audio_token_cost: 2e-5,
    },
    'apart-realtime-same': {
      litellm_provider: 'openai', input_cost_per_token: 4e-6, output_cost_per_token: 1.6e-5, cache_read_input_token_cost: 4e-7,
      input_cost_per_audio_token: 3.2e-5, cache_read_input_audio_token_cost: 4e-7,
    },
  });
  const { rows } = parseLiteLlmPriceList(list, 'inline');
  t.deepEqual(rows.map((r) => [r.model, r.reasoningPerMtok, r.cacheReadAudioPerMtok]), [
    ['apart-deep-research', '3', null],
    ['apart-thinking', null, null],
    ['apart-realtime', null, '20'],
    ['apart-realtime-same', null, null],
  ]);
  t.deepEqual(new Set((await importPrices(db.pool, rows)).map((r) => r.action)), new Set(['added']));
  t.deepEqual(await db.query(`SELECT model, reasoning_per_mtok::text AS reasoning, cache_read_audio_per_mtok::text AS cache_read_audio
                                FROM ai_cost.prices WHERE model LIKE 'apart-%' ORDER BY model`), [
    { model: 'apart-deep-research', reasoning: '3', cache_read_audio: null },
    { model: 'apart-realtime', reasoning: null, cache_read_audio: '20' },
    { model: 'apart-realtime-same', reasoning: null, cache_read_audio: null },
    { model: 'apart-thinking', reasoning: null, cache_read_audio: null },
  ]);
  t.deepEqual(new Set((await importPrices(db.pool, rows)).map((r) => r.action)), new Set(['unchanged']));
});

test('image token rates are read where they differ from the input and output rates; video per second is not a token rate', async (t) => {
  const list = JSON.stringify({
    'image-apart': {
      litellm_provider: 'openai', input_cost_per_token: 5e-6, cache_read_input_token_cost: 1.25e-6,
      input_cost_per_image_token: 1e-5, output_cost_per_image_token: 4e-5,
    },
    'gemini/image-apart-flash': {
      litellm_provider: 'gemini', input_cost_per_token: 3e-7, output_cost_per_token: 2.5e-6, output_cost_per_image_token: 3e-5,
      input_cost_per_video_per_second: 0.002,
    },
    'image-apart-same': {
      litellm_provider: 'openai', input_cost_per_token: 2e-6, output_cost_per_token: 8e-6, input_cost_per_image_token: 2e-6,
    },
  });
  const { rows } = parseLiteLlmPriceList(list, 'inline');
  t.deepEqual(rows.map((r) => [r.model, r.imageInputPerMtok, r.imageOutputPerMtok, r.videoInputPerMtok]), [
    ['image-apart', '10', '40', null],
    ['image-apart-flash', null, '30', null],
    ['image-apart-same', null, null, null],
  ]);
  t.deepEqual(new Set((await importPrices(db.pool, rows)).map((r) => r.action)), new Set(['added']));
  t.deepEqual(await db.query(`SELECT model, image_input_per_mtok::text AS image_in, image_output_per_mtok::text AS image_out
                                FROM ai_cost.prices WHERE model LIKE 'image-apart%' ORDER BY model`), [
    { model: 'image-apart', image_in: '10', image_out: '40' },
    { model: 'image-apart-flash', image_in: null, image_out: '30' },
    { model: 'image-apart-same', image_in: null, image_out: null },
  ]);
  t.deepEqual(new Set((await importPrices(db.pool, rows)).map((r) => r.action)), new Set(['unchanged']));
});

test('a malformed file is refused with the entry and field named, and nothing is written', async (t) => {
  await t.throwsAsync(read('malformed-cost.json'), {
    instanceOf: InvalidPriceListError,
    message: 'entry "fixture-claude": output_cost_per_token must be a non-negative number, not "15 dollars"',
  });
  await t.throwsAsync(read('not-json.json'), { instanceOf: InvalidPriceListError, message: /^not valid JSON: / });
  t.throws(() => parseLiteLlmPriceList('[1, 2]', 'x'), { message: /expected a JSON object of model entries/ });
  t.throws(() => parseLiteLlmPriceList('{"message": "Not Found"}', 'x'), { message: /^no model entries: expected a JSON object of model entries/ });
});

test.serial('import keeps a curated price the list gets wrong, and a price of yours, unless --overwrite', async (t) => {
  // The community list bills claude-3-opus-20240229's 1-hour cache writes at 6 USD per 1M; Anthropic's price is 2x input, 30.
  const list = parseLiteLlmPriceList(JSON.stringify({
    'claude-3-opus-20240229': { litellm_provider: 'anthropic', input_cost_per_token: 1.5e-5, output_cost_per_token: 7.5e-5,
      cache_read_input_token_cost: 1.5e-6, cache_creation_input_token_cost: 1.875e-5, cache_creation_input_token_cost_above_1hr: 6e-6 },
    'fixture-yours': { litellm_provider: 'openai', input_cost_per_token: 1e-6 },
  }), 'test');
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('openai', 'fixture-yours', '2020-01-01', 0.8)`);
  const opus1h = () => db.query<{ rate: string; catalog: string | null }>(`
    SELECT cache_write_1h_per_mtok::text AS rate, catalog FROM ai_cost.prices
     WHERE model = 'claude-3-opus-20240229' AND service_tier = 'standard' AND valid_to IS NULL`);
  const kept = await importPrices(db.pool, list.rows);
  t.deepEqual(kept.map((r) => [r.model, r.action, r.origin]), [['claude-3-opus-20240229', 'kept', 'catalog'], ['fixture-yours', 'kept', 'yours']]);
  t.deepEqual(await opus1h(), [{ rate: '30', catalog: '0.1.0' }]);

  const effective = new Date('2025-09-01T00:00:00Z');
  const replaced = await importPrices(db.pool, list.rows, { overwrite: true, effective });
  t.deepEqual(replaced.map((r) => r.action), ['changed', 'changed']);
  t.deepEqual(await opus1h(), [{ rate: '6', catalog: null }]);
});

test.serial('the CLI reports added, changed, unchanged and skipped, and one line for a bad file', async (t) => {
  const { stdout } = await cli('prices', 'import', fixture('prices-v1.json').pathname);
  t.regex(stdout, /prices-v1\.json: 0 added, 1 changed, 7 unchanged, 3 entries skipped/);
  const failed = await cli('prices', 'import', fixture('malformed-cost.json').pathname).catch((error: { stderr: string; code: number }) => error);
  t.is((failed as { code: number }).code, 1);
  t.is((failed as { stderr: string }).stderr.trim(),
    `ai-cost: ${fixture('malformed-cost.json').pathname}: entry "fixture-claude": output_cost_per_token must be a non-negative number, not "15 dollars"; nothing was written`);
});

test.serial('import and diff take --from as sync and set do, and --effective as before, but not both', async (t) => {
  const list = fixture('prices-v1.json').pathname;
  const byFrom = await cli('prices', 'diff', list, '--from', '2025-01-01', '--format', 'json');
  const byEffective = await cli('prices', 'diff', list, '--effective', '2025-01-01', '--format', 'json');
  t.is(byFrom.stdout, byEffective.stdout);
  t.not(byFrom.stdout, (await cli('prices', 'diff', list, '--format', 'json')).stdout, 'compared with the prices in force then, not now');
  const both = await cli('prices', 'import', list, '--from', 'now', '--effective', 'now').catch((error: { stderr: string; code: number }) => error);
  t.is((both as { code: number }).code, 1);
  t.regex((both as { stderr: string }).stderr, /^ai-cost: option '--effective <when>' cannot be used with option '--from <when>'/);
  for (const command of ['import', 'diff']) {
    const help = (await cli('prices', command, '--help')).stdout;
    t.regex(help, /--from <when>/, command);
    t.notRegex(help, /--effective/, command);
  }
});

// Names that are also properties of every JavaScript object. The fixtures are
// JSON text, as a price list is: JSON.parse makes "__proto__" an own key,
// which an object literal in the test would not.
const OBJECT_PROPERTY_NAMES = ['__proto__', 'constructor', 'toString', 'toString-x', 'hasOwnProperty', 'prototype', 'valueOf'];

for (const name of OBJECT_PROPERTY_NAMES) {
  test(`a LiteLLM provider named ${name} is an unknown provider, not a crash or a price for another provider`, (t) => {
    const text = `{${JSON.stringify(`${name}/fixture-model`)}: {"litellm_provider": ${JSON.stringify(name)}, "input_cost_per_token": 1e-6}}`;
    const { rows, skipped } = parseLiteLlmPriceList(text, 'test');
    t.deepEqual(rows, []);
    t.deepEqual(skipped, [{ key: `${name}/fixture-model`, reason: `provider ${name} has no canonical pg-ai-cost id`, unknownProvider: name }]);
  });

  test(`a LiteLLM model named ${name} is priced under that name`, (t) => {
    const text = `{${JSON.stringify(name)}: {"litellm_provider": "openai", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}`;
    const { rows, skipped } = parseLiteLlmPriceList(text, 'test');
    t.deepEqual(skipped, []);
    t.deepEqual(rows.map((r) => [r.provider, r.model, r.serviceTier, r.inputPerMtok, r.outputPerMtok]), [['openai', name, 'standard', '1', '2']]);
  });

  test(`a LiteLLM entry field named ${name} is data: it neither prices nor breaks the entry`, (t) => {
    const text = `{"fixture-fields": {"litellm_provider": "openai", "output_cost_per_token": 2e-6,
      ${JSON.stringify(name)}: {"input_cost_per_token": 1e-6, "output_cost_per_token": -1}}}`;
    const { rows } = parseLiteLlmPriceList(text, 'test');
    t.deepEqual(rows.map((r) => [r.provider, r.model, r.inputPerMtok, r.outputPerMtok]), [['openai', 'fixture-fields', null, '2']]);
  });
}

test.serial('models named like object properties are imported and stored under their own names', async (t) => {
  const text = JSON.stringify(Object.fromEntries(OBJECT_PROPERTY_NAMES.map((name) =>
    [`object-property-${name}`, { litellm_provider: 'openai', input_cost_per_token: 1e-6 }])))
    .replace('"object-property-__proto__"', '"__proto__"');
  const { rows } = parseLiteLlmPriceList(text, 'test');
  const result = await importPrices(db.pool, rows);
  t.is(result.filter((r) => r.action === 'added').length, OBJECT_PROPERTY_NAMES.length);
  const stored = await db.query<{ provider: string; model: string; input: string }>(
    `SELECT provider, model, input_per_mtok::text AS input FROM ai_cost.prices
      WHERE model = '__proto__' OR model LIKE 'object-property-%' ORDER BY model`);
  t.deepEqual(stored.map((r) => [r.provider, r.model, r.input]), [
    ['openai', '__proto__', '1'],
    ...OBJECT_PROPERTY_NAMES.filter((name) => name !== '__proto__').map((name) => ['openai', `object-property-${name}`, '1']).sort(),
  ]);
});
