import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { createTestDatabase, useTestDatabase } from './support/database.js';

// The mistakes a new user makes, each answered in one line on stderr (plus
// the command's usage line for a mistake in the arguments), exit 1, no stack
// trace, and nothing written.

const db = useTestDatabase(test);
let folder = '';
test.before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ai-cost-mistakes-'));
});
test.after.always(async () => {
  await rm(folder, { recursive: true, force: true });
});

interface Mistake {
  args: () => string[];
  says: RegExp;
  /** The usage line follows an argument error. */
  usage?: string;
  /** Checks that nothing was written. */
  unchanged?: () => Promise<boolean>;
}

const priceCount = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ai_cost.prices WHERE model = 'gpt-x'`))[0]!.n);

const MISTAKES: Record<string, Mistake> = {
  'a window that ends before it starts': {
    args: () => ['report', '--since', '2d', '--until', '5d'], says: /^ai-cost: since: must be before until$/,
  },
  'an HTML report into a folder that does not exist': {
    args: () => ['report', '--html', join(folder, 'missing', 'report.html')], says: /cannot open .*missing\/report\.html: no such file or folder/,
    unchanged: async () => !existsSync(join(folder, 'missing')),
  },
  'an HTML report of a window in the future': {
    args: () => ['report', '--since', '2099-01-01', '--html', join(folder, 'future.html')], says: /since: must be before until$/,
    unchanged: async () => !existsSync(join(folder, 'future.html')),
  },
  'a price without any rate': {
    args: () => ['prices', 'set', 'openai', 'gpt-x'], says: /^ai-cost: invalid price: give at least one of an input, output or unit price$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a rate that is not a number': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', 'abc'], says: /^ai-cost: invalid price: --input must be a non-negative decimal number$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a unit without its price': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--unit', 'image'], says: /--unit and the unit price go together/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'an unknown dimension': {
    args: () => ['report', '--by', 'colour'], says: /'colour' is not one of provider, model/, usage: 'Usage: ai-cost report [options] (--help for more)',
  },
  'an HTML report with a text format': {
    args: () => ['report', '--html', join(folder, 'both.html'), '--format', 'csv'], says: /'--html <file>' cannot be used with option '--format <format>'/,
    usage: 'Usage: ai-cost report [options] (--help for more)',
    unchanged: async () => !existsSync(join(folder, 'both.html')),
  },
  'a window from now to now': {
    args: () => ['report', '--since', '0d'], says: /^ai-cost: option '--since <when>' argument '0d' is invalid\. '0d' is now, and the window ends now: give a time before, e\.g\. 30m, 12h, 7d, 2w or a date$/,
    usage: 'Usage: ai-cost report [options] (--help for more)',
  },
  'a duration in an unknown unit': {
    args: () => ['report', '--since', '3y'], says: /'3y' is not a date, a time, now or e\.g\. 30m, 12h, 7d, 2w/, usage: 'Usage: ai-cost report [options] (--help for more)',
  },
  'hours of the day in a time zone that does not exist': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--hours', '16:30-00:30', '--time-zone', 'Mars/Olympus'],
    says: /^ai-cost: unknown time zone Mars\/Olympus for a daily price window: give an IANA name such as UTC or Asia\/Shanghai$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'hours of the day without their time zone': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--hours', '16:30-00:30'],
    says: /^ai-cost: --hours needs --time-zone: the IANA zone the hours are given in, e\.g\. UTC or Asia\/Shanghai$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a time zone without hours of the day': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--time-zone', 'UTC'],
    says: /^ai-cost: --time-zone goes with --hours: the hours of the day the price is for$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'hours that are not times of day': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--hours', '25:00-26:00', '--time-zone', 'UTC'],
    says: /^ai-cost: option '--hours <from-to>' argument '25:00-26:00' is invalid\. '25:00-26:00' is not two times of day such as 16:30-00:30$/,
    usage: 'Usage: ai-cost prices set [options] <provider> <model> (--help for more)',
    unchanged: async () => (await priceCount()) === 0,
  },
  'a long-context tier below zero tokens': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--above', '-5'],
    says: /^ai-cost: option '--above <tokens>' argument '-5' is invalid\. '-5' is not a whole number of input tokens, 0 or more$/,
    usage: 'Usage: ai-cost prices set [options] <provider> <model> (--help for more)',
    unchanged: async () => (await priceCount()) === 0,
  },
  'a tenant price without a tenant': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--tenant', ''],
    says: /^ai-cost: invalid price: --tenant must name a tenant \(leave it out for a price of every tenant\)$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a further unit without a number': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--unit-prices', 'web_search=ten cents'],
    says: /^ai-cost: invalid price: --unit-prices web_search must map each unit to a non-negative decimal number$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a price for a service tier nobody named': {
    args: () => ['prices', 'set', 'openai', 'gpt-x', '--input', '1', '--tier', 'nonesuch'],
    says: /^ai-cost: unknown service tier nonesuch for provider openai: Add the tier to ai_cost\.service_tiers first, saying how it is priced\.$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'a day that is not in the calendar': {
    args: () => ['prices', 'at', '2026-02-30'], says: /'2026-02-30' is not a day of the calendar/, usage: 'Usage: ai-cost prices at [options] <when> (--help for more)',
  },
  'a price list file that is not there': {
    args: () => ['prices', 'import', join(folder, 'no-such-list.json')], says: /^ai-cost: cannot open \S+no-such-list\.json: no such file or folder$/,
    unchanged: async () => (await priceCount()) === 0,
  },
  'distributing on a server without Citus': {
    args: () => ['distribute'], says: /ai_cost\.distribute\(\) needs Citus, and this database has no citus extension: on a Citus coordinator, CREATE EXTENSION citus/,
    unchanged: async () => (await db.query(`SELECT pg_get_constraintdef(oid) AS key FROM pg_constraint WHERE conname = 'calls_pkey'`))[0]!.key === 'PRIMARY KEY (id)',
  },
  'a flag of migrate down given to up': {
    args: () => ['migrate', 'up', '--all'], says: /^ai-cost: migrate up takes no --all: --all and --yes go with down, --count with up or down, --no-backfill with up$/,
  },
  'a count given to migrate status': {
    args: () => ['migrate', 'status', '--count', '2'], says: /^ai-cost: migrate status takes no --count: /,
  },
  'both --all and --count to migrate down': {
    args: () => ['migrate', 'down', '--all', '--yes', '--count', '2'], says: /^ai-cost: migrate down takes --all or --count, not both$/,
    unchanged: async () => (await db.query(`SELECT to_regclass('ai_cost.calls') IS NOT NULL AS present`))[0]!.present === true,
  },
  'uninstalling without saying yes': {
    args: () => ['migrate', 'down', '--all'], says: /drops the whole ledger.*add --yes/,
    unchanged: async () => (await db.query(`SELECT to_regclass('ai_cost.calls') IS NOT NULL AS present`))[0]!.present === true,
  },
};

// A Unix socket URL in the libpq form (host and port as query parameters,
// with or without a user and a host in the authority, which the query
// overrides), for a socket folder where no server listens: the socket the
// URL names is the one tried, by every command, and the answer is one line.
const socketUrls = {
  'a socket URL': (database: string, socket: string) => `postgresql:///${database}?host=${socket}&port=6543`,
  'a socket URL with a user and host before it': (database: string, socket: string) =>
    `postgresql://someone:secret@localhost/${database}?host=${socket}&port=6543`,
};
for (const [form, socketUrl] of Object.entries(socketUrls)) for (const command of [['doctor'], ['refresh'], ['migrate', 'up'], ['report']]) {
  test(`${form} where no server listens: ${command.join(' ')}`, async (t) => {
    const url = socketUrl(new URL(db.url).pathname.slice(1), encodeURIComponent(join(folder, 'no-server')));
    const result = await runCli([...command, '--database-url', url]);
    t.is(result.code, 1, result.stderr);
    t.deepEqual(result.stderr.trim().split('\n'), [
      `ai-cost: cannot connect to PostgreSQL at ${join(folder, 'no-server')}/.s.PGSQL.6543: no server socket there (is the server running, and are the socket folder and port right?)`,
    ]);
  });
}

