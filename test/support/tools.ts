import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ExecutionContext, SerialFn, TestFn } from 'ava';

const run = promisify(execFile);

/** A program some tests drive as users do, found on this machine or not. */
export interface Tool {
  name: string;
  /** The command to run it with, when it was found. */
  command?: string;
  /** What to install when it was not. */
  install: string;
}

/** The first of `candidates` for which `probe` succeeds. */
async function firstWorking(candidates: string[], probe: (command: string) => Promise<unknown>): Promise<string | undefined> {
  for (const candidate of candidates) {
    try {
      await probe(candidate);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export const psql: Tool = {
  name: 'psql',
  command: await firstWorking(['psql'], (command) => run(command, ['--version'])),
  install: 'the PostgreSQL client (Debian: apt-get install postgresql-client)',
};

/** Python with psycopg2: the Debian package installs it for the system python3, which a pyenv or venv python3 may not see. */
export const pythonWithPsycopg: Tool = {
  name: 'Python with psycopg2',
  command: await firstWorking(['python3', '/usr/bin/python3'], (command) => run(command, ['-c', 'import psycopg2'])),
  install: 'psycopg2 for python3 (Debian: apt-get install python3-psycopg2)',
};

/** Go with pgx v4 from Debian's sources, so the Go example builds offline. */
export const goWithPgx: Tool = {
  name: 'Go with pgx',
  command: existsSync('/usr/share/gocode/src/github.com/jackc/pgx/v4')
    ? await firstWorking(['go'], (command) => run(command, ['version'])) : undefined,
  install: 'Go and pgx v4 (Debian: apt-get install golang-go golang-github-jackc-pgx-v4-dev)',
};

/**
 * Declares a test that needs `tool`. Without it the test is skipped with a
 * title that says what to install; under CI=true, where .ci/run installs
 * every tool, a missing one fails the test instead.
 */
export function testWithTool(test: TestFn | SerialFn, tool: Tool, title: string, implementation: (t: ExecutionContext, command: string) => Promise<void>): void {
  if (tool.command) {
    const command = tool.command;
    test(title, (t) => implementation(t, command));
  } else if (process.env.CI === 'true') {
    test(title, (t) => t.fail(`${tool.name} is missing: install ${tool.install}`));
  } else {
    test.skip(`${title} (skipped: ${tool.name} is missing; install ${tool.install})`, () => {});
  }
}
