import { readFile } from 'node:fs/promises';
import pg from 'pg';

/** Reads one of the SQL scripts shipped in the package's sql/ folder. */
export function readSqlFile(name: string): Promise<string> {
  return readFile(new URL(`../sql/${name}`, import.meta.url), 'utf8');
}

/** Runs a shipped SQL script (several statements, no parameters) in one transaction. */
export async function runSqlFile(databaseUrl: string, name: string): Promise<void> {
  const text = await readSqlFile(name);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`BEGIN;\n${text}\nCOMMIT;`);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}
