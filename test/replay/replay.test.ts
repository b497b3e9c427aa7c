/**
 * Replays every recorded reference history (test/replay/histories, made by
 * `npm run record:histories`) against the current workflow code: a non-deterministic change
 * to the lead workflow fails here before it can break a running conversation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { createLogger } from '../../lib/logger';
import { installTemporalRuntime } from '../../temporal/runtime';
import { workflowBundle } from '../support/stack';

jest.setTimeout(120_000);

const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

beforeAll(() => installTemporalRuntime({ log: createLogger({ level: 'silent' }) }));

test('there are recorded histories to replay', () => {
  expect(files.filter((f) => f.startsWith('v1-')).length).toBeGreaterThanOrEqual(7);
  expect(files.filter((f) => f.startsWith('v2-')).length).toBeGreaterThanOrEqual(11);
});

test.each(files)('history %s replays deterministically', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file)).resolves.toBeUndefined();
});
