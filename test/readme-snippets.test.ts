import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { migrationStatus } from '../src/migrate.js';
import { formatMicros } from '../src/money.js';
import { useTestDatabase } from './support/database.js';
import { startFakeProvider, type FakeProvider } from './support/fake-provider.js';
import { psql, pythonWithPsycopg, testWithTool, type Tool } from './support/tools.js';
import { createUserProject, type UserProject } from './support/user-project.js';

/**
 * The README is run, not read. Every fenced code block of README.md runs
 * verbatim, in the README's order, in a user's project (pg-ai-cost in its
 * node_modules) against an empty database, which the README's own
 * `npx ai-cost migrate up` installs. The snippets get DATABASE_URL, and the
 * OpenAI client's documented OPENAI_API_KEY and OPENAI_BASE_URL, pointing at
 * a local stand-in for the OpenAI API. A shell block runs line by line. Each
 * snippet that runs has a check of what it produced (CHECKS); the few that
 * cannot run here are in NOT_RUN, with the reason.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const README = join(root, 'README.md');
const LITELLM_FIXTURE = join(root, 'test/fixtures/litellm/prices-v1.json');

/** What of the README this test does not run, and why: a shell command, or the first line of a block. */
const NOT_RUN = new Map([
  ['npm install && npm run demo', 'needs the npm registry; test/demo.test.ts runs the demo'],
  ['npm test', 'is the test suite this test belongs to'],
  ['npm install pg-ai-cost', 'needs the npm registry; the test project links the built package into node_modules instead'],
]);

interface Snippet {
  language: string;
  code: string;
  /** Line in README.md: the opening fence of a block, or the line of a shell command. */
  line: number;
}

const SHELL = new Set(['sh', 'bash', 'shell']);

