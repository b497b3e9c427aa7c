import { randomBytes, randomUUID } from 'node:crypto';
import { createLeadIds } from '../../lib/lead-ids';
import { leadChannelOf } from '../../services/payload-keys';
import { traceableWorkflowId } from '../../lib/tracing';

const channel = '6f1c2d4e-8a9b-4c3d-9e2f-0a1b2c3d4e5f';
const phone = '919876543210';

test('a lead workflow id is stable, keyed and holds no contact id', () => {
  const key = randomBytes(32);
  const ids = createLeadIds(key);
  const id = ids.workflowId(channel, phone);
  expect(id).toMatch(new RegExp(`^lead:${channel}:[A-Za-z0-9_-]{22}$`));
  expect(id).not.toContain(phone);
  expect(id).not.toContain(phone.slice(-6));
  // stable: the same key (another process, a restart) gives the same id
  expect(createLeadIds(Buffer.from(key)).workflowId(channel, phone)).toBe(id);
  // keyed: another key, another id
  expect(createLeadIds(randomBytes(32)).workflowId(channel, phone)).not.toBe(id);
  // per contact and per channel account
  expect(ids.workflowId(channel, '919876543211')).not.toBe(id);
  expect(ids.workflowId(randomUUID(), phone).endsWith(id.slice(-22))).toBe(false);
  // the separator: (channel, contact) pairs never collide by concatenation
  expect(ids.workflowId('ab', 'c')).not.toBe(ids.workflowId('a', 'bc'));
  // the payload codec still finds the tenant's channel in it
  expect(leadChannelOf(id)).toBe(channel);
  // tracing still recognises it as a lead's id
  expect(traceableWorkflowId(id)).toMatch(/^lead:[^:]+:sha256:[0-9a-f]{16}$/);
});

test('any contact id gives an id of fixed length, far under Temporal limit', () => {
  const ids = createLeadIds(randomBytes(32));
  for (const contact of ['1', 'US.13491208655302741918', 'x'.repeat(5000), '\u0000\uFFFF\ud800x', '😀 visitor']) {
    const id = ids.workflowId(channel, contact);
    expect(id.length).toBe('lead:'.length + 36 + 1 + 22);
    expect(id.length).toBeLessThan(1000);
  }
});

test('a key of the wrong size is refused', () => {
  expect(() => createLeadIds(randomBytes(16))).toThrow(/32 bytes/);
});
