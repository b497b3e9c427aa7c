import { ApplicationFailure } from '@temporalio/common';
import { errorNamed } from '../../temporal/runtime';

test("an activity failure in the SDK's log metadata is written by name and type, not as {} and not with its message", () => {
  const failure = ApplicationFailure.create({ type: 'provider_transient', message: 'Graph said +33612345678 is busy', nonRetryable: false });
  const meta = errorNamed({ activityType: 'sendWhatsAppText', error: failure });
  expect(meta).toEqual({ activityType: 'sendWhatsAppText', error: { name: 'ApplicationFailure', type: 'provider_transient', nonRetryable: false } });
  expect(JSON.stringify(meta)).not.toContain('33612345678');
});

test('metadata without an Error is left as it is', () => {
  const meta = { activityType: 'x', error: 'text' };
  expect(errorNamed(meta)).toBe(meta);
});
