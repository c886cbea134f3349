import { readdir, readFile } from 'node:fs/promises';
import { inTransaction, withClient } from './db.js';

/** The package's sql/ folder: the current definition of the schema, one concept per file. */
const SCHEMA_DIR = new URL('../sql/', import.meta.url);

/**
 * The whole current schema as one script: the files of sql/ in the order of
 * their number prefixes, which is the order their objects depend on.
 */
export async function schemaScript(): Promise<string> {
  const files = (await readdir(SCHEMA_DIR)).filter((file) => /^\d+_.*\.sql$/.test(file)).sort();
  const parts = await Promise.all(files.map((file) => readFile(new URL(file, SCHEMA_DIR), 'utf8')));
  return parts.map((text, index) => `-- sql/${files[index]}\n${text}`).join('\n');
}

/** Runs a SQL script shipped in the package (several statements, no parameters) in one transaction. */
export async function runPackageSqlFile(databaseUrl: string, path: string): Promise<void> {
  const text = await readFile(new URL(`../${path}`, import.meta.url), 'utf8');
  await withClient(databaseUrl, (client) => inTransaction(client, () => client.query(text)));
}
