/**
 * `npm run release:freeze -- <version>`: keeps what a release installs, so
 * that the upgrade test can install that release long after sql/ has moved
 * on (CI clones may lack tags). Writes test/fixtures/releases/<version>/:
 * install.sql, the schema script of sql/ as it is now, and migrations.json,
 * the migrations this release ships (what its install records as applied).
 * See CONTRIBUTING.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { shippedMigrations } from '../src/migrate.js';
import { schemaScript } from '../src/sql-files.js';

const version = process.argv[2];
if (!version || !/^\d+\.\d+\.\d+$/.test(version)) {
  console.error('usage: npm run release:freeze -- <version>   (e.g. 0.2.0)');
  process.exit(2);
}
const dir = new URL(`../test/fixtures/releases/${version}/`, import.meta.url);
await mkdir(dir, { recursive: true });
await writeFile(new URL('install.sql', dir), await schemaScript());
await writeFile(new URL('migrations.json', dir), `${JSON.stringify(await shippedMigrations(), null, 2)}\n`);
console.log(`froze release ${version} in test/fixtures/releases/${version}/`);