/** The README's fenced code blocks, a shell block split into its command lines. */
function readmeSnippets(markdown: string): Snippet[] {
  const snippets: Snippet[] = [];
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const fence = /^```(\S*)\s*$/.exec(lines[index]!);
    if (!fence) continue;
    let end = index + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end += 1;
    const language = fence[1] || 'unlabelled';
    const body = lines.slice(index + 1, end);
    if (SHELL.has(language)) {
      body.forEach((code, offset) => {
        if (code.trim() !== '') snippets.push({ language: 'sh', code, line: index + offset + 2 });
      });
    } else {
      snippets.push({ language, code: `${body.join('\n')}\n`, line: index + 1 });
    }
    index = end;
  }
  return snippets;
}

/** A shell command without its trailing comment, or a block's first line. */
const commandOf = (snippet: Snippet) => (snippet.language === 'sh' ? snippet.code.replace(/\s+#.*$/, '') : snippet.code.split('\n')[0]!).trim();
const notRunReason = (snippet: Snippet): string | undefined => NOT_RUN.get(commandOf(snippet));

const snippets = readmeSnippets(readFileSync(README, 'utf8'));
const db = useTestDatabase(test, { migrated: false });
let project: UserProject;
let provider: FakeProvider;

test.before(async () => {
  project = await createUserProject(['pg', 'openai', '@types/node']);
  // The file a user downloads from LiteLLM for `ai-cost prices import`; the fixture has its format.
  await copyFile(LITELLM_FIXTURE, join(project.dir, 'model_prices_and_context_window.json'));
  provider = await startFakeProvider();
});
test.after.always(async () => {
  await provider?.close();
  await project?.remove();
});

interface CallRow {
  request_id: string | null;
  provider: string;
  model: string;
  feature: string | null;
  tenant_id: string | null;
  cost: string | null;
}

interface Ran {
  stdout: string;
  /** Rows the snippet added to ai_cost.calls, in insertion order. */
  added: CallRow[];
}

interface Check {
  /** Text that occurs in exactly one snippet of the README: the one this checks. */
  snippet: string;
  check(t: ExecutionContext, ran: Ran): Promise<void> | void;
}

const call = (row: Partial<CallRow> & Pick<CallRow, 'request_id' | 'provider' | 'model' | 'cost'>): CallRow => ({ feature: null, tenant_id: null, ...row });

async function totalCost(where = 'true'): Promise<bigint> {
  const [row] = await db.query<{ total: string }>(`SELECT coalesce(sum(cost_micros), 0)::text AS total FROM ai_cost.calls WHERE ${where}`);
  return BigInt(row!.total);
}

async function modelsRecorded(): Promise<string[]> {
  return (await db.query<{ model: string }>('SELECT DISTINCT model FROM ai_cost.calls ORDER BY model')).map((row) => row.model);
}

const CHECKS: Check[] = [
  {
    snippet: 'npx ai-cost migrate up',
    check: async (t, ran) => {
      t.regex(ran.stdout, /installed pg-ai-cost/);
      t.deepEqual((await migrationStatus(db.url)).pending, [], 'every shipped migration is recorded');
    },
  },
  {
    snippet: "'chatcmpl-123'",
    check: (t, ran) => {
      t.deepEqual(ran.added, [call({ request_id: 'chatcmpl-123', provider: 'openai', model: 'gpt-4o-mini', feature: 'support-bot', tenant_id: 'acme', cost: '285' })]);
      t.regex(ran.stdout, /^\s*285$/m, 'RETURNING shows the cost');
    },
  },
  {
    snippet: '"msg_01abc"',
    check: (t, ran) => {
      t.deepEqual(ran.added, [call({ request_id: 'msg_01abc', provider: 'anthropic', model: 'claude-haiku-4-5', cost: '2750' })]);
      t.is(ran.stdout.trim(), '(2750,)');
    },
  },
  {
    snippet: "'resp-42'",
    check: (t, ran) => {
      t.deepEqual(ran.added, [call({ request_id: 'resp-42', provider: 'google', model: 'gemini-2.5-flash', cost: '2500' })]);
      t.is(ran.stdout.trim(), "[ { cost_micros: '2500' } ]");
    },
  },
  {
    snippet: "requestId: 'chatcmpl-456'",
    check: (t, ran) => {
      t.deepEqual(ran.added, [call({ request_id: 'chatcmpl-456', provider: 'openai', model: 'gpt-4o-mini', feature: 'summarize', cost: '285' })]);
      t.is(ran.stdout.trim(), '285n');
    },
  },
  {
    snippet: 'instrumentOpenAI(new OpenAI()',
    check: (t, ran) => {
      t.deepEqual(provider.requests.map((request) => request.path), ['/v1/chat/completions'], 'the SDK called the API at OPENAI_BASE_URL');
      // The stand-in's usage: 2,006 prompt tokens of which 1,920 cached, 300 output:
      // 86 x 0.15 + 1,920 x 0.075 + 300 x 0.60 = 336.9, rounded up once.
      t.deepEqual(ran.added, [call({ request_id: 'chatcmpl-fake-1', provider: 'openai', model: 'gpt-4o-mini', feature: 'support-bot', cost: '337' })]);
      t.is(ran.stdout.trim(), 'Hello there.');
    },
  },
  {
    snippet: 'INSERT INTO ai_cost.prices',
    check: async (t) => {
      const prices = await db.query<{ input: string; valid_from: Date; valid_to: Date | null }>(`
        SELECT input_per_mtok::text AS input, valid_from, valid_to FROM ai_cost.prices
         WHERE provider = 'openai' AND model = 'gpt-4o-mini' AND service_tier = 'standard' AND tenant_id IS NULL
         ORDER BY valid_from`);
      const [previous, inserted] = prices.slice(-2);
      t.like(inserted, { input: '0.12', valid_to: null }, 'the inserted price is in force from its valid_from on');
      t.deepEqual(previous?.valid_to, inserted?.valid_from, 'the previous price ends at that instant');
    },
  },
  {
    snippet: 'npx ai-cost prices list --provider anthropic',
    check: (t, ran) => {
      t.regex(ran.stdout, /│ anthropic +│ claude-haiku-4-5 /);
      t.notRegex(ran.stdout, /│ (?!anthropic )[a-z]+ +│ claude/, 'only anthropic rows');
    },
  },
  {
    snippet: 'npx ai-cost prices import model_prices_and_context_window.json',
    check: async (t, ran) => {
      t.regex(ran.stdout, /model_prices_and_context_window\.json: \d+ added/);
      const [row] = await db.query<{ input: string }>("SELECT input_per_mtok::text AS input FROM ai_cost.prices WHERE provider = 'openai' AND model = 'fixture-gpt' AND service_tier = 'standard'");
      t.is(row?.input, '2.5', "the list's price per token became a price per 1M tokens");
    },
  },
  {
    snippet: 'npx ai-cost reprice --from 2026-11-01 --model gpt-4o --dry-run',
    check: async (t, ran) => {
      t.regex(ran.stdout, /^dry run: 0 calls would change\b.*nothing was written$/m, 'no gpt-4o call was recorded');
      const [row] = await db.query<{ runs: number }>('SELECT count(*)::int AS runs FROM ai_cost.reprice_runs');
      t.is(row?.runs, 0);
    },
  },
  {
    snippet: 'npx ai-cost report --since 7d',
    check: async (t, ran) => {
      for (const model of await modelsRecorded()) t.regex(ran.stdout, new RegExp(`│ ${escape(model)} `), model);
      t.regex(ran.stdout, new RegExp(`│ total .*│ +${escape(formatMicros(await totalCost()))} │`));
    },
  },
  {
    snippet: 'npx ai-cost report --by tenant --feature support-bot',
    check: async (t, ran) => {
      const tenants = await db.query<{ tenant_id: string }>("SELECT DISTINCT tenant_id FROM ai_cost.calls WHERE feature = 'support-bot' AND tenant_id IS NOT NULL");
      for (const { tenant_id } of tenants) t.regex(ran.stdout, new RegExp(`│ ${tenant_id} `), tenant_id);
      t.regex(ran.stdout, new RegExp(`│ total .*│ +${escape(formatMicros(await totalCost("feature = 'support-bot'")))} │`));
    },
  },
  {
    snippet: 'npx ai-cost report --since 2026-11-01 --format csv',
    check: async (t, ran) => {
      const [header, ...lines] = ran.stdout.trim().split('\n');
      const columns = header!.split(',');
      const rows = lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
      const expected = await db.query<Record<string, string>>(`
        SELECT provider, model, count(*)::text AS calls, sum(cost_micros)::text AS cost_micros
          FROM ai_cost.calls WHERE created_at >= '2026-11-01' GROUP BY provider, model ORDER BY provider, model`);
      t.true(expected.length > 1);
      const sorted = rows.map(({ provider, model, calls, cost_micros }) => ({ provider, model, calls, cost_micros }))
        .sort((a, b) => `${a.provider} ${a.model}`.localeCompare(`${b.provider} ${b.model}`));
      t.deepEqual(sorted, expected, 'exact micro-dollars per model');
    },
  },
  {
    snippet: 'npx ai-cost report --html report.html',
    check: async (t) => {
      const html = await readFile(join(project.dir, 'report.html'), 'utf8');
      t.regex(html, /^<!doctype html>/i);
      for (const model of await modelsRecorded()) t.true(html.includes(model), model);
    },
  },
];

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** How a language's snippets run: the file they are written to, the program and its arguments. */
interface Runner {
  extension: string;
  tool?: Tool;
  command(file: string, toolCommand: string | undefined): [string, string[]];
}

const node = process.execPath; // the Node running the tests: 22 or later, as the package needs
const RUNNERS: Record<string, Runner> = {
  sql: { extension: 'sql', tool: psql, command: (file, command) => [command!, [db.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file]] },
  python: { extension: 'py', tool: pythonWithPsycopg, command: (file, command) => [command!, [file]] },
  js: { extension: 'mjs', command: (file) => [node, [file]] },
  ts: { extension: 'ts', command: (file) => [node, [file]] },
  sh: { extension: 'sh', command: (file) => ['sh', [file]] },
};
RUNNERS.psql = RUNNERS.sql!;
RUNNERS.javascript = RUNNERS.js!;
RUNNERS.typescript = RUNNERS.ts!;

/** What a snippet gets from its environment: DATABASE_URL, and what `new OpenAI()` reads. */
function snippetEnv(): NodeJS.ProcessEnv {
  return {
    PATH: `${dirname(node)}:${process.env.PATH}`,
    HOME: process.env.HOME,
    DATABASE_URL: db.url,
    OPENAI_API_KEY: 'sk-readme-test',
    OPENAI_BASE_URL: `${provider.baseURL}/v1`,
    // npx finds ai-cost in node_modules/.bin; were it missing, fail rather than fetch a package of that name.
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
  };
}

function execute(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { cwd: project.dir, env: snippetEnv(), timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${[program, ...args].join(' ')} failed (${error.code ?? error.signal}):\n${stderr || stdout}`));
      else resolve(stdout);
    });
  });
}

