import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/ai-cost.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `ai-cost` CLI as a user would, with DATABASE_URL only when given. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...inherited, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs psql with a script on stdin; `-v ON_ERROR_STOP=1` so a failing statement fails the run. */
export function runPsql(url: string, script: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At'], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    child.stdin!.end(script);
  });
}
