import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * Where the Temporal binaries come from, in order:
 *  1. TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH,
 *  2. `temporal` / `temporal-test-server` in the project's venv (.tools/venv/bin, made by
 *     `npm run setup:temporal`) or on PATH,
 *  3. undefined: the caller lets @temporalio/testing download it (needs the internet).
 */
export type TemporalBinary = 'cli' | 'test-server';

const NAMES: Record<TemporalBinary, { env: string; exe: string }> = {
  cli: { env: 'TEMPORAL_CLI_PATH', exe: 'temporal' },
  'test-server': { env: 'TEMPORAL_TEST_SERVER_PATH', exe: 'temporal-test-server' },
};

export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const PROJECT_VENV_BIN = path.join(PROJECT_ROOT, '.tools', 'venv', 'bin');

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface FoundBinary {
  path: string;
  source: 'env' | 'project-venv' | 'PATH';
}

export function findTemporalBinary(
  which: TemporalBinary,
  env: Record<string, string | undefined> = process.env,
): FoundBinary | undefined {
  const { env: envName, exe } = NAMES[which];
  const fromEnv = env[envName]?.trim();
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${envName}=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: 'env' };
  }
  const inVenv = path.join(PROJECT_VENV_BIN, exe);
  if (isExecutable(inVenv)) return { path: inVenv, source: 'project-venv' };
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate)) return { path: candidate, source: 'PATH' };
  }
  return undefined;
}

/** The `server.executable` option of @temporalio/testing for a found binary (or download). */
export function testingExecutable(which: TemporalBinary): { type: 'existing-path'; path: string } | { type: 'cached-download' } {
  const found = findTemporalBinary(which);
  return found ? { type: 'existing-path', path: found.path } : { type: 'cached-download' };
}