/** The TypeScript snippets type-check against the package's declarations, as in a user's strict project. */
async function typecheck(file: string): Promise<void> {
  await execute(join(root, 'node_modules/.bin/tsc'), [
    '--noEmit', '--strict', '--target', 'es2023', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--types', 'node', file,
  ]);
}

/** The last call's id; 0 before the install. */
async function lastCallId(): Promise<string> {
  const [installed] = await db.query<{ calls: string | null }>("SELECT to_regclass('ai_cost.calls')::text AS calls");
  if (!installed?.calls) return '0';
  const [row] = await db.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM ai_cost.calls');
  return row!.id;
}

async function callsAfter(id: string): Promise<CallRow[]> {
  return db.query<CallRow>(`
    SELECT request_id, provider, model, feature, tenant_id, cost_micros::text AS cost
      FROM ai_cost.calls WHERE id > $1 ORDER BY id`, [id]);
}

const checkFor = (snippet: Snippet) => CHECKS.filter((check) => snippet.code.includes(check.snippet));
const title = (snippet: Snippet) => {
  // A shell command without its comment; of a program, its first line that is not an import.
  const first = snippet.language === 'sh' ? commandOf(snippet)
    : snippet.code.split('\n').find((line) => line.trim() !== '' && !/^(import|from) /.test(line))!.trim();
  return `README line ${snippet.line} (${snippet.language}) runs as written: ${first.length > 70 ? `${first.slice(0, 67)}...` : first}`;
};

