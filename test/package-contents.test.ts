import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

// What a user gets from npm: the README's links must lead somewhere inside
// the tarball (the npm page and node_modules/pg-ai-cost have nothing else),
// and the package must say where its source lives and under which license.
const run = promisify(execFile);
const ROOT = new URL('../', import.meta.url);

/** The files `npm pack` would put in the tarball, relative to the package root. */
async function packedFiles(): Promise<Set<string>> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return new Set(pack!.files.map((file) => file.path));
}

test('every relative link in README.md leads to a file or folder in the npm tarball', async (t) => {
  const readme = await readFile(new URL('README.md', ROOT), 'utf8');
  const files = await packedFiles();
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!)
    .filter((target) => !/^[a-z]+:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.replace(/#.*$/, '').replace(/^\.\//, ''));
  t.true(links.length > 5, 'the README links to its docs');
  const missing = links.filter((target) => target.endsWith('/')
    ? ![...files].some((file) => file.startsWith(target))
    : !files.has(target));
  t.deepEqual([...new Set(missing)], []);
});

test('installing the package runs none of its scripts: it ships compiled', async (t) => {
  // npm warns about, and may refuse, a dependency with any of these; dist/ is built when packing.
  const { scripts } = JSON.parse(await readFile(new URL('package.json', ROOT), 'utf8')) as { scripts: Record<string, string> };
  t.deepEqual(Object.keys(scripts).filter((name) => /^(pre|post)?install$|^prepare$/.test(name)), []);
  t.is(scripts.prepack, 'npm run build', 'npm pack builds dist/');
});

test('the tarball holds the license and the docs, and no tests or benchmarks', async (t) => {
  const files = await packedFiles();
  for (const needed of ['LICENSE', 'README.md', 'package.json', 'bin/ai-cost.js', 'dist/index.js', 'docs/reporting.md']) {
    t.true(files.has(needed), needed);
  }
  t.deepEqual([...files].filter((file) => /^(test|bench|scripts|\.ci)\//.test(file)), []);
});