for (const [title, mistake] of Object.entries(MISTAKES)) {
  test(title, async (t) => {
    const result = await runCli([...mistake.args(), '--database-url', db.url]);
    t.is(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    t.regex(lines[0]!, /^ai-cost: /);
    t.regex(lines[0]!, mistake.says);
    t.deepEqual(lines.slice(1), mistake.usage ? [mistake.usage] : [], 'one line, and only a usage line after it');
    if (mistake.unchanged) t.true(await mistake.unchanged(), 'nothing was written');
  });
}

test('an upgrade the database refuses (a schema changed by hand) is one line, and writes nothing', async (t) => {
  const handled = await createTestDatabase();
  try {
    // The records of the steps from one that creates a function on are lost while their changes
    // stay: running that step again must fail (a released step never changes, so it always will).
    const first = '0019_truncate_on_a_cluster';
    const lost = await handled.query<{ name: string }>(
      'DELETE FROM ai_cost_internal.schema_migrations WHERE name >= $1 RETURNING name', [first]);
    t.true(lost.length > 0);
    const result = await runCli(['migrate', 'up', '--database-url', handled.url]);
    t.is(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0]!, new RegExp(`^ai-cost: migrate up failed and changed nothing \\(applying ${lost.map((step) => step.name).sort().join(', ')}\\): .+ \\[SQLSTATE \\w{5}\\]; has the pg-ai-cost schema been changed by hand\\?`));
    t.deepEqual(await handled.query('SELECT name FROM ai_cost_internal.schema_migrations WHERE name >= $1', [first]), []);
  } finally {
    await handled.drop();
  }
});

