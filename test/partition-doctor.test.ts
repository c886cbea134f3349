import test from 'ava';
import { randomBytes } from 'node:crypto';
import { diagnose } from '../src/reporting/doctor.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl } from './support/logins.js';

// `ai-cost doctor` on a ledger partitioned by month: ok while next month has
// its partition, a warning when the maintenance that makes it (inside the
// refresh, once a day) has failed or has not run, and nothing to say on a
// ledger that is not partitioned.
const db = useTestDatabase(test);
const biLogin = `bi_partitions_${randomBytes(4).toString('hex')}`;
test.after.always(() => dropLogins(biLogin));

async function partitionsLine(): Promise<string | undefined> {
  const { checks } = await diagnose(db.url, db.pool);
  const line = checks.find((check) => check.name === 'partitions');
  return line && `${line.level} ${line.detail}`;
}

/** A UTC month as YYYY-MM, `offset` months from the current one. */
function month(offset: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 7);
}

test.serial('no partitions line on a ledger that is not partitioned', async (t) => {
  t.is(await partitionsLine(), undefined);
});

test.serial('ok while next month has its partition, with the last month ready and when maintenance last ran', async (t) => {
  await db.query('SELECT * FROM ai_cost.partition_calls()');
  await db.query('SELECT * FROM ai_cost.maintain_partitions()');
  t.regex((await partitionsLine())!, new RegExp(`^ok monthly partitions are ready up to ${month(3)}; maintenance last ran \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\dZ$`));
});

test.serial('a warning when no partition is ready for next month, naming it and what makes it', async (t) => {
  await db.query(`DROP TABLE ai_cost.calls_${month(1).replace('-', '_')}, ai_cost.calls_${month(2).replace('-', '_')}, ai_cost.calls_${month(3).replace('-', '_')}`);
  const line = (await partitionsLine())!;
  t.true(line.startsWith(`warn no partition is ready for ${month(1)}: its calls would land in ai_cost.calls_default.`), line);
  t.regex(line, /runs inside ai_cost\.refresh\(\) once a day, so schedule the refresh \(`ai-cost schedule`\), or run SELECT \* FROM ai_cost\.maintain_partitions\(\)$/);
  const cli = await runCli(['doctor', '--database-url', db.url]);
  t.regex(cli.stdout, new RegExp(`^warn +partitions: no partition is ready for ${month(1)}`, 'm'));
});

test.serial('a warning when maintenance failed, with its error, until a run succeeds', async (t) => {
  await db.query(`UPDATE ai_cost_internal.partition_state SET attempted_at = now(), last_error = 'canceling statement due to lock timeout'`);
  t.regex((await partitionsLine())!, /^warn partition maintenance failed at .+: canceling statement due to lock timeout\. The refresh tries it again every 10 minutes; SELECT \* FROM ai_cost\.maintain_partitions\(\) runs it now and shows the error$/);
  await db.query('SELECT * FROM ai_cost.maintain_partitions()');
  t.regex((await partitionsLine())!, new RegExp(`^ok monthly partitions are ready up to ${month(3)};`));
});

test.serial('a BI login is told it cannot see partition maintenance, and why', async (t) => {
  await db.query(`CREATE ROLE ${biLogin} LOGIN PASSWORD 'bi-pw'; GRANT ai_cost_reader TO ${biLogin}`);
  const doctor = await runCli(['doctor', '--database-url', loginUrl(db.url, biLogin, 'bi-pw')]);
  t.regex(doctor.stdout, new RegExp(`^skip +partitions: whether partition maintenance keeps up is not visible to ${biLogin}: ai_cost_internal\\.partition_state is readable by the installing owner only$`, 'm'));
});