async function runSnippet(t: ExecutionContext, snippet: Snippet, runner: Runner, toolCommand: string | undefined): Promise<void> {
  const [check, ...more] = checkFor(snippet);
  if (!check || more.length > 0) {
    t.fail(`this snippet needs exactly one check in CHECKS of test/readme-snippets.test.ts, it has ${more.length + (check ? 1 : 0)}`);
    return;
  }
  const file = join(project.dir, `readme-line-${snippet.line}.${runner.extension}`);
  await writeFile(file, snippet.code);
  if (runner.extension === 'ts') await typecheck(file);
  const before = await lastCallId();
  const [program, args] = runner.command(file, toolCommand);
  const stdout = await execute(program, args);
  await check.check(t, { stdout, added: await callsAfter(before) });
}

test.serial('every code block of the README runs here or says why not, and every check names one snippet', (t) => {
  const unrunnable = snippets.filter((snippet) => !RUNNERS[snippet.language] && !notRunReason(snippet));
  t.deepEqual(unrunnable.map(({ language, line }) => `line ${line}: ${language}`), [], 'label each block sql, python, js, ts or sh; or add the reason it cannot run to NOT_RUN');
  for (const command of NOT_RUN.keys()) {
    t.true(snippets.some((snippet) => commandOf(snippet) === command), `NOT_RUN names what the README has: ${command}`);
  }
  for (const check of CHECKS) {
    t.is(snippets.filter((snippet) => snippet.code.includes(check.snippet)).length, 1, `one snippet contains ${check.snippet}`);
  }
  for (const snippet of snippets.filter(notRunReason)) t.log(`not run: README line ${snippet.line}: ${commandOf(snippet)}: ${notRunReason(snippet)}`);
});

for (const snippet of snippets) {
  const runner = RUNNERS[snippet.language];
  if (!runner || notRunReason(snippet)) continue;
  if (runner.tool) {
    testWithTool(test.serial, runner.tool, title(snippet), (t, command) => runSnippet(t, snippet, runner, command));
  } else {
    test.serial(title(snippet), (t) => runSnippet(t, snippet, runner, undefined));
  }
}
