import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ROOT } from './lib.ts';

/** The JSON results file, and the commit it measured. */

/** HEAD, plus `-dirty` when src/ has uncommitted changes (the relay measured is the working tree). */
export function gitCommit(): string | undefined {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src', 'generated') ? '-dirty' : '');
  } catch {
    return undefined;
  }
}

/** Writes `results` as indented JSON to `file`, creating its directory. */
export function writeResults(file: string, results: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}
