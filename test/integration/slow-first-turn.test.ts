/**
 * A lead's first turn whose setup (ensureLead, a local activity) is slower than the burst
 * debounce: the live run finds the debounce already over and answers without its timer. Its
 * history must replay to the same decisions (workflow time across a local activity), or a lead
 * would fail after a cache eviction. PostgreSQL only: the slowness is a row lock held by another
 * connection, which PGlite (one connection) cannot have.
 */
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import postgres from 'postgres';
import { parleyDataConverter } from '../../temporal/data-converter';
import { createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor, workflowBundle, type Stack } from '../support/stack';
import { workflowSpanSinks } from '../../workers/tracing';

jest.setTimeout(120_000);

const url = process.env.DATABASE_URL;
const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

// like the browser test: skipped with a warning without PostgreSQL, except in CI, where it must run
if (!url) {
  if (process.env.CI) throw new Error('slow-first-turn needs PostgreSQL (DATABASE_URL) in CI');
  console.warn('slow-first-turn: skipped (needs DATABASE_URL = PostgreSQL; PGlite has one connection, so no second one can hold a lock)');
}
const maybe = url ? test : test.skip;

maybe('a first turn whose lead row waits 1.5 s on a lock skips the debounce timer and replays deterministically', async () => {
  const t = await createTenant(stack, { credits: 5 });
  const from = randomWaId();
  const sql = postgres(url!, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const lockTaken = new Promise<void>((resolve) => (locked = resolve));
  // inserting the lead row takes a key-share lock on its tenant: it waits while this holds FOR UPDATE
  const locker = sql.begin(async (tx) => {
    await tx`select 1 from tenants where id = ${t.tenantId} for update`;
    locked();
    await held;
  });
  try {
    await lockTaken;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, is my order shipped?')).expect(200);
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    release();
    await locker;
    await sql.end();
  }
  const wf = stack.leadWorkflowId(t.channelId, from);
  await waitFor(async () => (await stack.temporal.leadState(wf))?.counters.replies === 1 || undefined, { timeoutMs: 60_000, what: 'the first reply' });
  const history = await stack.temporal.client.workflow.getHandle(wf).fetchHistory();
  const types = (history.events ?? []).map((e) => e.eventType);
  const { EventType } = temporal.api.enums.v1;
  const firstActivity = types.indexOf(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  expect(firstActivity).toBeGreaterThan(0);
  // the debounce was over when the setup finished: no timer before the reply turn
  expect(types.slice(0, firstActivity)).not.toContain(EventType.EVENT_TYPE_TIMER_STARTED);
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle(), sinks: workflowSpanSinks(undefined), dataConverter: parleyDataConverter(stack.core.payloadCodec) }, history, wf)).resolves.toBeUndefined();
});
