import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));

/** An application's folder with pg-ai-cost installed in node_modules. */
export interface UserProject {
  dir: string;
  remove(): Promise<void>;
}

/**
 * An empty ESM project in a temporary folder with pg-ai-cost installed the
 * way `npm install <folder>` installs a package from a folder: a link
 * node_modules/pg-ai-cost to this checkout (whose package.json exports the
 * built dist/), and its `ai-cost` command in node_modules/.bin. So code there
 * imports 'pg-ai-cost' and runs `npx ai-cost` as a user's code does. The
 * packages a user installs beside it (`alongside`, e.g. pg, openai,
 * @types/node) are linked from this checkout's node_modules.
 */
export async function createUserProject(alongside: string[]): Promise<UserProject> {
  if (!existsSync(join(CHECKOUT, 'dist/index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does) before this test');
  }
  const dir = await mkdtemp(join(tmpdir(), 'ai-cost-user-project-'));
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'user-project', private: true, type: 'module' }, null, 2)}\n`);
  await mkdir(join(dir, 'node_modules/.bin'), { recursive: true });
  await symlink(CHECKOUT, join(dir, 'node_modules/pg-ai-cost'), 'dir');
  await symlink('../pg-ai-cost/bin/ai-cost.js', join(dir, 'node_modules/.bin/ai-cost'));
  for (const name of alongside) {
    const target = join(dir, 'node_modules', name);
    await mkdir(join(target, '..'), { recursive: true });
    await symlink(join(CHECKOUT, 'node_modules', name), target, 'dir');
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
