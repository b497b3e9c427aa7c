import { onSendFailure, SPAM_LIMIT_WAIT_MS, type SendFailureInput } from '../../workflows/lead/policy/send-failure';

const NOW = '2026-03-06T12:00:00.000Z';
const TEMPLATE = { name: 'follow_up', language: 'en' };
const base: SendFailureInput = { type: undefined, now: NOW, attempts: 0, replaying: false, isTemplate: false };

describe('onSendFailure', () => {
  test.each(['provider_auth', 'channel_circuit_open'])('%s waits for the circuit breaker and sends the same message', (type) => {
    expect(onSendFailure({ ...base, type })).toEqual({ action: 'wait_for_circuit' });
  });

  test('131047 (window closed by the provider) switches to the template path when there is one', () => {
    expect(onSendFailure({ ...base, type: 'provider_reengagement', templateAfterClose: TEMPLATE })).toEqual({ action: 'switch_to_template', template: TEMPLATE });
    expect(onSendFailure({ ...base, type: 'provider_reengagement' })).toEqual({ action: 'refuse', reason: 'window_closed' });
    // a template refused for the window is not retried as a template
    expect(onSendFailure({ ...base, type: 'provider_reengagement', isTemplate: true, templateAfterClose: TEMPLATE })).toEqual({ action: 'refuse', reason: 'window_closed' });
  });

  test.each(['provider_permanent', 'channel_not_found', 'template_not_found', 'template_not_approved', 'template_variables', 'not_implemented'])('%s fails for good', (type) => {
    expect(onSendFailure({ ...base, type })).toEqual({ action: 'fail' });
  });

  test('131049 defers the first try by more than a day; a second one or a replay is parked', () => {
    expect(onSendFailure({ ...base, type: 'provider_spam_limited' })).toEqual({ action: 'defer', retryAt: new Date(Date.parse(NOW) + SPAM_LIMIT_WAIT_MS).toISOString() });
    expect(SPAM_LIMIT_WAIT_MS).toBeGreaterThan(24 * 3600_000);
    expect(onSendFailure({ ...base, type: 'provider_spam_limited', attempts: 1 })).toEqual({ action: 'park' });
    expect(onSendFailure({ ...base, type: 'provider_spam_limited', replaying: true })).toEqual({ action: 'park' });
  });

  test.each([undefined, 'provider_transient', 'provider_rate_limited', 'something_new'])('%s (retries ran out, a timeout, an unknown type) is parked for an admin', (type) => {
    expect(onSendFailure({ ...base, type })).toEqual({ action: 'park' });
  });
});
