import type { DatabasePool } from 'slonik';
import { createPool, resolveDatabaseUrl } from '../../db.js';

/** Runs `work` on a one-connection pool to the database of --database-url (or $DATABASE_URL), closed afterwards. */
export async function withPool(url: string | undefined, work: (pool: DatabasePool) => Promise<void>): Promise<void> {
  const pool = await createPool(resolveDatabaseUrl(url), 1);
  try {
    await work(pool);
  } finally {
    await pool.end();
  }
}
