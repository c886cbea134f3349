import pg from 'pg';
import { serverUrl } from './database.js';

/** The URL of a database as another login. */
export function loginUrl(databaseUrl: string, login: string, password: string): string {
  const url = new URL(databaseUrl);
  url.username = login;
  url.password = password;
  return url.toString();
}

/** Runs statements as a login; returns the rows of the last one, or the error's message. */
export async function runAs(url: string, ...statements: string[]): Promise<unknown[] | string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let rows: unknown[] = [];
    for (const statement of statements) rows = (await client.query(statement)).rows;
    return rows;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end();
  }
}

/** Drops logins a test file created on the shared test server (they outlive its databases). */
export async function dropLogins(...logins: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    for (const login of logins) await admin.query(`DROP ROLE IF EXISTS ${login}`);
  } finally {
    await admin.end();
  }
}