test('an install by a login that does not own the database says to run it as the owner, in one line, and writes nothing', async (t) => {
  const empty = await createTestDatabase({ migrated: false });
  const login = `notowner_${empty.name.slice(2)}`;
  try {
    await empty.query(`CREATE ROLE ${login} LOGIN PASSWORD 'pw'`);
    const url = new URL(empty.url);
    url.username = login;
    url.password = 'pw';
    const result = await runCli(['migrate', 'up', '--database-url', url.toString()]);
    t.is(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0]!, /^ai-cost: migrate up failed and changed nothing \(installing\): permission denied .+ \[SQLSTATE 42501\]; run it as the owner of the database/);
    t.deepEqual(await empty.query(`SELECT to_regnamespace('ai_cost')::text AS schema`), [{ schema: null }]);
  } finally {
    await empty.query(`DROP ROLE IF EXISTS ${login}`);
    await empty.drop();
  }
});

test('an upgrade by a reader or a login without any role says migrate is the owner\'s, and a refresh by the latter whose it is, in one line', async (t) => {
  const reader = `reader_${db.name.slice(2)}`;
  const stranger = `stranger_${db.name.slice(2)}`;
  await db.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'pw'; GRANT ai_cost_reader TO ${reader}; CREATE ROLE ${stranger} LOGIN PASSWORD 'pw'`);
  const urlOf = (login: string) => Object.assign(new URL(db.url), { username: login, password: 'pw' }).toString();
  try {
    for (const login of [reader, stranger]) {
      const result = await runCli(['migrate', 'up', '--database-url', urlOf(login)]);
      t.is(result.code, 1, result.stderr);
      t.regex(result.stderr, /^ai-cost: permission denied: permission denied for [a-z]+ [a-z_]+: migrate is run by the owner of the database that installed pg-ai-cost\n$/, login);
    }
    const refresh = await runCli(['refresh', '--database-url', urlOf(stranger)]);
    t.is(refresh.code, 1, refresh.stderr);
    t.regex(refresh.stderr, /^ai-cost: permission denied: permission denied for [a-z]+ [a-z_]+: the rollups are refreshed as the owner that installed pg-ai-cost \(pg_cron runs it so\); run this with that login\n$/);
  } finally {
    await db.query(`DROP ROLE ${reader}; DROP ROLE ${stranger}`);
  }
});

// Another session holds the fold state, so the refresh waits on it until the login's timeout ends it;
// serial, so that no other test of the file waits on that lock meanwhile.
const TIMEOUTS = {
  statement_timeout: 'canceling statement due to statement timeout: this login\'s statement_timeout ended the work before it finished, '
    + 'and nothing was written; give it longer (ALTER ROLE <login> SET statement_timeout = ..., or options=-c statement_timeout=0 in the database URL) '
    + 'and run it again',
  lock_timeout: 'canceling statement due to lock timeout: another session held what this needs longer than this login\'s lock_timeout allows, '
    + 'and nothing was written; run it again',
};
for (const [setting, says] of Object.entries(TIMEOUTS)) {
  test.serial(`a refresh a ${setting} cancels says so in one line, and writes nothing`, async (t) => {
    await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', 1000, 100)`);
    const [before] = await db.query<{ through: string }>('SELECT folded_through::text AS through FROM ai_cost_internal.fold_state');
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK ai_cost_internal.fold_state IN ACCESS EXCLUSIVE MODE');
      const url = new URL(db.url);
      url.searchParams.set('options', `-c ${setting}=300`);
      const result = await runCli(['refresh', '--no-views', '--database-url', url.toString()]);
      t.is(result.code, 1, result.stderr);
      t.deepEqual(result.stderr.trim().split('\n'), [`ai-cost: ${says}`]);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    t.deepEqual(await db.query('SELECT folded_through::text AS through FROM ai_cost_internal.fold_state'), [before]);
  });
}

test('durations in minutes and weeks are understood', async (t) => {
  for (const since of ['30m', '2w']) {
    const result = await runCli(['report', '--since', since, '--format', 'json', '--database-url', db.url]);
    t.is(result.code, 0, result.stderr);
  }
});

test('--version prints the package version', async (t) => {
  const result = await runCli(['--version']);
  t.is(result.code, 0);
  t.regex(result.stdout.trim(), /^\d+\.\d+\.\d+$/);
});
