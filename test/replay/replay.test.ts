/**
 * Replays every recorded reference history (test/replay/histories/<set>/, made by
 * `npm run record:histories`) against the current workflow code: a non-deterministic change
 * to the lead workflow fails here before it can break a running conversation.
 *
 * Sets: `baseline/` is the workflow as it is released; every `patched('name')` in workflows/
 * has a set `name/` recorded with that patch, and every set other than the baseline names a
 * patch that is still in the code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { createSecretBox } from '../../lib/crypto';
import { createLogger } from '../../lib/logger';
import { createPayloadKeyService } from '../../services/payload-keys';
import { createPayloadCodec } from '../../temporal/payload-codec';
import { parleyDataConverter } from '../../temporal/data-converter';
import { installTemporalRuntime } from '../../temporal/runtime';
import { workflowBundle } from '../support/stack';
import { workflowSpanSinks } from '../../workers/tracing';

jest.setTimeout(120_000);

const dir = path.join(__dirname, 'histories');
const sets = readdirSync(dir).filter((f) => statSync(path.join(dir, f)).isDirectory()).sort();
const files = sets.flatMap((set) => readdirSync(path.join(dir, set)).filter((f) => f.endsWith('.json')).sort().map((f) => `${set}/${f}`));

/** Every patch name used in workflow code. */
function patchNames(): string[] {
  const names = new Set<string>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/\b(?:patched|deprecatePatch)\(\s*['"`]([^'"`]+)['"`]/g)) names.add(m[1]!);
    }
  };
  walk(path.join(__dirname, '..', '..', 'workflows'));
  return [...names].sort();
}

// the replayer runs with Parley's payload codec, as the worker does: the recorded histories are in
// clear (recorded with PARLEY_PAYLOAD_CODEC=false) and pass through it unchanged
let database: Database | undefined;
let payloadCodec: PayloadCodec;
beforeAll(async () => {
  installTemporalRuntime({ log: createLogger({ level: 'silent' }) });
  database = await openDatabase({ pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
  payloadCodec = createPayloadCodec(createPayloadKeyService(database.db, createSecretBox(randomBytes(32))));
});
afterAll(async () => {
  await database?.close();
});

test('the baseline set has the reference scenarios', () => {
  const baseline = files.filter((f) => f.startsWith('baseline/'));
  expect(baseline.length).toBeGreaterThanOrEqual(15);
  for (const scenario of ['reply-once', 'continue-as-new', 'circuit-wait-and-resume', 'dead-letter-replay', 'sequence-steps-and-reset']) {
    expect(baseline).toContain(`baseline/${scenario}.json`);
  }
});

test('every patch in the workflow code has histories under its name, and every other set names a patch', () => {
  const patches = patchNames();
  for (const name of patches) expect(sets).toContain(name);
  for (const set of sets.filter((s) => s !== 'baseline')) expect(patches).toContain(set);
});

test.each(files)('history %s replays deterministically', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle(), sinks: workflowSpanSinks(undefined), dataConverter: parleyDataConverter(payloadCodec) }, history, file)).resolves.toBeUndefined();
});
