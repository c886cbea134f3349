import test from 'ava';
import { fileURLToPath } from 'node:url';
import { runCli } from './support/cli.js';
import { serverUrl, useTestDatabase } from './support/database.js';
import { startTlsProxy, TLS_FIXTURES, type TlsProxy } from './support/tls-proxy.js';

// The SSL parameters of a database URL mean what they mean in psql: every
// sslmode against a server whose certificate comes from an authority of its
// own (as on RDS, Heroku or Azure), through a TLS proxy in front of the test
// server, for a command that connects with pg (migrate status) and one that
// connects with slonik as well (report). Serial: the proxy counts the TLS
// sessions of every test.
const db = useTestDatabase(test);
let proxy: TlsProxy;
test.before(async () => {
  proxy = await startTlsProxy(serverUrl('postgres'));
});
test.after.always(() => proxy?.close());

const AUTHORITY = fileURLToPath(new URL('ca.pem', TLS_FIXTURES));
const NOT_AN_AUTHORITY = fileURLToPath(new URL('server.pem', TLS_FIXTURES));
const COMMANDS = [['migrate', 'status'], ['report', '--format', 'json']];

/** The test database's URL through the proxy, by `host`, with these query parameters. */
function throughProxy(host: 'localhost' | '127.0.0.1', parameters: Record<string, string>): string {
  const url = new URL(db.url);
  url.hostname = host;
  url.port = String(proxy.port);
  for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
  return url.toString();
}

const connects = test.macro(async (t, host: 'localhost' | '127.0.0.1', parameters: Record<string, string>, encrypted: boolean) => {
  for (const command of COMMANDS) {
    const before = proxy.sessions();
    const result = await runCli([...command, '--database-url', throughProxy(host, parameters)]);
    t.is(result.code, 0, `${command.join(' ')}: ${result.stderr}`);
    t.is(result.stderr, '', 'no warning either');
    t.is(proxy.sessions() > before, encrypted, encrypted ? 'over TLS' : 'in plain');
  }
});

test.serial('PGSSLMODE and PGSSLROOTCERT stand for what the URL leaves out, as in libpq', async (t) => {
  for (const command of COMMANDS) {
    const before = proxy.sessions();
    const result = await runCli([...command, '--database-url', throughProxy('localhost', {})], { PGSSLMODE: 'verify-full', PGSSLROOTCERT: AUTHORITY });
    t.is(result.code, 0, `${command.join(' ')}: ${result.stderr}`);
    t.true(proxy.sessions() > before, 'over TLS');
    const plain = proxy.sessions();
    const disabled = await runCli([...command, '--database-url', throughProxy('localhost', { sslmode: 'disable' })], { PGSSLMODE: 'verify-full' });
    t.is(disabled.code, 0, disabled.stderr);
    t.is(proxy.sessions(), plain, 'the URL wins');
  }
  const untrusted = await runCli(['report', '--database-url', throughProxy('localhost', {})], { PGSSLMODE: 'verify-full' });
  t.regex(untrusted.stderr, /^ai-cost: cannot connect to PostgreSQL: the server's certificate is not trusted/);
});

const refused = test.macro(async (t, host: 'localhost' | '127.0.0.1', parameters: Record<string, string>, message: RegExp) => {
  for (const command of COMMANDS) {
    const result = await runCli([...command, '--database-url', throughProxy(host, parameters)]);
    t.is(result.code, 1, command.join(' '));
    t.regex(result.stderr, message, command.join(' '));
    t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  }
});

test.serial('sslmode=require encrypts without checking the certificate, as in psql', connects, '127.0.0.1', { sslmode: 'require' }, true);
test.serial('sslmode=prefer encrypts too', connects, '127.0.0.1', { sslmode: 'prefer' }, true);
test.serial('sslmode=no-verify, pg\'s own name, is require', connects, '127.0.0.1', { sslmode: 'no-verify' }, true);
test.serial('sslmode=disable and allow connect in plain', async (t) => {
  for (const sslmode of ['disable', 'allow']) {
    for (const command of COMMANDS) {
      const before = proxy.sessions();
      const result = await runCli([...command, '--database-url', throughProxy('127.0.0.1', { sslmode })]);
      t.is(result.code, 0, `${sslmode} ${command.join(' ')}: ${result.stderr}`);
      t.is(proxy.sessions(), before, sslmode);
    }
  }
});
test.serial('sslmode=verify-full with the authority, by the name on the certificate', connects, 'localhost', { sslmode: 'verify-full', sslrootcert: AUTHORITY }, true);
test.serial('sslmode=verify-ca with the authority, by another name', connects, '127.0.0.1', { sslmode: 'verify-ca', sslrootcert: AUTHORITY }, true);
test.serial('sslmode=require with sslrootcert checks the authority, as verify-ca', connects, '127.0.0.1', { sslmode: 'require', sslrootcert: AUTHORITY }, true);

test.serial('sslmode=verify-full by a name the certificate does not hold: one line', refused, '127.0.0.1',
  { sslmode: 'verify-full', sslrootcert: AUTHORITY }, /^ai-cost: cannot connect to PostgreSQL: the server's certificate is for another name \(.*127\.0\.0\.1.*\): connect by a name the certificate holds, or use sslmode=verify-ca/);
test.serial('sslmode=verify-full without its authority: one line', refused, 'localhost',
  { sslmode: 'verify-full' }, /^ai-cost: cannot connect to PostgreSQL: the server's certificate is not trusted \(.+\): name the authority that signed it with sslrootcert=<file> in the URL, or use sslmode=require/);
test.serial('sslrootcert naming another authority: one line', refused, '127.0.0.1',
  { sslmode: 'require', sslrootcert: NOT_AN_AUTHORITY }, /^ai-cost: cannot connect to PostgreSQL: the server's certificate is not trusted/);
test.serial('sslmode=verify-ca without sslrootcert: one line, before connecting', refused, '127.0.0.1',
  { sslmode: 'verify-ca' }, /^ai-cost: invalid database URL: sslmode=verify-ca checks the server against sslrootcert=<file of its authority's certificate>, and the URL names none/);
test.serial('an sslrootcert that is not there: one line naming it', refused, '127.0.0.1',
  { sslmode: 'verify-full', sslrootcert: '/no/such/ca.pem' }, /^ai-cost: invalid database URL: cannot read sslrootcert \/no\/such\/ca\.pem: no such file\n$/);
test.serial('an sslmode that is none: one line naming the modes', refused, '127.0.0.1',
  { sslmode: 'required' }, /^ai-cost: invalid database URL: sslmode 'required' is not one of disable, allow, prefer, require, verify-ca, verify-full\n$/);
